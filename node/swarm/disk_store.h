// The swarm's piece_store on disk (docs/swarm.md "On disk"): downloads live in
// <data-dir>/blobs/ (blob_store: the manifest and a .part file per bundle); complete bundles are
// served from the node's revision store, found through `locate`.
//
// Thread safety: not thread-safe; the swarm's thread only.
#pragma once

#include "node/swarm/blob_store.h"
#include "node/swarm/piece_store.h"

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace meshdeploy::swarm {

struct held_bundle {
  std::filesystem::path file;
  bool origin = false;  // the revision was pushed to this node
};

class disk_store final : public piece_store {
 public:
  // `locate(app, id)`: the complete bundle this node holds, if any.
  disk_store(
      blob_store& blobs,
      std::function<std::optional<held_bundle>(const std::string& app, const std::string& id)>
          locate);

  std::optional<seed_info> seed(const std::string& app, const std::string& id) override;
  result<void> read_seed(const std::string& app, const std::string& id, const manifest& m,
                         std::size_t index, std::span<std::byte> out) override;
  result<std::vector<bool>> open_download(const bundle_ref& ref, const manifest& m,
                                          std::span<const std::byte> encoded) override;
  result<void> write_piece(const std::string& id, std::size_t index,
                           std::span<const std::byte> data) override;
  result<void> read_piece(const std::string& id, std::size_t index,
                          std::span<std::byte> out) override;
  // Returns the .part file itself once flushed: every piece matched the manifest; the caller
  // (registry::store_bundle) checks the whole hash against the revision id before keeping it.
  result<std::filesystem::path> finish_download(const bundle_ref& ref) override;
  void close_download(const std::string& id, bool discard) override;

  // Ids of the downloads open now (the blob collector keeps them).
  [[nodiscard]] std::vector<std::string> open_ids() const;

 private:
  blob_store& blobs_;
  std::function<std::optional<held_bundle>(const std::string&, const std::string&)> locate_;
  std::map<std::string, part_file> parts_;
  std::map<std::string, std::filesystem::path> seeds_;  // id -> file, cached by seed()
};

}  // namespace meshdeploy::swarm
