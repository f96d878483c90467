#include "gossip/packet_crypto.h"

#include "gossip/errc.h"
#include "gossip/frame_buffer.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace meshdeploy::gossip {
namespace {

constexpr std::string_view packet_label = "meshdeploy.gossip.packet.v1";
constexpr std::string_view stream_label = "meshdeploy.gossip.stream.v1";

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();
}

const unsigned char* uc(const std::byte* p) { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* uc(std::byte* p) { return reinterpret_cast<unsigned char*>(p); }

void put_le(std::vector<unsigned char>& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// The associated data of a packet (stream == nullptr) or of frame `frame` of
// stream `stream`. Layout in packet_crypto.h and docs/security.md.
std::vector<unsigned char> associated_data(std::uint8_t version, key_id id,
                                           std::string_view cluster_id,
                                           const std::array<std::byte, stream_id_bytes>* stream,
                                           std::uint64_t frame) {
  const std::string_view label = stream == nullptr ? packet_label : stream_label;
  std::vector<unsigned char> ad;
  ad.reserve(label.size() + 2 + 4 + cluster_id.size() + stream_id_bytes + 8);
  ad.insert(ad.end(), label.begin(), label.end());
  ad.push_back(version);
  ad.push_back(static_cast<unsigned char>(id));
  put_le(ad, cluster_id.size(), 4);
  ad.insert(ad.end(), cluster_id.begin(), cluster_id.end());
  if (stream != nullptr) {
    for (std::byte b : *stream) ad.push_back(static_cast<unsigned char>(b));
    put_le(ad, frame, 8);
  }
  return ad;
}

// Writes [version][key id][nonce] at `head` and seals the `size` bytes at `plain` into
// `size` bytes of ciphertext at `head + sealed_header_bytes` followed by the tag. `plain` may
// be that very address (in place: libsodium's stream cipher XORs in place and the tag is
// computed over the ciphertext after it is written).
void seal_at(std::byte* head, const secret_key& key, std::uint8_t version,
             std::span<const unsigned char> ad, const std::byte* plain, std::size_t size) {
  ensure_sodium();
  head[0] = std::byte{version};
  head[1] = std::byte{static_cast<std::uint8_t>(key.id())};
  randombytes_buf(head + 2, nonce_bytes);
  std::byte* cipher = head + sealed_header_bytes;
  unsigned long long tag_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
      uc(cipher), uc(cipher + size), &tag_len, uc(plain), size, ad.data(), ad.size(), nullptr,
      uc(head + 2), uc(key.bytes().data()));
}

// Appends [version][key id][nonce][ciphertext+tag] to `out`.
void seal_into(std::vector<std::byte>& out, const secret_key& key, std::uint8_t version,
               std::span<const unsigned char> ad, std::span<const std::byte> plaintext) {
  const std::size_t start = out.size();
  out.resize(start + packet_overhead + plaintext.size());
  seal_at(out.data() + start, key, version, ad, plaintext.data(), plaintext.size());
}

// Opens [version][key id][nonce][ciphertext+tag] into `out` (room for the ciphertext's size
// minus the tag; it may be the ciphertext's own address: libsodium checks the tag over the
// ciphertext before it decrypts, and decrypts in place). Returns the plaintext's size. `make_ad`
// builds the associated data for the version and key id read from the header.
template <class MakeAd>
result<std::size_t> open_sealed_at(const keyring& ring, std::span<const std::byte> sealed,
                                   std::byte* out, std::uint8_t min_version,
                                   std::uint8_t max_version, std::string_view what,
                                   MakeAd make_ad) {
  const std::uint8_t version = static_cast<std::uint8_t>(sealed[0]);
  if (version < min_version || version > max_version) {
    return make_error(errc::version_unsupported,
                      fmt::format("{}: version {}, this node accepts {}..{}", what, version,
                                  min_version, max_version));
  }
  const key_id id{static_cast<std::uint8_t>(sealed[1])};
  const std::vector<unsigned char> ad = make_ad(version, id);
  const std::span<const std::byte> nonce = sealed.subspan(2, nonce_bytes);
  const std::span<const std::byte> cipher = sealed.subspan(sealed_header_bytes);
  const std::size_t size = cipher.size() - tag_bytes;
  // A packet's id only hints at the key: use the installed key that has it. A keyring holds
  // at most one key per id (keyring.h), so at most one attempt is made; that matters in place,
  // because libsodium checks the tag before it decrypts but zeroes `out` when the tag does not
  // match, wiping the ciphertext a second attempt would need.
  bool known = false;
  for (const secret_key& key : ring.list()) {
    if (key.id() != id) continue;
    known = true;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            uc(out), nullptr, uc(cipher.data()), size, uc(cipher.data() + size), ad.data(),
            ad.size(), uc(nonce.data()), uc(key.bytes().data())) == 0) {
      return size;
    }
    break;
  }
  if (!known) {
    return make_error(errc::unknown_key, fmt::format("{}: key id 0x{:02x} is not in the keyring",
                                                     what, static_cast<unsigned>(id)));
  }
  return make_error(errc::auth_failed,
                    fmt::format("{}: authentication failed under key id 0x{:02x} (tampered, or "
                                "another cluster, version or key)",
                                what, static_cast<unsigned>(id)));
}

result<void> check_sealed_size(std::span<const std::byte> sealed, std::string_view what) {
  if (sealed.size() < packet_overhead) {
    return make_error(errc::malformed, fmt::format("{}: {} bytes, shorter than the {}-byte minimum",
                                                   what, sealed.size(), packet_overhead));
  }
  return ok();
}

// open_sealed_at into a new vector.
template <class MakeAd>
result<std::vector<std::byte>> open_sealed(const keyring& ring, std::span<const std::byte> sealed,
                                           std::uint8_t min_version, std::uint8_t max_version,
                                           std::string_view what, MakeAd make_ad) {
  MESH_CHECK(check_sealed_size(sealed, what));
  std::vector<std::byte> plain(sealed.size() - packet_overhead);
  MESH_CHECK(open_sealed_at(ring, sealed, plain.data(), min_version, max_version, what, make_ad));
  return plain;
}

}  // namespace

std::vector<std::byte> seal(const keyring& ring, std::span<const std::byte> plaintext,
                            const associated_context& ctx) {
  const secret_key& key = ring.primary();
  const auto ad = associated_data(ctx.version, key.id(), ctx.cluster_id, nullptr, 0);
  std::vector<std::byte> out;
  seal_into(out, key, ctx.version, ad, plaintext);
  return out;
}

result<std::vector<std::byte>> open(const keyring& ring, std::span<const std::byte> sealed,
                                    const associated_context& ctx) {
  return open_sealed(ring, sealed, ctx.min_version, ctx.version, "packet",
                     [&](std::uint8_t version, key_id id) {
                       return associated_data(version, id, ctx.cluster_id, nullptr, 0);
                     });
}

// replay_window ---------------------------------------------------------------

bool replay_window::test(std::uint64_t seq) const {
  const std::uint64_t bit = seq % width;
  return (bits_[bit / 64] >> (bit % 64)) & 1u;
}

void replay_window::set(std::uint64_t seq) {
  const std::uint64_t bit = seq % width;
  bits_[bit / 64] |= std::uint64_t{1} << (bit % 64);
}

void replay_window::clear(std::uint64_t seq) {
  const std::uint64_t bit = seq % width;
  bits_[bit / 64] &= ~(std::uint64_t{1} << (bit % 64));
}

bool replay_window::accept(std::uint64_t seq) {
  if (!started_) {
    started_ = true;
    highest_ = seq;
    set(seq);
    return true;
  }
  if (seq > highest_) {
    // Slide forward: the bits of the numbers now entering the window belong
    // to numbers `width` older that just left it.
    const std::uint64_t advance = seq - highest_;
    if (advance >= width) {
      bits_.fill(0);
    } else {
      for (std::uint64_t s = highest_ + 1; s != seq; ++s) clear(s);  // < width steps
      clear(seq);
    }
    highest_ = seq;
    set(seq);
    return true;
  }
  if (highest_ - seq >= width) return false;  // too old to tell: reject
  if (test(seq)) return false;                // duplicate
  set(seq);
  return true;
}

// replay_guard ----------------------------------------------------------------

replay_guard::replay_guard(std::size_t max_senders)
    : max_senders_(std::clamp<std::size_t>(max_senders, 1, std::size_t{1} << 30)) {
  ensure_sodium();
  static_assert(sizeof hash_key_ == crypto_shorthash_KEYBYTES);
  randombytes_buf(hash_key_.data(), hash_key_.size());
}

std::uint64_t replay_guard::key_of(std::string_view sender) const {
  unsigned char h[crypto_shorthash_BYTES];
  crypto_shorthash(h, reinterpret_cast<const unsigned char*>(sender.data()), sender.size(),
                   hash_key_.data());
  std::uint64_t k = 0;
  std::memcpy(&k, h, sizeof k);
  return k;
}

std::size_t replay_guard::position(std::uint64_t key) const {
  const std::size_t mask = index_.size() - 1;
  std::size_t i = static_cast<std::size_t>(key) & mask;
  while (index_[i] != 0 && slots_[index_[i] - 1].key != key) i = (i + 1) & mask;
  return i;
}

void replay_guard::erase_position(std::size_t pos) {
  // Backward-shift deletion (linear probing): move later entries of the same probe run into the
  // hole, so every entry stays reachable from its home position.
  const std::size_t mask = index_.size() - 1;
  std::size_t hole = pos;
  for (std::size_t j = (pos + 1) & mask; index_[j] != 0; j = (j + 1) & mask) {
    const std::size_t home = static_cast<std::size_t>(slots_[index_[j] - 1].key) & mask;
    // j's entry may move to the hole unless its home lies cyclically in (hole, j].
    const bool home_after_hole =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_after_hole) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = 0;
}

void replay_guard::unlink(std::uint32_t s) {
  slot& e = slots_[s];
  if (e.newer != none)
    slots_[e.newer].older = e.older;
  else
    newest_ = e.older;
  if (e.older != none)
    slots_[e.older].newer = e.newer;
  else
    oldest_ = e.newer;
  e.newer = e.older = none;
}

void replay_guard::push_newest(std::uint32_t s) {
  slot& e = slots_[s];
  e.newer = none;
  e.older = newest_;
  if (newest_ != none) slots_[newest_].newer = s;
  newest_ = s;
  if (oldest_ == none) oldest_ = s;
}

std::size_t replay_guard::heap_bytes() const {
  return slots_.capacity() * sizeof(slot) + index_.capacity() * sizeof(std::uint32_t);
}

result<void> replay_guard::accept(std::string_view sender, std::uint64_t epoch, std::uint64_t seq) {
  const std::uint64_t key = key_of(sender);
  if (!index_.empty()) {
    const std::size_t pos = position(key);
    if (index_[pos] != 0) {
      const std::uint32_t s = index_[pos] - 1;
      unlink(s);
      push_newest(s);  // most recently used
      slot& e = slots_[s];
      if (epoch < e.epoch) {
        return make_error(
            errc::replayed,
            fmt::format("sender {}: epoch {} is older than its epoch {}", sender, epoch, e.epoch));
      }
      if (epoch > e.epoch) {
        e.epoch = epoch;  // the sender restarted: a new sequence
        e.window = replay_window{};
      }
      if (!e.window.accept(seq)) {
        return make_error(errc::replayed,
                          fmt::format("sender {}: sequence {} already seen or older than the "
                                      "window (highest {})",
                                      sender, seq, e.window.highest()));
      }
      return ok();
    }
  }
  // A new sender: a fresh slot while below max_senders_, else the least recently used one's.
  std::uint32_t s = 0;
  if (slots_.size() < max_senders_) {
    if (slots_.size() == slots_.capacity()) {
      slots_.reserve(std::min(max_senders_, std::max<std::size_t>(16, 2 * slots_.capacity())));
    }
    s = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
    if (2 * slots_.capacity() > index_.size()) {
      // Keep the index at most half full: rebuild it at twice the slots' capacity (a power of two).
      std::size_t n = 8;
      while (n < 2 * slots_.capacity()) n *= 2;
      index_.assign(n, 0);
      index_.shrink_to_fit();
      for (std::uint32_t i = 0; i < s; ++i) index_[position(slots_[i].key)] = i + 1;
    }
  } else {
    s = oldest_;
    erase_position(position(slots_[s].key));
    unlink(s);
    ++evictions_;
  }
  slot& e = slots_[s];
  e.key = key;
  e.epoch = epoch;
  e.window = replay_window{};
  e.window.accept(seq);
  push_newest(s);
  index_[position(key)] = s + 1;
  return ok();
}

// streams ---------------------------------------------------------------------

stream_sealer::stream_sealer(const associated_context& ctx)
    : cluster_id_(ctx.cluster_id), version_(ctx.version) {
  ensure_sodium();
  randombytes_buf(stream_id_.data(), stream_id_.size());
}

std::vector<std::byte> stream_sealer::seal(const keyring& ring,
                                           std::span<const std::byte> plaintext) {
  const secret_key& key = ring.primary();
  const auto ad = associated_data(version_, key.id(), cluster_id_, &stream_id_, next_frame_);
  std::vector<std::byte> out;
  if (next_frame_ == 0) {
    out.reserve(stream_id_bytes + packet_overhead + plaintext.size());
    out.insert(out.end(), stream_id_.begin(), stream_id_.end());
  }
  seal_into(out, key, version_, ad, plaintext);
  ++next_frame_;
  return out;
}

void stream_sealer::seal_in_place(const keyring& ring, frame_buffer& frame) {
  const secret_key& key = ring.primary();
  const auto ad = associated_data(version_, key.id(), cluster_id_, &stream_id_, next_frame_);
  const std::size_t size = frame.size();
  frame.append(tag_bytes);
  std::byte* head = frame.prepend(sealed_header_bytes).data();
  seal_at(head, key, version_, ad, head + sealed_header_bytes, size);
  if (next_frame_ == 0) frame.prepend(std::span<const std::byte>(stream_id_));
  ++next_frame_;
}

stream_opener::stream_opener(const associated_context& ctx)
    : cluster_id_(ctx.cluster_id), version_(ctx.version), min_version_(ctx.min_version) {}

result<std::span<const std::byte>> stream_opener::open_frame(const keyring& ring,
                                                             std::span<const std::byte> frame,
                                                             std::vector<std::byte>* out) {
  const std::string what = fmt::format("stream frame {}", next_frame_);
  if (failed_) {
    return make_error(errc::malformed, what + ": an earlier frame failed; the stream is unusable");
  }
  if (next_frame_ == 0) {
    if (frame.size() < stream_id_bytes) {
      failed_ = true;
      return make_error(errc::malformed, fmt::format("{}: {} bytes, shorter than the stream id",
                                                     what, frame.size()));
    }
    std::copy_n(frame.begin(), stream_id_bytes, stream_id_.begin());
    frame = frame.subspan(stream_id_bytes);
  }
  if (auto c = check_sealed_size(frame, what); !c) {
    failed_ = true;
    return c.error();
  }
  // In place (the caller passed mutable bytes): the plaintext goes where the ciphertext starts.
  if (out != nullptr) out->resize(frame.size() - packet_overhead);
  std::byte* to =
      out != nullptr ? out->data() : const_cast<std::byte*>(frame.data()) + sealed_header_bytes;
  auto size = open_sealed_at(
      ring, frame, to, min_version_, version_, what, [&](std::uint8_t version, key_id id) {
        return associated_data(version, id, cluster_id_, &stream_id_, next_frame_);
      });
  if (!size) {
    failed_ = true;
    return size.error();
  }
  ++next_frame_;
  return std::span<const std::byte>(to, size.value());
}

result<std::vector<std::byte>> stream_opener::open(const keyring& ring,
                                                   std::span<const std::byte> frame) {
  std::vector<std::byte> plain;
  MESH_CHECK(open_frame(ring, frame, &plain));
  return plain;
}

result<std::span<const std::byte>> stream_opener::open_in_place(const keyring& ring,
                                                                std::span<std::byte> frame) {
  return open_frame(ring, frame, nullptr);  // frame is mutable: the const_cast inside is sound
}

}  // namespace meshdeploy::gossip
