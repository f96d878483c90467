// What the swarm (node/swarm/swarm.h) needs from storage, so that the same protocol code runs on
// disk in the node (node/swarm/disk_store.h: <data-dir>/blobs/ and the revision store) and in
// memory inside the simulator.
//
// Thread safety: called from the swarm's thread only.
#pragma once

#include "node/swarm/manifest.h"
#include "storage/result.h"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::swarm {

// A revision's bundle as the signed revision record describes it.
struct bundle_ref {
  std::string app;
  std::string id;      // BLAKE2b-256 hex of the bytes
  std::string format;  // zip | tar | tgz
  std::uint64_t size = 0;
  std::string manifest;  // BLAKE2b-256 hex of the encoded manifest; "" = not signed (older
                         // record): any manifest is used and the whole bundle hash decides
  std::string origin;    // node where it was pushed
};

// A complete bundle this node holds.
struct seed_info {
  std::vector<std::byte> manifest;  // encoded
  bool origin = false;              // this node is the revision's origin (it seeds each piece
                                    // once while other holders can serve it: docs/swarm.md)
};

class piece_store {
 public:
  virtual ~piece_store() = default;

  // The complete bundle `id` of `app`, if this node holds it (the manifest computed and kept on
  // first use).
  virtual std::optional<seed_info> seed(const std::string& app, const std::string& id) = 0;
  // Reads piece `index` of a complete bundle this node holds into `out` (exactly the piece's
  // length: the swarm reads straight into the buffer the piece is sent from).
  virtual result<void> read_seed(const std::string& app, const std::string& id, const manifest& m,
                                 std::size_t index, std::span<std::byte> out) = 0;

  // Starts or resumes downloading `ref` described by `m` (encoded as `encoded`): returns which
  // pieces are already held and verified. Errors: e.g. no space to reserve the bundle.
  virtual result<std::vector<bool>> open_download(const bundle_ref& ref, const manifest& m,
                                                  std::span<const std::byte> encoded) = 0;
  // Stores a verified piece of a download / reads a held one into `out` (exactly its length).
  virtual result<void> write_piece(const std::string& id, std::size_t index,
                                   std::span<const std::byte> data) = 0;
  virtual result<void> read_piece(const std::string& id, std::size_t index,
                                  std::span<std::byte> out) = 0;
  // Every piece is held: checks the whole bundle against `ref` (hash, size) and returns the
  // verified file (the caller moves it into place). On error the download's pieces are gone.
  virtual result<std::filesystem::path> finish_download(const bundle_ref& ref) = 0;
  // Forgets a download (pieces kept on disk for a later resume unless `discard`).
  virtual void close_download(const std::string& id, bool discard) = 0;
};

}  // namespace meshdeploy::swarm
