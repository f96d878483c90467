// Authenticated encryption of gossip packets (UDP) and stream frames (TCP)
// with the cluster keyring (gossip/keyring.h), plus the replay defences that
// the membership core applies after decoding. Pure functions and small value
// classes: no I/O, no clock. docs/security.md describes the format, the
// associated data and how the core must use replay_guard.
//
// Sealed packet layout (XChaCha20-Poly1305 IETF, libsodium):
//
//   [version u8][key id u8][nonce 24][ciphertext = plaintext size][tag 16]
//
// `version` is the gossip wire protocol version the plaintext is encoded
// with; `key id` names the keyring key that sealed it (keyring.h); the nonce
// is random per packet. The associated data (not sent) is
//
//   label "meshdeploy.gossip.packet.v1" | version | key id
//         | cluster id length (u32 little-endian) | cluster id
//
// so a packet sealed for another cluster, another version, or by another key
// fails authentication. Stream frames use the label
// "meshdeploy.gossip.stream.v1" and append the stream id and frame counter.
#pragma once

#include "gossip/frame_buffer.h"
#include "gossip/keyring.h"
#include "storage/result.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::gossip {

inline constexpr std::size_t nonce_bytes = 24;
inline constexpr std::size_t tag_bytes = 16;
inline constexpr std::size_t sealed_header_bytes = 2 + nonce_bytes;
// Bytes seal() adds to a packet: plaintext of max_packet_bytes - packet_overhead
// (1,358) seals into exactly 1,400 bytes.
inline constexpr std::size_t packet_overhead = sealed_header_bytes + tag_bytes;
inline constexpr std::size_t stream_id_bytes = 16;

// What both ends must agree on for a packet to open. Borrowed views: the
// strings must outlive the call they are passed to.
struct associated_context {
  std::string_view cluster_id;   // operator-chosen cluster name; any length, may be empty
  std::uint8_t version = 1;      // seal: written into the header; open: highest accepted
  std::uint8_t min_version = 1;  // open: lowest accepted version
};

// Seals `plaintext` with the keyring's primary key and a fresh random nonce.
// Returns plaintext.size() + packet_overhead bytes. Never fails.
std::vector<std::byte> seal(const keyring& ring, std::span<const std::byte> plaintext,
                            const associated_context& ctx);

// Opens a packet made by seal(). Tries the installed key(s) with the packet's
// key id. Errors (each safe to count and drop; no input crashes or allocates
// more than sealed.size()):
//   malformed           shorter than packet_overhead;
//   version_unsupported version byte outside [ctx.min_version, ctx.version];
//   unknown_key         no installed key has the packet's key id;
//   auth_failed         any tampering, or another cluster id, version or key.
result<std::vector<std::byte>> open(const keyring& ring, std::span<const std::byte> sealed,
                                    const associated_context& ctx);

// Sliding-window replay filter over one sender's 64-bit sequence numbers
// (as IPsec's and WireGuard's): accepts each sequence number at most once,
// accepts numbers up to `width - 1` below the highest seen (reordering), and
// rejects anything older. Jumps forward of any size are accepted.
//
// Threading: none; owned by one thread.
class replay_window {
 public:
  static constexpr std::uint64_t width = 256;

  // True (and records seq) if seq was not seen before and is greater than
  // highest() - width; false for duplicates and too-old numbers. The first
  // call accepts any seq.
  bool accept(std::uint64_t seq);

  // The highest sequence number accepted so far (0 before the first).
  [[nodiscard]] std::uint64_t highest() const { return highest_; }

 private:
  bool test(std::uint64_t seq) const;
  void set(std::uint64_t seq);
  void clear(std::uint64_t seq);

  static constexpr std::size_t words = width / 64;
  std::array<std::uint64_t, words> bits_{};  // bit (seq % width) for seq in the window
  std::uint64_t highest_ = 0;
  bool started_ = false;
};

// Replay filter for all senders: a replay_window per sender name, for the
// sender's current `epoch`, with at most `max_senders` senders remembered
// (least recently used evicted, so memory is bounded by the constructor).
//
// How the membership core uses it (docs/security.md): every packet's
// plaintext carries the sender's name, its epoch (a number the sender makes
// strictly larger at every start, e.g. max(last persisted + 1, wall-clock
// microseconds)) and a per-epoch sequence number starting at 0 and raised
// by one per packet sent. After open() succeeds and the body decodes, the
// core calls accept(name, epoch, seq) and drops the packet on error.
//
// Memory: any key holder can name any sender, so a flood of made-up names
// fills the table to max_senders (docs/reliability.md "Malformed traffic at
// a live node"). A sender is therefore remembered by a 64-bit keyed hash of
// its name (SipHash-2-4 under a random per-guard key, so names cannot be
// chosen to collide), not by the name: a 72-byte slot per sender plus an
// open-addressing index of 8 to 16 bytes per sender, 1.3 MiB at the default
// 16,384 whatever the names (up to 255 bytes each) are (the table of names it
// replaced held about 7 MiB under the flood); heap_bytes() says how much is
// allocated now. Two senders whose hashes collide (odds
// 2^-64 per pair) would share a window: some of their packets would be
// dropped as replays, never the reverse.
//
// Threading: none; the node executor owns it.
class replay_guard {
 public:
  // REQUIRES: max_senders >= 1 (larger values are capped at 2^30).
  explicit replay_guard(std::size_t max_senders = 16384);

  replay_guard(const replay_guard&) = delete;
  replay_guard& operator=(const replay_guard&) = delete;

  // ok if (epoch, seq) from `sender` is new. A larger epoch than the one
  // remembered starts a fresh window (the sender restarted). Errors:
  // replayed (duplicate, older than the window, or an older epoch; the
  // message names the sender).
  result<void> accept(std::string_view sender, std::uint64_t epoch, std::uint64_t seq);

  [[nodiscard]] std::size_t size() const { return slots_.size(); }
  // Senders forgotten to stay within max_senders (for metrics: a steadily
  // rising count means max_senders is below the cluster size).
  [[nodiscard]] std::uint64_t evictions() const { return evictions_; }
  // Heap bytes the guard holds now (slots and index): never more than
  // max_senders * 88 + 64.
  [[nodiscard]] std::size_t heap_bytes() const;

 private:
  static constexpr std::uint32_t none = 0xffffffffu;
  struct slot {
    std::uint64_t key = 0;  // keyed hash of the sender name
    std::uint64_t epoch = 0;
    replay_window window;
    std::uint32_t newer = none;  // LRU neighbours (slot indexes)
    std::uint32_t older = none;
  };

  [[nodiscard]] std::uint64_t key_of(std::string_view sender) const;
  // Position in index_ of `key`, or of the empty position where it would go.
  [[nodiscard]] std::size_t position(std::uint64_t key) const;
  void erase_position(std::size_t pos);
  void unlink(std::uint32_t s);
  void push_newest(std::uint32_t s);

  std::size_t max_senders_;
  std::array<unsigned char, 16> hash_key_{};
  std::vector<slot> slots_;           // grows up to max_senders_, then slots are reused
  std::vector<std::uint32_t> index_;  // open addressing: slot + 1, 0 = empty; power of two
  std::uint32_t newest_ = none;
  std::uint32_t oldest_ = none;
  std::uint64_t evictions_ = 0;
};

// Seals the frames of one stream (TCP connection) in order. Each frame is
// laid out like a packet; the first frame is prefixed by the stream's random
// id (stream_id_bytes, in clear). The associated data of frame n also binds
// the stream id and n, so frames cannot be dropped, reordered, replayed or
// spliced from another stream without the opener noticing. Length-prefixing
// the frames on the socket is the driver's job.
//
// Threading: none; one per outgoing stream.
class stream_sealer {
 public:
  // A fresh random stream id. Copies ctx's cluster id.
  explicit stream_sealer(const associated_context& ctx);

  stream_sealer(const stream_sealer&) = delete;
  stream_sealer& operator=(const stream_sealer&) = delete;

  // The next frame, sealed with the keyring's current primary key.
  std::vector<std::byte> seal(const keyring& ring, std::span<const std::byte> plaintext);
  // The same, in place: `frame`'s contents (the plaintext) become the sealed frame, the very
  // bytes seal() would return. The header (and on frame 0 the stream id) goes into the room in
  // front, the tag into the room behind (frame_headroom / frame_tailroom; less room costs a
  // copy, nothing else).
  void seal_in_place(const keyring& ring, frame_buffer& frame);

 private:
  std::string cluster_id_;
  std::uint8_t version_;
  std::array<std::byte, stream_id_bytes> stream_id_{};
  std::uint64_t next_frame_ = 0;
};

// Opens the frames of one stream in the order stream_sealer made them.
// After the first error every later frame fails too (the driver closes the
// stream).
//
// Threading: none; one per incoming stream.
class stream_opener {
 public:
  // Copies ctx's cluster id.
  explicit stream_opener(const associated_context& ctx);

  stream_opener(const stream_opener&) = delete;
  stream_opener& operator=(const stream_opener&) = delete;

  // Errors as open(); auth_failed also for a frame out of order, replayed or
  // from another stream; malformed for a frame 0 too short for its stream id
  // and for any frame after an earlier error.
  result<std::vector<std::byte>> open(const keyring& ring, std::span<const std::byte> frame);
  // The same, in place: the plaintext overwrites the ciphertext inside `frame` and the result
  // views it (valid while `frame` is). The header bytes in front (stream id, version, key id,
  // nonce) are left as they were. Nothing is decrypted unless the tag matches; on an error the
  // ciphertext may be overwritten (libsodium zeroes it), and the stream is unusable anyway.
  result<std::span<const std::byte>> open_in_place(const keyring& ring, std::span<std::byte> frame);

 private:
  // Opens the next frame into `out` (resized to fit), or in place when `out` is null (then
  // REQUIRES: `frame` is mutable memory).
  result<std::span<const std::byte>> open_frame(const keyring& ring,
                                                std::span<const std::byte> frame,
                                                std::vector<std::byte>* out);

  std::string cluster_id_;
  std::uint8_t version_;
  std::uint8_t min_version_;
  std::array<std::byte, stream_id_bytes> stream_id_{};
  std::uint64_t next_frame_ = 0;
  bool failed_ = false;
};

}  // namespace meshdeploy::gossip
