// A byte buffer with room in front of and behind its contents, for the send path of large direct
// messages (a swarm piece: docs/swarm.md "CPU per byte"). The bytes are read (pread) straight into
// the body once; each layer then adds its header in front of what is already there (swarm piece
// header, gossip direct message, secure envelope, seal header) and the seal encrypts in place and
// appends its tag behind, so a 256 KiB piece is never copied between layers.
//
//   gossip::frame_buffer b(gossip::frame_headroom, piece_size, gossip::frame_tailroom);
//   pread(fd, b.bytes().data(), piece_size, offset);
//   b.prepend(header);               // header | piece
//
// Contents are uninitialised after construction and reset(): the caller fills them. When a
// prepend or append does not fit the room left, the buffer moves to a larger allocation (one
// copy; correct, only slower), so the room constants are a speed matter, not a safety one.
//
// Threading: none; a value owned by one thread at a time (it may be moved between threads).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace meshdeploy::gossip {

// Room every layer of the stream send path together needs in front of a direct message's payload
// (swarm header <= 96, gossip direct header <= 600, envelope <= 274, stream id and seal header
// 42), and behind it (the AEAD tag).
inline constexpr std::size_t frame_headroom = 1024;
inline constexpr std::size_t frame_tailroom = 16;

class frame_buffer {
 public:
  frame_buffer() = default;
  // An uninitialised body of `body` bytes with `headroom` bytes free in front, `tailroom` behind.
  frame_buffer(std::size_t headroom, std::size_t body, std::size_t tailroom);
  // A copy of `bytes` as the body, with the default room around it.
  static frame_buffer copy_of(std::span<const std::byte> bytes);

  // A moved-from buffer is empty (size and capacity 0).
  frame_buffer(frame_buffer&& o) noexcept;
  frame_buffer& operator=(frame_buffer&& o) noexcept;
  frame_buffer(const frame_buffer&) = delete;
  frame_buffer& operator=(const frame_buffer&) = delete;

  // Makes the contents an uninitialised body of `body` bytes with the given room, reusing the
  // allocation when it is large enough (a recycled buffer).
  void reset(std::size_t headroom, std::size_t body, std::size_t tailroom);

  [[nodiscard]] std::span<std::byte> bytes() { return {data_.get() + begin_, end_ - begin_}; }
  [[nodiscard]] std::span<const std::byte> bytes() const {
    return {data_.get() + begin_, end_ - begin_};
  }
  [[nodiscard]] std::size_t size() const { return end_ - begin_; }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t headroom() const { return begin_; }
  [[nodiscard]] std::size_t tailroom() const { return capacity_ - end_; }

  // Grows the contents by `n` uninitialised bytes in front / behind and returns them.
  std::span<std::byte> prepend(std::size_t n);
  std::span<std::byte> append(std::size_t n);
  // Copies `bytes` in front of / behind the contents.
  void prepend(std::span<const std::byte> bytes);
  void append(std::span<const std::byte> bytes);

  // The contents as a vector (a copy), for paths that need one.
  [[nodiscard]] std::vector<std::byte> to_vector() const;

 private:
  // Moves the contents into a new allocation with at least `front` / `back` bytes of room.
  void regrow(std::size_t front, std::size_t back);

  std::unique_ptr<std::byte[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace meshdeploy::gossip
