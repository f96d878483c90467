// Fetching a revision's bundle from a node that holds it, piece by piece over
// the mesh's sealed direct messages (gossip user type 3), until the swarm
// (DESIGN §6: many sources, rarest first, piece manifests) replaces it behind
// the same calls. Sans-IO apart from the files it reads and writes: messages go
// out through an injected send function, time comes in as arguments.
//
// Wire (msgpack arrays, version first; docs/replication.md "Bundles"):
//   want  = 1: [1, 1, app, id, offset:u64, length:u32]   ask for bytes of a bundle
//   piece = 2: [1, 2, app, id, offset:u64, data:bin]      bytes of a bundle
//   none  = 3: [1, 3, app, id]                            "I do not hold it"
// Every received bundle is checked against its id (BLAKE2b-256 of the bytes)
// before it is handed over; a source that sends garbage is dropped.
//
// Thread safety: not thread-safe; call everything from one thread (the node's
// io thread).
#pragma once

#include "storage/result.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::swarm {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

inline constexpr std::size_t piece_bytes = 1u << 20;              // asked for at a time
inline constexpr std::size_t pieces_in_flight = 4;                // per download
inline constexpr auto source_timeout = std::chrono::seconds(10);  // without progress

struct bundle_ref {
  std::string app;
  std::string id;      // BLAKE2b-256 hex of the bytes
  std::string format;  // zip | tar | tgz
  std::uint64_t size = 0;
};

struct fetch_env {
  // The local file holding `b`, if this node has it (to serve peers).
  std::function<std::optional<std::filesystem::path>(const bundle_ref& b)> locate;
  // Sends one message to a peer (reliable, framed, sealed).
  std::function<void(const std::string& peer, std::vector<std::byte> bytes)> send;
};

struct fetch_stats {
  std::uint64_t pieces_served = 0;
  std::uint64_t pieces_received = 0;
  std::uint64_t bytes_served = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t rejected_messages = 0;  // undecodable, unexpected or out-of-range
  std::uint64_t bad_bundles = 0;        // complete but the hash did not match
};

class bundle_fetch {
 public:
  using done_fn = std::function<void(result<std::filesystem::path>)>;

  // Downloads are written under `work_dir` (created if missing).
  bundle_fetch(fetch_env env, std::filesystem::path work_dir);

  // Fetches `b` from `sources` (tried in order; the next one when a source says it does not
  // hold it, sends bad bytes, or makes no progress for source_timeout). `done` is called once,
  // from on_message or on_tick, with the path of the verified file (the caller moves it away)
  // or an error naming the bundle and the sources tried. A second fetch of a bundle already
  // being fetched just adds its `done`.
  void fetch(const bundle_ref& b, std::vector<std::string> sources, done_fn done, time_point now);

  void on_message(const std::string& from, std::span<const std::byte> bytes, time_point now);
  void on_tick(time_point now);
  // time_point::max() when nothing is downloading.
  [[nodiscard]] time_point next_deadline() const;

  [[nodiscard]] const fetch_stats& stats() const { return stats_; }

 private:
  struct download {
    bundle_ref ref;
    std::vector<std::string> sources;
    std::size_t source = 0;
    std::filesystem::path part;
    std::uint64_t next_offset = 0;                     // next byte to ask for
    std::map<std::uint64_t, std::uint32_t> in_flight;  // offset -> length asked
    std::set<std::uint64_t> have;                      // offsets of pieces written
    std::uint64_t received = 0;                        // bytes written
    time_point last_progress{};
    std::vector<done_fn> done;
  };

  void serve(const std::string& from, const std::string& app, const std::string& id,
             std::uint64_t offset, std::uint32_t length);
  void ask(download& d, time_point now);
  void next_source(download& d, const std::string& why, time_point now);
  void finish(const std::string& id, result<std::filesystem::path> r);

  fetch_env env_;
  std::filesystem::path work_dir_;
  std::map<std::string, download> downloads_;  // by bundle id
  fetch_stats stats_;
};

// Encoders for the wire messages (tests and fuzzing use them too).
std::vector<std::byte> encode_want(const std::string& app, const std::string& id,
                                   std::uint64_t offset, std::uint32_t length);
std::vector<std::byte> encode_piece(const std::string& app, const std::string& id,
                                    std::uint64_t offset, std::span<const std::byte> data);
std::vector<std::byte> encode_none(const std::string& app, const std::string& id);

}  // namespace meshdeploy::swarm
