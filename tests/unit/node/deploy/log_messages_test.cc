// The log read wire codec (node/deploy/log_messages.h): round trips, and every limit and type
// check of the decoder on hand-built hostile msgpack.
#include "node/deploy/log_messages.h"

#include "node/deploy/errc.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace meshdeploy::deploy {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

// Bytes of whatever `fill` packs.
std::vector<std::byte> packed(const std::function<void(packer&)>& fill) {
  msgpack::sbuffer buf;
  packer p(buf);
  fill(p);
  std::vector<std::byte> out(buf.size());
  std::memcpy(out.data(), buf.data(), buf.size());
  return out;
}

// A request with the given fields, packed by hand (so that any field can be wrong).
std::vector<std::byte> raw_request(std::uint64_t version, const std::string& id,
                                   const std::string& event, std::uint64_t max_bytes) {
  return packed([&](packer& p) {
    p.pack_array(6);
    p.pack(version);
    p.pack(1);
    p.pack(7);
    p.pack(id);
    p.pack(event);
    p.pack(max_bytes);
  });
}

// The decoder's error message, "" when it accepted the bytes.
std::string rejection(const std::vector<std::byte>& bytes) {
  auto r = decode_log_message(bytes);
  if (r) return "";
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  return r.error().message;
}

TEST(LogMessagesTest, RequestRoundTrips) {
  const log_request req{42, "d-ABCDEFGH1", "ValidateService", 1u << 20};
  auto got = decode_log_message(encode_log_message(req));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(std::get<log_request>(got.value()), req);
}

TEST(LogMessagesTest, ResponseRoundTripsWithBinaryText) {
  std::string text = "line one\n";
  text += std::string("\0\xff\xfe not utf-8\n", 16);
  const log_response res{~0ull, log_status::ok, "", text, true, 5'000'000};
  auto got = decode_log_message(encode_log_message(res));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(std::get<log_response>(got.value()), res);
}

TEST(LogMessagesTest, ErrorResponseAndUnknownStatusDecodeAsSent) {
  const log_response known{3, log_status::not_found, "no such deployment", "", false, 0};
  auto a = decode_log_message(encode_log_message(known));
  ASSERT_TRUE(a);
  EXPECT_EQ(std::get<log_response>(a.value()), known);
  // A status from a newer peer is kept as it is (the service treats it as internal).
  const log_response newer{4, static_cast<log_status>(200), "what", "", false, 0};
  auto b = decode_log_message(encode_log_message(newer));
  ASSERT_TRUE(b);
  EXPECT_EQ(static_cast<int>(std::get<log_response>(b.value()).status), 200);
}

TEST(LogMessagesTest, LargestAllowedFieldsFitTheWireLimit) {
  const log_response res{1,
                         log_status::internal,
                         std::string(max_log_message_bytes, 'm'),
                         std::string(max_log_text_bytes, 'x'),
                         true,
                         ~0ull};
  const auto bytes = encode_log_message(res);
  EXPECT_LE(bytes.size(), max_log_wire_bytes);
  auto got = decode_log_message(bytes);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(std::get<log_response>(got.value()), res);
}

TEST(LogMessagesTest, RequestFieldsOverTheirLimitsAreRejected) {
  EXPECT_EQ(rejection(raw_request(1, "d-1", "", 1)), "");
  EXPECT_NE(rejection(raw_request(1, "", "", 1)).find("deployment_id is empty"), std::string::npos);
  EXPECT_NE(rejection(raw_request(1, std::string(max_log_id_bytes + 1, 'd'), "", 1))
                .find("deployment_id is 129 bytes"),
            std::string::npos);
  EXPECT_NE(rejection(raw_request(1, "d-1", std::string(max_log_event_bytes + 1, 'e'), 1))
                .find("event is 65 bytes"),
            std::string::npos);
  EXPECT_NE(rejection(raw_request(1, "d-1", "", 0)).find("max_bytes is 0"), std::string::npos);
  EXPECT_NE(rejection(raw_request(1, "d-1", "", max_log_text_bytes + 1)).find("max_bytes is"),
            std::string::npos);
}

TEST(LogMessagesTest, WrongVersionOrTypeIsRejected) {
  EXPECT_NE(rejection(raw_request(0, "d-1", "", 1)).find("protocol version 0"), std::string::npos);
  EXPECT_NE(rejection(raw_request(2, "d-1", "", 1)).find("protocol version 2"), std::string::npos);
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(2);
              p.pack(1);
              p.pack(9);
            })).find("unknown message type 9"),
            std::string::npos);
}

TEST(LogMessagesTest, WrongShapesAreRejected) {
  // Not an array, too short, wrong field counts.
  EXPECT_NE(rejection(packed([](packer& p) { p.pack(1); })), "");
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(1);
              p.pack(1);
            })),
            "");
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(3);
              p.pack(1);
              p.pack(1);
              p.pack(7);
            })).find("expected 4"),
            std::string::npos);
  // A response whose text is a string rather than bin, and whose truncated flag is a number.
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(8);
              p.pack(1);
              p.pack(2);
              p.pack(1);
              p.pack(0);
              p.pack("");
              p.pack("text");
              p.pack(false);
              p.pack(0);
            })).find("text is not bin"),
            std::string::npos);
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(8);
              p.pack(1);
              p.pack(2);
              p.pack(1);
              p.pack(0);
              p.pack("");
              p.pack_bin(0);
              p.pack(1);
              p.pack(0);
            })).find("truncated is not bool"),
            std::string::npos);
  // A negative request id, a status over a byte.
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(6);
              p.pack(1);
              p.pack(1);
              p.pack(-1);
              p.pack("d-1");
              p.pack("");
              p.pack(1);
            })).find("request_id is not an unsigned integer"),
            std::string::npos);
  EXPECT_NE(rejection(packed([](packer& p) {
              p.pack_array(8);
              p.pack(1);
              p.pack(2);
              p.pack(1);
              p.pack(256);
              p.pack("");
              p.pack_bin(0);
              p.pack(false);
              p.pack(0);
            })).find("status is 256"),
            std::string::npos);
}

TEST(LogMessagesTest, TrailingBytesGarbageAndOversizeAreRejected) {
  auto bytes = encode_log_message(log_request{1, "d-1", "", 10});
  bytes.push_back(std::byte{0});
  EXPECT_NE(rejection(bytes).find("trailing bytes"), std::string::npos);
  EXPECT_NE(rejection({std::byte{0xc1}}), "");  // never used in msgpack
  EXPECT_NE(rejection({}), "");
  // A bin header announcing more than the input holds.
  EXPECT_NE(rejection({std::byte{0x96}, std::byte{0x01}, std::byte{0x02}, std::byte{0xc6},
                       std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}}),
            "");
  std::vector<std::byte> huge(max_log_wire_bytes + 1, std::byte{0});
  EXPECT_NE(rejection(huge).find("limit"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::deploy
