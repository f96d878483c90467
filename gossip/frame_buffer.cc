#include "gossip/frame_buffer.h"

#include <cstring>

namespace meshdeploy::gossip {

frame_buffer::frame_buffer(std::size_t headroom, std::size_t body, std::size_t tailroom) {
  reset(headroom, body, tailroom);
}

frame_buffer::frame_buffer(frame_buffer&& o) noexcept
    : data_(std::move(o.data_)),
      capacity_(std::exchange(o.capacity_, 0)),
      begin_(std::exchange(o.begin_, 0)),
      end_(std::exchange(o.end_, 0)) {}

frame_buffer& frame_buffer::operator=(frame_buffer&& o) noexcept {
  if (this != &o) {
    data_ = std::move(o.data_);
    capacity_ = std::exchange(o.capacity_, 0);
    begin_ = std::exchange(o.begin_, 0);
    end_ = std::exchange(o.end_, 0);
  }
  return *this;
}

frame_buffer frame_buffer::copy_of(std::span<const std::byte> bytes) {
  frame_buffer b(frame_headroom, bytes.size(), frame_tailroom);
  if (!bytes.empty()) std::memcpy(b.bytes().data(), bytes.data(), bytes.size());
  return b;
}

void frame_buffer::reset(std::size_t headroom, std::size_t body, std::size_t tailroom) {
  const std::size_t need = headroom + body + tailroom;
  if (need > capacity_) {
    // make_unique_for_overwrite: no zero-fill of bytes the caller overwrites anyway.
    data_ = std::make_unique_for_overwrite<std::byte[]>(need);
    capacity_ = need;
  }
  begin_ = headroom;
  end_ = headroom + body;
}

void frame_buffer::regrow(std::size_t front, std::size_t back) {
  const std::size_t n = size();
  const std::size_t need = front + n + back;
  auto data = std::make_unique_for_overwrite<std::byte[]>(need);
  if (n > 0) std::memcpy(data.get() + front, data_.get() + begin_, n);
  data_ = std::move(data);
  capacity_ = need;
  begin_ = front;
  end_ = front + n;
}

std::span<std::byte> frame_buffer::prepend(std::size_t n) {
  if (n > begin_) regrow(n + frame_headroom, tailroom() + frame_tailroom);
  begin_ -= n;
  return {data_.get() + begin_, n};
}

std::span<std::byte> frame_buffer::append(std::size_t n) {
  if (n > tailroom()) regrow(begin_, n + frame_tailroom);
  end_ += n;
  return {data_.get() + end_ - n, n};
}

void frame_buffer::prepend(std::span<const std::byte> bytes) {
  auto to = prepend(bytes.size());
  if (!bytes.empty()) std::memcpy(to.data(), bytes.data(), bytes.size());
}

void frame_buffer::append(std::span<const std::byte> bytes) {
  auto to = append(bytes.size());
  if (!bytes.empty()) std::memcpy(to.data(), bytes.data(), bytes.size());
}

std::vector<std::byte> frame_buffer::to_vector() const {
  const auto b = bytes();
  return {b.begin(), b.end()};
}

}  // namespace meshdeploy::gossip
