#include "gossip/frame_buffer.h"

#include "tests/support/bytes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshdeploy::gossip {
namespace {

using test::bytes_of;

TEST(FrameBufferTest, PrependAndAppendUseTheRoomAroundTheBody) {
  frame_buffer b(8, 3, 4);
  const auto body = bytes_of("abc");
  std::copy(body.begin(), body.end(), b.bytes().begin());
  const std::byte* first = b.bytes().data();
  EXPECT_EQ(b.headroom(), 8u);
  EXPECT_EQ(b.tailroom(), 4u);
  b.prepend(bytes_of("12"));
  b.append(bytes_of("xy"));
  EXPECT_EQ(b.to_vector(), bytes_of("12abcxy"));
  // No move: the body is where it was.
  EXPECT_EQ(b.bytes().data() + 2, first);
  EXPECT_EQ(b.headroom(), 6u);
  EXPECT_EQ(b.tailroom(), 2u);
}

TEST(FrameBufferTest, OutgrowingTheRoomMovesTheContentsIntact) {
  frame_buffer b(1, 2, 0);
  b.bytes()[0] = std::byte{'m'};
  b.bytes()[1] = std::byte{'n'};
  b.prepend(bytes_of("head"));  // more than the 1 byte of headroom
  b.append(bytes_of("tail"));   // no tailroom at all
  EXPECT_EQ(b.to_vector(), bytes_of("headmntail"));
  // After a move there is room again for the next headers.
  EXPECT_GE(b.headroom(), frame_headroom);
}

TEST(FrameBufferTest, ResetReusesALargeEnoughAllocation) {
  frame_buffer b(frame_headroom, 4096, frame_tailroom);
  const std::size_t cap = b.capacity();
  b.prepend(bytes_of("x"));
  b.reset(frame_headroom, 100, frame_tailroom);
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b.headroom(), frame_headroom);
  b.reset(frame_headroom, cap, frame_tailroom);  // larger than what it has
  EXPECT_GT(b.capacity(), cap);
  EXPECT_EQ(b.size(), cap);
}

TEST(FrameBufferTest, CopyOfAndEmptyBuffers) {
  const auto v = bytes_of("payload");
  auto b = frame_buffer::copy_of(v);
  EXPECT_EQ(b.to_vector(), v);
  EXPECT_EQ(b.headroom(), frame_headroom);
  EXPECT_EQ(b.tailroom(), frame_tailroom);
  frame_buffer empty;
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.to_vector().empty());
  empty.prepend(bytes_of("h"));
  EXPECT_EQ(empty.to_vector(), bytes_of("h"));
  auto moved = std::move(b);
  EXPECT_EQ(moved.to_vector(), v);
  // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is part of the contract
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.to_vector().empty());
  frame_buffer other(4, 4, 4);
  other = std::move(moved);
  EXPECT_EQ(other.to_vector(), v);
  EXPECT_EQ(moved.size(), 0u);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace meshdeploy::gossip
