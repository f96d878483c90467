// The piece manifest: encoding round trips, every decoder error, random and mutated bytes never
// crash the decoder, piece geometry, and manifests cut from real files.
#include "node/swarm/manifest.h"

#include "node/agent/errc.h"
#include "node/agent/revision.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <fstream>
#include <random>
#include <string>

namespace meshdeploy::swarm {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

piece_hash hash_with(std::uint8_t fill) {
  piece_hash h{};
  h.fill(static_cast<std::byte>(fill));
  return h;
}

manifest sample(std::uint64_t size, std::uint32_t piece_size = default_piece_size) {
  manifest m;
  m.size = size;
  m.piece_size = piece_size;
  const std::uint64_t count = size / piece_size + (size % piece_size != 0 ? 1 : 0);
  for (std::uint64_t i = 0; i < count; ++i)
    m.pieces.push_back(hash_with(static_cast<std::uint8_t>(i)));
  return m;
}

std::string hex(const piece_hash& h) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : h) {
    out += digits[std::to_integer<unsigned>(b) >> 4];
    out += digits[std::to_integer<unsigned>(b) & 15];
  }
  return out;
}

// Builds arbitrary msgpack for the decoder's error paths.
class wire {
 public:
  wire() : p_(buf_) {}
  msgpack::packer<msgpack::sbuffer>& p() { return p_; }
  wire& array(std::uint32_t n) { return p_.pack_array(n), *this; }
  template <class T>
  wire& put(const T& v) {
    return p_.pack(v), *this;
  }
  wire& bin(std::size_t n) {
    p_.pack_bin(static_cast<std::uint32_t>(n));
    const std::string zeros(n, '\0');
    p_.pack_bin_body(zeros.data(), static_cast<std::uint32_t>(n));
    return *this;
  }
  std::vector<std::byte> bytes() const {
    std::vector<std::byte> out(buf_.size());
    std::memcpy(out.data(), buf_.data(), buf_.size());
    return out;
  }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> p_;
};

// The decoder refuses `bytes` with invalid_argument and a message containing `needle`.
void expect_refused(const std::vector<std::byte>& bytes, const std::string& needle) {
  auto got = decode_manifest(bytes);
  ASSERT_FALSE(got.has_value()) << "accepted; expected an error containing " << needle;
  EXPECT_EQ(got.error().code, make_error_code(agent::errc::invalid_argument));
  EXPECT_NE(got.error().message.find(needle), std::string::npos) << got.error().message;
}

TEST(ManifestTest, RoundTripsThroughTheEncoding) {
  for (const std::uint64_t size :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{default_piece_size},
        std::uint64_t{default_piece_size} + 1, std::uint64_t{5} * default_piece_size - 7}) {
    const manifest m = sample(size);
    auto got = decode_manifest(encode_manifest(m));
    ASSERT_TRUE(got.has_value()) << size << ": " << got.error().message;
    EXPECT_EQ(got.value(), m) << size;
  }
  const manifest small = sample(3 * min_piece_size, min_piece_size);
  EXPECT_EQ(decode_manifest(encode_manifest(small)).value(), small);
  const manifest large = sample(std::uint64_t{2} * max_piece_size + 1, max_piece_size);
  EXPECT_EQ(decode_manifest(encode_manifest(large)).value(), large);
}

TEST(ManifestTest, RoundTripsAtTheLargestPieceCount) {
  const manifest m = sample(std::uint64_t{max_pieces} * min_piece_size, min_piece_size);
  ASSERT_EQ(m.piece_count(), max_pieces);
  auto got = decode_manifest(encode_manifest(m));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got.value(), m);
}

TEST(ManifestTest, HashPieceIsBlake2b256) {
  // Reference values from Python's hashlib.blake2b(data, digest_size=32).
  EXPECT_EQ(hex(hash_piece({})),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  const std::string abc = "abc";
  EXPECT_EQ(hex(hash_piece(std::as_bytes(std::span(abc.data(), abc.size())))),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST(ManifestTest, IdIsTheHashOfTheEncoding) {
  const test::temp_dir dir("manifest-id");
  const auto encoded = encode_manifest(sample(3 * default_piece_size + 5));
  const fs::path file = dir / "m";
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(encoded.data()),
             static_cast<std::streamsize>(encoded.size()));
  const std::string id = manifest_id(encoded);
  EXPECT_TRUE(agent::is_revision_id(id)) << id;
  EXPECT_EQ(id, agent::hash_file(file).value());  // an independent BLAKE2b-256 hex
  auto other = encode_manifest(sample(3 * default_piece_size + 6));
  EXPECT_NE(manifest_id(other), id);
}

TEST(ManifestTest, PieceGeometryHasAShortLastPiece) {
  const manifest ragged = sample(std::uint64_t{3} * default_piece_size + 100);
  ASSERT_EQ(ragged.piece_count(), 4u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ragged.piece_offset(i), i * default_piece_size);
    EXPECT_EQ(ragged.piece_length(i), default_piece_size);
  }
  EXPECT_EQ(ragged.piece_offset(3), 3u * default_piece_size);
  EXPECT_EQ(ragged.piece_length(3), 100u);
  EXPECT_EQ(ragged.piece_length(4), 0u);  // past the end

  const manifest exact = sample(std::uint64_t{2} * default_piece_size);
  ASSERT_EQ(exact.piece_count(), 2u);
  EXPECT_EQ(exact.piece_length(1), default_piece_size);
  EXPECT_EQ(exact.piece_length(2), 0u);

  const manifest one = sample(1);
  ASSERT_EQ(one.piece_count(), 1u);
  EXPECT_EQ(one.piece_length(0), 1u);

  EXPECT_EQ(sample(0).piece_count(), 0u);
  EXPECT_EQ(sample(0).piece_length(0), 0u);
}

TEST(ManifestTest, DecoderRefusesWhatIsNotAManifest) {
  expect_refused({}, "not msgpack");
  expect_refused({std::byte{0xc1}}, "not msgpack");  // a never-used msgpack byte
  auto truncated = encode_manifest(sample(default_piece_size * 2));
  truncated.pop_back();
  expect_refused(truncated, "not msgpack");
  expect_refused(wire().put(7).bytes(), "not an array of 4 fields");
  expect_refused(wire().array(3).put(1).put(0).put(default_piece_size).bytes(),
                 "not an array of 4 fields");
  expect_refused(wire().array(5).put(1).put(0).put(default_piece_size).bin(0).put(0).bytes(),
                 "not msgpack");  // more elements than the unpack limit allows
  // A string, a map or a nested array is beyond the unpack limits.
  expect_refused(
      wire().array(4).put(std::string("1")).put(0).put(default_piece_size).bin(0).bytes(),
      "not msgpack");
  expect_refused(wire().array(4).put(1).put(0).put(default_piece_size).array(0).bytes(),
                 "not msgpack");
}

TEST(ManifestTest, DecoderRefusesBadFields) {
  const std::uint32_t ps = default_piece_size;
  expect_refused(wire().array(4).put(-1).put(0).put(ps).bin(0).bytes(),
                 "field version is not an unsigned integer");
  expect_refused(wire().array(4).put(2).put(0).put(ps).bin(0).bytes(), "version 2");
  expect_refused(wire().array(4).put(0).put(0).put(ps).bin(0).bytes(), "version 0");
  expect_refused(wire().array(4).put(1).put(-5).put(ps).bin(0).bytes(),
                 "field size is not an unsigned integer");
  expect_refused(wire().array(4).put(1).put(true).put(ps).bin(0).bytes(),
                 "field size is not an unsigned integer");
  expect_refused(wire().array(4).put(1).put(0).put(1.5).bin(0).bytes(),
                 "field piece_size is not an unsigned integer");
  expect_refused(wire().array(4).put(1).put(0).put(min_piece_size - 1).bin(0).bytes(),
                 "piece size 16383 outside");
  expect_refused(wire().array(4).put(1).put(0).put(0).bin(0).bytes(), "piece size 0 outside");
  expect_refused(wire().array(4).put(1).put(0).put(max_piece_size + 1).bin(0).bytes(),
                 "outside [16384, 16777216]");
  expect_refused(wire().array(4).put(1).put(0).put(std::uint64_t{1} << 40).bin(0).bytes(),
                 "outside");
  expect_refused(wire().array(4).put(1).put(0).put(ps).put(msgpack::type::nil_t()).bytes(),
                 "field hashes is not bin");
}

TEST(ManifestTest, DecoderRefusesHashBytesThatDoNotFitTheSize) {
  const std::uint32_t ps = default_piece_size;
  // 2 pieces need 64 hash bytes.
  expect_refused(wire().array(4).put(1).put(std::uint64_t{ps} + 1).put(ps).bin(63).bytes(),
                 "63 hash bytes, expected 64");
  expect_refused(wire().array(4).put(1).put(std::uint64_t{ps} + 1).put(ps).bin(96).bytes(),
                 "96 hash bytes, expected 64");
  expect_refused(wire().array(4).put(1).put(0).put(ps).bin(32).bytes(),
                 "32 hash bytes, expected 0");
  expect_refused(wire().array(4).put(1).put(std::uint64_t{1}).put(ps).bin(0).bytes(),
                 "0 hash bytes, expected 32");
}

TEST(ManifestTest, DecoderRefusesTooManyPieces) {
  const std::uint64_t size = std::uint64_t{max_pieces} * min_piece_size + 1;
  expect_refused(wire().array(4).put(1).put(size).put(min_piece_size).bin(0).bytes(),
                 "65537 pieces, limit 65536");
  // The largest size a u64 holds does not overflow the piece count.
  expect_refused(wire().array(4).put(1).put(UINT64_MAX).put(max_piece_size).bin(0).bytes(),
                 "limit 65536");
  // More hash bytes than any manifest may carry: refused before they are read.
  expect_refused(
      wire().array(4).put(1).put(size).put(min_piece_size).bin((max_pieces + 1) * 32).bytes(),
      "bytes, limit");
}

TEST(ManifestTest, DecoderRefusesTrailingBytes) {
  auto bytes = encode_manifest(sample(default_piece_size));
  bytes.push_back(std::byte{0});
  expect_refused(bytes, "trailing bytes");
}

// Whatever the decoder accepts is a consistent manifest that round-trips.
void check_accepted(const manifest& m) {
  ASSERT_GE(m.piece_size, min_piece_size);
  ASSERT_LE(m.piece_size, max_piece_size);
  ASSERT_LE(m.piece_count(), max_pieces);
  ASSERT_EQ(m.piece_count(), m.size / m.piece_size + (m.size % m.piece_size != 0 ? 1 : 0));
  auto again = decode_manifest(encode_manifest(m));
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again.value(), m);
}

TEST(ManifestTest, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(20261129);
  for (int i = 0; i < 20000; ++i) {
    auto bytes = random_bytes(rng() % 160, static_cast<std::uint32_t>(rng()));
    // Start most inputs like a manifest so that the decoder gets past the first checks.
    if (bytes.size() >= 2 && (i % 4) != 0) {
      bytes[0] = std::byte{0x94};  // fixarray of 4
      bytes[1] = std::byte{0x01};  // version 1
    }
    auto got = decode_manifest(bytes);
    if (got.has_value()) {
      check_accepted(got.value());
    } else {
      ASSERT_FALSE(got.error().message.empty());
    }
  }
}

TEST(ManifestTest, MutatedManifestsNeverCrashTheDecoder) {
  const auto valid = encode_manifest(sample(3 * min_piece_size + 11, min_piece_size));
  std::mt19937 rng(6);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0:  // flip a byte
          bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
          break;
        case 1:  // cut
          bytes.resize(rng() % (bytes.size() + 1));
          break;
        default:  // append
          bytes.push_back(static_cast<std::byte>(rng()));
      }
      if (bytes.empty()) bytes.push_back(std::byte{0x94});
    }
    auto got = decode_manifest(bytes);
    if (got.has_value()) {
      ++accepted;
      check_accepted(got.value());
    } else {
      ASSERT_FALSE(got.error().message.empty());
    }
  }
  EXPECT_GT(accepted, 0);  // flips inside the hashes still decode: the loop reached the end
}

class ManifestOfFileTest : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::vector<std::byte>& bytes) {
    const fs::path file = dir_ / name;
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return file;
  }

  // The file's manifest lists the hash of each slice of `bytes`.
  void expect_pieces_of(const std::vector<std::byte>& bytes, std::uint32_t piece_size) {
    const fs::path file = write("bundle", bytes);
    auto got = manifest_of_file(file, piece_size);
    ASSERT_TRUE(got.has_value()) << got.error().message;
    const manifest& m = got.value();
    EXPECT_EQ(m.size, bytes.size());
    EXPECT_EQ(m.piece_size, piece_size);
    ASSERT_EQ(m.piece_count(), (bytes.size() + piece_size - 1) / piece_size);
    for (std::size_t i = 0; i < m.piece_count(); ++i) {
      const auto slice = std::span(bytes).subspan(m.piece_offset(i), m.piece_length(i));
      EXPECT_EQ(m.pieces[i], hash_piece(slice)) << "piece " << i;
    }
    auto again = decode_manifest(encode_manifest(m));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again.value(), m);
  }

  test::temp_dir dir_{"manifest-of-file"};
};

TEST_F(ManifestOfFileTest, EmptyFileHasNoPieces) { expect_pieces_of({}, default_piece_size); }

TEST_F(ManifestOfFileTest, ExactMultipleHasFullPieces) {
  expect_pieces_of(random_bytes(4 * min_piece_size, 1), min_piece_size);
}

TEST_F(ManifestOfFileTest, RaggedSizeHasAShortLastPiece) {
  expect_pieces_of(random_bytes(2 * default_piece_size + 123, 2), default_piece_size);
  expect_pieces_of(random_bytes(1, 3), default_piece_size);
  expect_pieces_of(random_bytes(min_piece_size - 1, 4), min_piece_size);
}

TEST_F(ManifestOfFileTest, DefaultPieceSizeIs256KiB) {
  const fs::path file = write("bundle", random_bytes(default_piece_size + 1, 5));
  auto got = manifest_of_file(file);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got.value().piece_size, 256u * 1024u);
  EXPECT_EQ(got.value().piece_count(), 2u);
}

TEST_F(ManifestOfFileTest, MissingFileIsAnIoErrorNamingIt) {
  auto got = manifest_of_file(dir_ / "nope");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, make_error_code(agent::errc::io_error));
  EXPECT_NE(got.error().message.find((dir_ / "nope").string()), std::string::npos);
}

TEST_F(ManifestOfFileTest, DirectoryIsRefused) {
  auto got = manifest_of_file(dir_.path());
  ASSERT_FALSE(got.has_value());
  EXPECT_NE(got.error().message.find("not a regular file"), std::string::npos);
}

TEST_F(ManifestOfFileTest, PieceSizeOutOfRangeIsRefused) {
  const fs::path file = write("bundle", random_bytes(10, 6));
  for (const std::uint32_t ps : {std::uint32_t{0}, min_piece_size - 1, max_piece_size + 1}) {
    auto got = manifest_of_file(file, ps);
    ASSERT_FALSE(got.has_value()) << ps;
    EXPECT_EQ(got.error().code, make_error_code(agent::errc::invalid_argument));
  }
}

}  // namespace
}  // namespace meshdeploy::swarm
