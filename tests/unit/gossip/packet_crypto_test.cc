#include "gossip/packet_crypto.h"

#include "gossip/errc.h"
#include "gossip/keyring.h"
#include "tests/support/bytes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <list>
#include <malloc.h>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace meshdeploy::gossip {
namespace {

using test::bytes_of;

secret_key key_avoiding(const std::set<key_id>& taken) {
  for (int i = 0; i < 10000; ++i) {
    secret_key k = secret_key::generate();
    if (!taken.contains(k.id())) return k;
  }
  ADD_FAILURE() << "no key with a free id";
  return secret_key::generate();
}

const associated_context ctx{.cluster_id = "prod-eu", .version = 1, .min_version = 1};

boost::system::error_code code_of(const result<std::vector<std::byte>>& r) {
  return r ? boost::system::error_code{} : r.error().code;
}

class PacketCryptoTest : public ::testing::Test {
 protected:
  keyring ring_{secret_key::generate()};
  std::vector<std::byte> msg_ = bytes_of("ping seq=7 from node-a");
};

TEST_F(PacketCryptoTest, RoundTripsAndAddsFixedOverhead) {
  const auto sealed = seal(ring_, msg_, ctx);
  EXPECT_EQ(sealed.size(), msg_.size() + packet_overhead);
  EXPECT_EQ(packet_overhead, 42u);
  EXPECT_EQ(static_cast<std::uint8_t>(sealed[0]), 1);
  EXPECT_EQ(static_cast<std::uint8_t>(sealed[1]), static_cast<std::uint8_t>(ring_.primary().id()));
  auto opened = open(ring_, sealed, ctx);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened.value(), msg_);
}

TEST_F(PacketCryptoTest, RoundTripsEmptyAndMaximalPackets) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1400 - packet_overhead}}) {
    std::vector<std::byte> plain(n, std::byte{0x5a});
    const auto sealed = seal(ring_, plain, ctx);
    auto opened = open(ring_, sealed, ctx);
    ASSERT_TRUE(opened) << n << ": " << opened.error().message;
    EXPECT_EQ(opened.value(), plain);
  }
  EXPECT_EQ(seal(ring_, std::vector<std::byte>(1400 - packet_overhead), ctx).size(), 1400u);
}

TEST_F(PacketCryptoTest, SameMessageSealsDifferentlyEachTime) {
  EXPECT_NE(seal(ring_, msg_, ctx), seal(ring_, msg_, ctx));  // random nonce
}

TEST_F(PacketCryptoTest, FlippingAnyBitFailsAuthentication) {
  const auto sealed = seal(ring_, msg_, ctx);
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    if (i == 0 || i == 1) continue;  // header bytes: see the version and key id tests
    for (int bit = 0; bit < 8; ++bit) {
      auto tampered = sealed;
      tampered[i] ^= std::byte(1u << bit);
      EXPECT_EQ(code_of(open(ring_, tampered, ctx)), make_error_code(errc::auth_failed))
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST_F(PacketCryptoTest, TruncatedOrExtendedPacketsFail) {
  const auto sealed = seal(ring_, msg_, ctx);
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    std::vector<std::byte> cut(sealed.begin(), sealed.begin() + n);
    const auto want = n < packet_overhead ? errc::malformed : errc::auth_failed;
    EXPECT_EQ(code_of(open(ring_, cut, ctx)), make_error_code(want)) << n;
  }
  auto longer = sealed;
  longer.push_back(std::byte{0});
  EXPECT_EQ(code_of(open(ring_, longer, ctx)), make_error_code(errc::auth_failed));
}

TEST_F(PacketCryptoTest, AnotherClusterIdFailsAuthentication) {
  const auto sealed = seal(ring_, msg_, ctx);
  for (std::string_view other : {"prod-e", "prod-eu ", "", "staging"}) {
    associated_context wrong = ctx;
    wrong.cluster_id = other;
    EXPECT_EQ(code_of(open(ring_, sealed, wrong)), make_error_code(errc::auth_failed)) << other;
  }
}

TEST_F(PacketCryptoTest, VersionIsBoundAndChecked) {
  associated_context v2 = ctx;
  v2.version = 2;  // a node speaking 1..2
  // A packet sealed at version 1 opens at a node accepting 1..2 ...
  const auto sealed = seal(ring_, msg_, ctx);
  ASSERT_TRUE(open(ring_, sealed, v2));
  // ... but relabelled as version 2 it fails: the version is authenticated.
  auto relabelled = sealed;
  relabelled[0] = std::byte{2};
  EXPECT_EQ(code_of(open(ring_, relabelled, v2)), make_error_code(errc::auth_failed));
  // Versions outside the accepted range are refused before any crypto.
  const auto sealed_v2 = seal(ring_, msg_, v2);
  EXPECT_EQ(code_of(open(ring_, sealed_v2, ctx)), make_error_code(errc::version_unsupported));
  relabelled[0] = std::byte{0};
  EXPECT_EQ(code_of(open(ring_, relabelled, ctx)), make_error_code(errc::version_unsupported));
  relabelled[0] = std::byte{0xB1};  // an unencrypted codec envelope
  EXPECT_EQ(code_of(open(ring_, relabelled, ctx)), make_error_code(errc::version_unsupported));
}

TEST_F(PacketCryptoTest, UnknownKeyIdIsReportedAsUnknownKey) {
  keyring other(key_avoiding({ring_.primary().id()}));
  const auto sealed = seal(other, msg_, ctx);
  auto r = open(ring_, sealed, ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::unknown_key));
  EXPECT_NE(r.error().message.find("key id 0x"), std::string::npos) << r.error().message;
}

TEST_F(PacketCryptoTest, SameKeyIdButDifferentKeyFailsAuthentication) {
  secret_key twin = secret_key::generate();
  for (int i = 0; i < 100000 && (twin.id() != ring_.primary().id() || twin == ring_.primary());
       ++i) {
    twin = secret_key::generate();
  }
  ASSERT_EQ(twin.id(), ring_.primary().id());
  const auto sealed = seal(keyring(twin), msg_, ctx);
  EXPECT_EQ(code_of(open(ring_, sealed, ctx)), make_error_code(errc::auth_failed));
}

TEST_F(PacketCryptoTest, RotationKeepsOldPacketsOpenUntilTheOldKeyIsRemoved) {
  const secret_key old_key = ring_.primary();
  const secret_key new_key = key_avoiding({old_key.id()});
  const auto before = seal(ring_, msg_, ctx);

  // Step 1: install everywhere. Senders still seal with the old primary.
  ASSERT_TRUE(ring_.install(new_key));
  keyring not_yet_rotated(old_key);  // a peer that has not installed the new key yet
  EXPECT_TRUE(open(ring_, seal(not_yet_rotated, msg_, ctx), ctx));
  EXPECT_TRUE(open(ring_, before, ctx));

  // Step 2: use the new key. New packets carry its id; old ones still open.
  ASSERT_TRUE(ring_.use(new_key));
  const auto after = seal(ring_, msg_, ctx);
  EXPECT_EQ(static_cast<std::uint8_t>(after[1]), static_cast<std::uint8_t>(new_key.id()));
  EXPECT_TRUE(open(ring_, before, ctx));
  EXPECT_TRUE(open(ring_, after, ctx));
  // A peer that already installed the new key (but still uses the old) opens both.
  keyring peer(old_key);
  ASSERT_TRUE(peer.install(new_key));
  EXPECT_TRUE(open(peer, after, ctx));

  // Step 3: remove the old key. Old packets now name an unknown key.
  ASSERT_TRUE(ring_.remove(old_key));
  EXPECT_EQ(code_of(open(ring_, before, ctx)), make_error_code(errc::unknown_key));
  EXPECT_TRUE(open(ring_, after, ctx));
}

TEST(ReplayWindowTest, AcceptsEachSequenceOnce) {
  replay_window w;
  EXPECT_TRUE(w.accept(0));
  EXPECT_FALSE(w.accept(0));
  EXPECT_TRUE(w.accept(1));
  EXPECT_TRUE(w.accept(2));
  EXPECT_FALSE(w.accept(1));
  EXPECT_FALSE(w.accept(2));
  EXPECT_EQ(w.highest(), 2u);
}

TEST(ReplayWindowTest, AcceptsReorderingWithinTheWindow) {
  replay_window w;
  ASSERT_TRUE(w.accept(1000));
  // Everything from 1000 - width + 1 to 999 arrives late, in reverse.
  for (std::uint64_t s = 999; s > 1000 - replay_window::width; --s) {
    EXPECT_TRUE(w.accept(s)) << s;
  }
  for (std::uint64_t s = 1000 - replay_window::width + 1; s <= 1000; ++s) {
    EXPECT_FALSE(w.accept(s)) << s;
  }
}

TEST(ReplayWindowTest, RejectsNumbersOlderThanTheWindow) {
  replay_window w;
  ASSERT_TRUE(w.accept(1000));
  EXPECT_FALSE(w.accept(1000 - replay_window::width));
  EXPECT_FALSE(w.accept(0));
  EXPECT_TRUE(w.accept(1000 - replay_window::width + 1));  // oldest still inside
}

TEST(ReplayWindowTest, SlidingForgetsBitsOfNumbersThatLeftTheWindow) {
  replay_window w;
  // Accept 0..width-1, then slide by one at a time: each new number's bit
  // slot was used by a number that just left, and must not read as seen.
  for (std::uint64_t s = 0; s < 4 * replay_window::width; ++s) ASSERT_TRUE(w.accept(s)) << s;
  // Skip ahead by less than the window: the skipped numbers are still new.
  ASSERT_TRUE(w.accept(4 * replay_window::width + 100));
  for (std::uint64_t s = 4 * replay_window::width; s < 4 * replay_window::width + 100; ++s) {
    EXPECT_TRUE(w.accept(s)) << s;
  }
  EXPECT_FALSE(w.accept(4 * replay_window::width - 1));  // seen before the skip
}

TEST(ReplayWindowTest, HandlesHugeJumps) {
  replay_window w;
  ASSERT_TRUE(w.accept(5));
  ASSERT_TRUE(w.accept(5 + (std::uint64_t{1} << 40)));
  EXPECT_FALSE(w.accept(5));
  EXPECT_FALSE(w.accept(6));
  EXPECT_TRUE(w.accept((std::uint64_t{1} << 40) + 4));
  const std::uint64_t top = ~std::uint64_t{0};
  EXPECT_TRUE(w.accept(top));
  EXPECT_FALSE(w.accept(top));
  EXPECT_TRUE(w.accept(top - 1));
  EXPECT_FALSE(w.accept(top - replay_window::width));
  EXPECT_EQ(w.highest(), top);
}

TEST(ReplayWindowTest, FirstNumberMayBeAnything) {
  replay_window w;
  EXPECT_TRUE(w.accept(123456789));
  EXPECT_FALSE(w.accept(0));
}

TEST(ReplayGuardTest, TracksSendersSeparately) {
  replay_guard g;
  EXPECT_TRUE(g.accept("a", 1, 0));
  EXPECT_TRUE(g.accept("b", 1, 0));
  auto again = g.accept("a", 1, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, make_error_code(errc::replayed));
  EXPECT_NE(again.error().message.find("sender a"), std::string::npos) << again.error().message;
  EXPECT_EQ(g.size(), 2u);
}

TEST(ReplayGuardTest, NewerEpochResetsOlderEpochIsRejected) {
  replay_guard g;
  ASSERT_TRUE(g.accept("a", 10, 500));
  ASSERT_TRUE(g.accept("a", 11, 0));  // restarted: sequence starts over
  EXPECT_TRUE(g.accept("a", 11, 1));
  auto old = g.accept("a", 10, 501);  // a packet from before the restart
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, make_error_code(errc::replayed));
  EXPECT_FALSE(g.accept("a", 11, 0));
}

TEST(ReplayGuardTest, RemembersAtMostMaxSendersEvictingTheLeastRecentlyUsed) {
  replay_guard g(3);
  ASSERT_TRUE(g.accept("a", 1, 0));
  ASSERT_TRUE(g.accept("b", 1, 0));
  ASSERT_TRUE(g.accept("c", 1, 0));
  ASSERT_TRUE(g.accept("a", 1, 1));  // a is now the most recently used
  ASSERT_TRUE(g.accept("d", 1, 0));  // evicts b
  EXPECT_EQ(g.size(), 3u);
  EXPECT_EQ(g.evictions(), 1u);
  EXPECT_FALSE(g.accept("a", 1, 1));  // still remembered
  EXPECT_FALSE(g.accept("c", 1, 0));
  EXPECT_TRUE(g.accept("b", 1, 0));  // forgotten, so accepted again (the documented cost)
  EXPECT_EQ(g.evictions(), 2u);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(g.accept("s" + std::to_string(i), 1, 0));
  EXPECT_EQ(g.size(), 3u);
}

// The index under churn: the same accept/reject answers as a plain LRU model of (name -> epoch,
// seen sequence numbers), for small tables where every insert evicts.
TEST(ReplayGuardTest, MatchesAnLruModelUnderChurn) {
  for (std::size_t max : {1u, 2u, 5u, 17u, 64u}) {
    replay_guard g(max);
    struct model_entry {
      std::string name;
      std::uint64_t epoch;
      std::set<std::uint64_t> seen;
    };
    std::list<model_entry> lru;  // most recent first
    std::mt19937_64 rng(max);
    for (int op = 0; op < 20000; ++op) {
      const std::string name = "n" + std::to_string(rng() % (3 * max + 2));
      const std::uint64_t epoch = 1 + rng() % 2;
      const std::uint64_t seq = rng() % 8;  // well inside the window
      auto it = std::find_if(lru.begin(), lru.end(), [&](const auto& e) { return e.name == name; });
      bool want = true;
      if (it == lru.end()) {
        if (lru.size() == max) lru.pop_back();
        lru.push_front({name, epoch, {seq}});
      } else {
        lru.splice(lru.begin(), lru, it);
        auto& e = lru.front();
        if (epoch < e.epoch) {
          want = false;
        } else {
          if (epoch > e.epoch) e = {name, epoch, {}};
          want = e.seen.insert(seq).second;
        }
      }
      ASSERT_EQ(static_cast<bool>(g.accept(name, epoch, seq)), want)
          << "max " << max << ", op " << op << ": " << name << " " << epoch << " " << seq;
      ASSERT_EQ(g.size(), lru.size());
    }
  }
}

// docs/reliability.md "Malformed traffic at a live node": a key holder may name a new sender in
// every packet (the flood test's sealed garbage does, with names up to 255 bytes). The table
// fills to max_senders and stays there, at a size that does not depend on the names.
TEST(ReplayGuardTest, MadeUpSendersCannotGrowItPastItsBound) {
  constexpr std::size_t max = 16384;
  constexpr std::size_t senders = 100'000;
  // Sender i's name: 1 to 255 random bytes, then i (so all differ).
  auto name_of = [](std::size_t i) {
    std::mt19937_64 rng(i);
    std::string name(1 + rng() % 240, '\0');
    for (auto& c : name) c = static_cast<char>(rng());
    return name + std::to_string(i);
  };
  const std::size_t heap_before = mallinfo2().uordblks;
  replay_guard g(max);
  for (std::size_t i = 0; i < senders; ++i) {
    ASSERT_TRUE(g.accept(name_of(i), 1, 0));
    ASSERT_LE(g.size(), max);
  }
  EXPECT_EQ(g.size(), max);
  EXPECT_EQ(g.evictions(), senders - max);
  EXPECT_LE(g.heap_bytes(), max * 88 + 64);
  // What the allocator says the guard holds: about 1.3 MiB (a table of the names themselves
  // reached about 7 MiB here).
  const std::size_t held = mallinfo2().uordblks - heap_before;
  EXPECT_LT(held, 2u * 1024 * 1024) << "guard heap_bytes " << g.heap_bytes();
  // The latest senders are remembered (a replay is caught); the evicted ones start over.
  for (std::size_t i = senders - max; i < senders; ++i) {
    ASSERT_FALSE(g.accept(name_of(i), 1, 0)) << i;
  }
  EXPECT_TRUE(g.accept(name_of(0), 1, 0));
}

class StreamCryptoTest : public ::testing::Test {
 protected:
  std::vector<std::vector<std::byte>> seal_frames(stream_sealer& s, int n) {
    std::vector<std::vector<std::byte>> frames;
    for (int i = 0; i < n; ++i)
      frames.push_back(s.seal(ring_, bytes_of("frame " + std::to_string(i))));
    return frames;
  }

  keyring ring_{secret_key::generate()};
};

TEST_F(StreamCryptoTest, FramesOpenInOrder) {
  stream_sealer sealer(ctx);
  stream_opener opener(ctx);
  const auto frames = seal_frames(sealer, 5);
  EXPECT_EQ(frames[0].size(), stream_id_bytes + packet_overhead + 7);
  EXPECT_EQ(frames[1].size(), packet_overhead + 7);
  for (int i = 0; i < 5; ++i) {
    auto plain = opener.open(ring_, frames[i]);
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(plain.value(), bytes_of("frame " + std::to_string(i)));
  }
}

TEST_F(StreamCryptoTest, ReorderedFramesAreRejected) {
  stream_sealer sealer(ctx);
  stream_opener opener(ctx);
  const auto frames = seal_frames(sealer, 3);
  ASSERT_TRUE(opener.open(ring_, frames[0]));
  auto r = opener.open(ring_, frames[2]);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::auth_failed));
  EXPECT_NE(r.error().message.find("stream frame 1"), std::string::npos) << r.error().message;
  // The stream is dead after an error, even for the frame that was due.
  EXPECT_EQ(code_of(opener.open(ring_, frames[1])), make_error_code(errc::malformed));
}

TEST_F(StreamCryptoTest, ReplayedFrameIsRejected) {
  stream_sealer sealer(ctx);
  stream_opener opener(ctx);
  const auto frames = seal_frames(sealer, 2);
  ASSERT_TRUE(opener.open(ring_, frames[0]));
  ASSERT_TRUE(opener.open(ring_, frames[1]));
  EXPECT_EQ(code_of(opener.open(ring_, frames[1])), make_error_code(errc::auth_failed));
}

TEST_F(StreamCryptoTest, FramesFromAnotherStreamAreRejected) {
  stream_sealer a(ctx);
  stream_sealer b(ctx);
  const auto fa = seal_frames(a, 2);
  const auto fb = seal_frames(b, 2);
  stream_opener opener(ctx);
  ASSERT_TRUE(opener.open(ring_, fa[0]));
  EXPECT_EQ(code_of(opener.open(ring_, fb[1])), make_error_code(errc::auth_failed));
}

TEST_F(StreamCryptoTest, PacketsAndFramesAreNotInterchangeable) {
  stream_sealer sealer(ctx);
  const auto frames = seal_frames(sealer, 2);
  // A frame (stream id stripped) is not a packet.
  std::vector<std::byte> body(frames[0].begin() + stream_id_bytes, frames[0].end());
  EXPECT_EQ(code_of(open(ring_, body, ctx)), make_error_code(errc::auth_failed));
  // A packet prefixed with a stream id is not a frame.
  std::vector<std::byte> fake(frames[0].begin(), frames[0].begin() + stream_id_bytes);
  const auto packet = seal(ring_, bytes_of("frame 0"), ctx);
  fake.insert(fake.end(), packet.begin(), packet.end());
  stream_opener opener(ctx);
  EXPECT_EQ(code_of(opener.open(ring_, fake)), make_error_code(errc::auth_failed));
}

TEST_F(StreamCryptoTest, TamperedOrShortFramesFail) {
  stream_sealer sealer(ctx);
  const auto frames = seal_frames(sealer, 1);
  for (std::size_t i = 0; i < frames[0].size(); ++i) {
    auto bad = frames[0];
    bad[i] ^= std::byte{0x80};
    stream_opener opener(ctx);
    EXPECT_FALSE(opener.open(ring_, bad)) << i;
  }
  stream_opener opener(ctx);
  EXPECT_EQ(code_of(opener.open(ring_, std::vector<std::byte>(10))),
            make_error_code(errc::malformed));
}

TEST_F(StreamCryptoTest, KeyRotationMidStreamKeepsFramesOpening) {
  stream_sealer sealer(ctx);
  stream_opener opener(ctx);
  ASSERT_TRUE(opener.open(ring_, sealer.seal(ring_, bytes_of("x"))));
  const secret_key next = key_avoiding({ring_.primary().id()});
  ASSERT_TRUE(ring_.install(next));
  ASSERT_TRUE(ring_.use(next));
  ASSERT_TRUE(opener.open(ring_, sealer.seal(ring_, bytes_of("y"))));
}

TEST_F(StreamCryptoTest, WrongClusterFailsOnTheFirstFrame) {
  stream_sealer sealer(ctx);
  associated_context other = ctx;
  other.cluster_id = "prod-us";
  stream_opener opener(other);
  EXPECT_EQ(code_of(opener.open(ring_, sealer.seal(ring_, bytes_of("x")))),
            make_error_code(errc::auth_failed));
}

// In place (the swarm's piece path): the same bytes as seal(), opened where they lie.
TEST_F(StreamCryptoTest, SealInPlaceMakesTheFramesSealMakesAndOpensInPlace) {
  stream_sealer sealer(ctx);
  stream_opener copying(ctx);
  stream_opener in_place(ctx);
  for (int i = 0; i < 4; ++i) {
    const auto plain = bytes_of(std::string(1000 + i, static_cast<char>('a' + i)));
    frame_buffer f = frame_buffer::copy_of(plain);
    sealer.seal_in_place(ring_, f);
    EXPECT_EQ(f.size(), (i == 0 ? stream_id_bytes : 0) + packet_overhead + plain.size()) << i;
    // Any opener reads it (same layout as seal()).
    auto copied = copying.open(ring_, f.bytes());
    ASSERT_TRUE(copied) << copied.error().message;
    EXPECT_EQ(copied.value(), plain);
    auto opened = in_place.open_in_place(ring_, f.bytes());
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_TRUE(
        std::equal(opened.value().begin(), opened.value().end(), plain.begin(), plain.end()));
    // The plaintext is inside the frame's own bytes, right after the header.
    const std::size_t header = (i == 0 ? stream_id_bytes : 0) + sealed_header_bytes;
    EXPECT_EQ(opened.value().data(), f.bytes().data() + header) << i;
  }
}

TEST_F(StreamCryptoTest, SealInPlaceWithoutRoomStillSeals) {
  stream_sealer sealer(ctx);
  stream_opener opener(ctx);
  frame_buffer f(0, 5, 0);  // no room in front or behind: the buffer grows (a copy)
  std::fill(f.bytes().begin(), f.bytes().end(), std::byte{7});
  sealer.seal_in_place(ring_, f);
  auto plain = opener.open(ring_, f.bytes());
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain.value(), std::vector<std::byte>(5, std::byte{7}));
}

TEST_F(StreamCryptoTest, OpenInPlaceRejectsTamperedShortAndReorderedFrames) {
  stream_sealer sealer(ctx);
  const auto frames = seal_frames(sealer, 3);
  for (std::size_t i = 0; i < frames[0].size(); ++i) {
    auto bad = frames[0];
    bad[i] ^= std::byte{0x01};
    stream_opener opener(ctx);
    auto r = opener.open_in_place(ring_, bad);
    EXPECT_FALSE(r) << i;
    // Nothing was decrypted: libsodium checks the tag first (and wipes the bytes on failure).
    const std::span<const std::byte> cipher =
        std::span<const std::byte>(bad).subspan(stream_id_bytes + sealed_header_bytes, 7);
    EXPECT_NE(std::vector<std::byte>(cipher.begin(), cipher.end()), bytes_of("frame 0")) << i;
    // The untouched frame still opens in a fresh opener: the failure was the flipped bit.
    auto good = frames[0];
    stream_opener fresh(ctx);
    EXPECT_TRUE(fresh.open_in_place(ring_, good)) << i;
  }
  for (std::size_t n = 0; n < stream_id_bytes + packet_overhead; ++n) {
    std::vector<std::byte> short_frame(frames[0].begin(), frames[0].begin() + n);
    stream_opener opener(ctx);
    auto r = opener.open_in_place(ring_, short_frame);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code, make_error_code(errc::malformed)) << n;
  }
  stream_opener opener(ctx);
  auto f0 = frames[0];
  auto f2 = frames[2];
  ASSERT_TRUE(opener.open_in_place(ring_, f0));
  EXPECT_FALSE(opener.open_in_place(ring_, f2));
  auto f1 = frames[1];
  EXPECT_FALSE(opener.open_in_place(ring_, f1));  // dead after an error
}

// Not a pass/fail check: prints the cost of one seal + open of a full packet.
TEST(PacketCryptoSpeedTest, SealPlusOpenOf1400BytePacket) {
  keyring ring(secret_key::generate());
  const std::vector<std::byte> plain(1400 - packet_overhead, std::byte{7});
  constexpr int iterations = 20000;
  std::size_t total = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    auto opened = open(ring, seal(ring, plain, ctx), ctx);
    ASSERT_TRUE(opened);
    total += opened.value().size();
  }
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(total, plain.size() * iterations);
  std::printf("seal+open of a 1400-byte packet: %lld ns/op\n",
              static_cast<long long>(ns / iterations));
}

}  // namespace
}  // namespace meshdeploy::gossip
