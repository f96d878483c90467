// An in-memory swarm::piece_store over one shared copy of a bundle (header-only; the swarm's
// unit tests and the simulator, tests/sim/swarm_sim.h, use it). A node holds pieces as bits;
// a stored piece is compared with the true bytes (bad_stored counts one that differs, which
// the swarm must never let through), and a `corrupt` store serves every piece with a byte
// flipped, like a malicious or broken peer.
#pragma once

#include "node/deploy/errc.h"
#include "node/swarm/piece_store.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

namespace meshdeploy::testing {

// A bundle with its manifest and the record fields that name it.
struct memory_bundle {
  std::vector<std::byte> bytes;
  swarm::manifest m;
  std::vector<std::byte> encoded;  // the manifest
  swarm::bundle_ref ref;

  // `bytes` cut into pieces of `piece_size`; ref names app "app", origin `origin`.
  static memory_bundle make(std::vector<std::byte> bytes, std::uint32_t piece_size,
                            std::string origin) {
    memory_bundle b;
    b.bytes = std::move(bytes);
    b.m.size = b.bytes.size();
    b.m.piece_size = piece_size;
    for (std::size_t off = 0; off < b.bytes.size(); off += piece_size) {
      const std::size_t len = std::min<std::size_t>(piece_size, b.bytes.size() - off);
      b.m.pieces.push_back(swarm::hash_piece(std::span(b.bytes).subspan(off, len)));
    }
    b.encoded = swarm::encode_manifest(b.m);
    b.ref = swarm::bundle_ref{"app",          std::string(64, 'a'),          "zip",
                              b.bytes.size(), swarm::manifest_id(b.encoded), std::move(origin)};
    return b;
  }
};

class memory_piece_store final : public swarm::piece_store {
 public:
  memory_piece_store(const memory_bundle& b, bool complete, bool origin = false,
                     bool corrupt = false)
      : b_(b), complete_(complete), origin_(origin), corrupt_(corrupt) {}

  std::optional<swarm::seed_info> seed(const std::string& app, const std::string& id) override {
    if (!complete_ || app != b_.ref.app || id != b_.ref.id) return std::nullopt;
    return swarm::seed_info{b_.encoded, origin_};
  }
  result<void> read_seed(const std::string&, const std::string&, const swarm::manifest&,
                         std::size_t index, std::span<std::byte> out) override {
    return copy_out(index, out);
  }
  result<std::vector<bool>> open_download(const swarm::bundle_ref&, const swarm::manifest& m,
                                          std::span<const std::byte>) override {
    ++opened;
    if (fail_open) return make_error(deploy::errc::internal, "no space left on device");
    held.resize(m.piece_count(), false);
    return held;
  }
  result<void> write_piece(const std::string&, std::size_t index,
                           std::span<const std::byte> data) override {
    const auto off = b_.m.piece_offset(index);
    if (data.size() != b_.m.piece_length(index) ||
        std::memcmp(data.data(), b_.bytes.data() + off, data.size()) != 0) {
      ++bad_stored;
    }
    held[index] = true;
    ++writes;
    return ok();
  }
  result<void> read_piece(const std::string&, std::size_t index,
                          std::span<std::byte> out) override {
    if (index >= held.size() || !held[index]) {
      return make_error(deploy::errc::not_found, "piece not held");
    }
    return copy_out(index, out);
  }
  result<std::filesystem::path> finish_download(const swarm::bundle_ref&) override {
    complete_ = true;
    return std::filesystem::path("memory");
  }
  void close_download(const std::string&, bool) override {}

  [[nodiscard]] bool complete() const { return complete_; }

  std::vector<bool> held;  // of a download; tests may preset it (a resume)
  std::uint64_t bad_stored = 0;
  std::size_t writes = 0;
  std::size_t opened = 0;
  bool fail_open = false;

 private:
  // Piece `index` into `out` (the store's contract: exactly the piece's length).
  result<void> copy_out(std::size_t index, std::span<std::byte> out) const {
    if (index >= b_.m.piece_count() || out.size() != b_.m.piece_length(index)) {
      return make_error(deploy::errc::invalid_argument, "piece index or length");
    }
    const auto piece = slice(index);
    std::copy(piece.begin(), piece.end(), out.begin());
    return ok();
  }

  std::vector<std::byte> slice(std::size_t index) const {
    const auto off = static_cast<std::ptrdiff_t>(b_.m.piece_offset(index));
    std::vector<std::byte> out(b_.bytes.begin() + off,
                               b_.bytes.begin() + off + b_.m.piece_length(index));
    if (corrupt_) out[out.size() / 2] ^= std::byte{0x5a};
    return out;
  }

  const memory_bundle& b_;
  bool complete_;
  bool origin_;
  bool corrupt_;
};

}  // namespace meshdeploy::testing
