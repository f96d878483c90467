#include "node/records/payloads.h"

#include "node/records/errc.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace meshdeploy::records {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

std::vector<std::byte> bytes_of(const msgpack::sbuffer& b) {
  std::vector<std::byte> out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

public_key key_of(std::uint8_t fill) {
  public_key k{};
  k.fill(fill);
  return k;
}

// One realistic payload of every type, in record_type order.
std::vector<payload> samples() {
  group_payload group{
      "web",         "prod", {{{"env", "prod"}, {"role", "web"}}, {{"name", "canary"}}},
      "HalfAtATime", true,   false};
  intent_payload intent{"d-1", "web", "prod", "ab12", "OneAtATime", {"h1", "h2", "h3"},
                        2,     1,     "d-0",  true,   "RETAIN",     "alice"};
  progress_payload progress{
      "d-1",
      "h1",
      "entered",
      {{"BeforeInstall", "Succeeded", 1000, 2000, "", "scripts/a.sh", "ok", "tail\n"},
       {"AfterInstall", "Failed", -5, 9'000'000'000'000, "ScriptFailed", "b.sh", "exit 1", ""}}};
  return {
      grant_payload{"alice", key_of(7), {"deploy:app/web/*", "*:*"}, false},
      application_payload{"web", true},
      group,
      config_payload{"HalfAtATime", 1, 50, false},
      revision_payload{"web", std::string(64, 'a'), "tgz", 123456789012ull, "", "node-1"},
      intent,
      approval_payload{"web", "prod", "", "d-1", "h1"},
      progress,
      stop_payload{"d-1", "web", "prod", "operator asked"},
      exclude_payload{"d-1", "web", "prod", "h2"},
      host_payload{"h1", key_of(9)},
  };
}

result<payload> reencode(const payload& p) { return decode_payload(type_of(p), encode_payload(p)); }

TEST(PayloadsTest, TypeOfFollowsRecordTypeOrder) {
  const auto all = samples();
  ASSERT_EQ(all.size(), max_record_type);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(static_cast<int>(type_of(all[i])), static_cast<int>(i + 1));
  }
}

TEST(PayloadsTest, EveryTypeRoundTrips) {
  for (const payload& p : samples()) {
    auto back = reencode(p);
    ASSERT_TRUE(back) << to_string(type_of(p)) << ": " << back.error().message;
    EXPECT_EQ(back.value().index(), p.index());
    EXPECT_EQ(encode_payload(back.value()), encode_payload(p)) << to_string(type_of(p));
    EXPECT_EQ(expected_key(back.value()), expected_key(p));
  }
}

TEST(PayloadsTest, RoundTripKeepsFieldValues) {
  auto all = samples();
  auto intent = reencode(all[5]);
  ASSERT_TRUE(intent);
  const auto& i = std::get<intent_payload>(intent.value());
  EXPECT_EQ(i.targets, (std::vector<std::string>{"h1", "h2", "h3"}));
  EXPECT_EQ(i.max_out_of_service, 2u);
  EXPECT_EQ(i.rollback_of, "d-0");
  EXPECT_TRUE(i.ignore_stop_failures);
  auto prog = reencode(all[7]);
  ASSERT_TRUE(prog);
  const auto& g = std::get<progress_payload>(prog.value());
  ASSERT_EQ(g.events.size(), 2u);
  EXPECT_EQ(g.events[1].start_ms, -5);
  EXPECT_EQ(g.events[1].end_ms, 9'000'000'000'000);
  EXPECT_EQ(g.events[0].log_tail, "tail\n");
  auto grp = reencode(all[2]);
  ASSERT_TRUE(grp);
  const auto& gr = std::get<group_payload>(grp.value());
  ASSERT_EQ(gr.selector.size(), 2u);
  EXPECT_EQ(gr.selector[0].at("role"), "web");
  auto grant = reencode(all[0]);
  ASSERT_TRUE(grant);
  EXPECT_EQ(std::get<grant_payload>(grant.value()).operator_key, key_of(7));
}

TEST(PayloadsTest, ExpectedKeysFollowTheTable) {
  const auto all = samples();
  EXPECT_EQ(expected_key(all[0]), to_hex(key_of(7)));
  EXPECT_EQ(expected_key(all[1]), "web");
  EXPECT_EQ(expected_key(all[2]), "web/prod");
  EXPECT_EQ(expected_key(all[3]), "HalfAtATime");
  EXPECT_EQ(expected_key(all[4]), "web/" + std::string(64, 'a'));
  EXPECT_EQ(expected_key(all[5]), "d-1");
  EXPECT_EQ(expected_key(all[6]), "web/prod//h1");
  EXPECT_EQ(expected_key(all[7]), "d-1/h1");
  EXPECT_EQ(expected_key(all[8]), "d-1");
  EXPECT_EQ(expected_key(all[9]), "d-1/h2");
  EXPECT_EQ(expected_key(all[10]), "h1");
}

TEST(PayloadsTest, ExtraTrailingElementsAreIgnored) {
  msgpack::sbuffer b;
  packer p(b);
  p.pack_array(4);
  p.pack(std::string("web"));
  p.pack(false);
  p.pack(std::string("from a newer writer"));
  p.pack(42);
  auto r = decode_payload(record_type::application, bytes_of(b));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(std::get<application_payload>(r.value()).name, "web");
}

TEST(PayloadsTest, DecodingAsAnotherTypeFails) {
  const auto bytes = encode_payload(application_payload{"web", false});
  // Same arity as host (2 fields), but the second field is a bool, not a 32-byte bin.
  auto r = decode_payload(record_type::host, bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::malformed));
  EXPECT_NE(r.error().message.find("host payload: field key"), std::string::npos)
      << r.error().message;
}

struct bad_case {
  const char* what;
  record_type type;
  std::function<void(packer&)> write;
  errc code;
  const char* message_part;
};

TEST(PayloadsTest, MalformedInputsAreRefusedWithTypeAndField) {
  const std::string long_name(129, 'n');
  const std::vector<bad_case> cases = {
      {"not an array", record_type::application, [](packer& p) { p.pack(1); }, errc::malformed,
       "application payload: not an array"},
      {"missing field", record_type::application,
       [](packer& p) {
         p.pack_array(1);
         p.pack(std::string("web"));
       },
       errc::malformed, "application payload: field deleted is missing"},
      {"int for bool", record_type::application,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string("web"));
         p.pack(1);
       },
       errc::malformed, "field deleted is not a boolean"},
      {"bin for str", record_type::application,
       [](packer& p) {
         p.pack_array(2);
         p.pack_bin(3);
         p.pack_bin_body("web", 3);
         p.pack(false);
       },
       errc::malformed, "field name is not a string"},
      {"long name", record_type::application,
       [&](packer& p) {
         p.pack_array(2);
         p.pack(long_name);
         p.pack(false);
       },
       errc::too_large, "field name is 129 bytes, limit 128"},
      {"empty name", record_type::application,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string());
         p.pack(false);
       },
       errc::schema, "field name is empty"},
      {"slash in name", record_type::group,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string("web"));
         p.pack(std::string("a/b"));
       },
       errc::schema, "group payload: field name contains '/'"},
      {"control char", record_type::host,
       [](packer& p) {
         p.pack_array(1);
         p.pack(std::string("h\n1"));
       },
       errc::schema, "field name contains a control character"},
      {"short key", record_type::host,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string("h1"));
         p.pack_bin(31);
         p.pack_bin_body(std::string(31, 'k').data(), 31);
       },
       errc::malformed, "field key is not 32 bytes of bin"},
      {"u8 out of range", record_type::config,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string("c"));
         p.pack(256);
       },
       errc::malformed, "field min_healthy_type is 256, out of range"},
      {"unknown min healthy type", record_type::config,
       [](packer& p) {
         p.pack_array(2);
         p.pack(std::string("c"));
         p.pack(3);
       },
       errc::schema, "field min_healthy_type is 3"},
      {"negative u32", record_type::config,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("c"));
         p.pack(0);
         p.pack(-1);
       },
       errc::malformed, "field value is not a non-negative integer"},
      {"float for int", record_type::config,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("c"));
         p.pack(0);
         p.pack(1.5);
       },
       errc::malformed, "field value is not a non-negative integer"},
      {"unknown format", record_type::revision,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("web"));
         p.pack(std::string("id"));
         p.pack(std::string("rar"));
       },
       errc::schema, "field format has unknown value \"rar\""},
      {"target with slash", record_type::intent,
       [](packer& p) {
         p.pack_array(6);
         for (const char* s : {"d", "a", "g", "r", "c"}) p.pack(std::string(s));
         p.pack_array(2);
         p.pack(std::string("h1"));
         p.pack(std::string("h/2"));
       },
       errc::schema, "intent payload: field targets[1] contains '/'"},
      {"too many allow patterns", record_type::grant,
       [](packer& p) {
         p.pack_array(4);
         p.pack(std::string("alice"));
         p.pack_bin(32);
         p.pack_bin_body(std::string(32, 'k').data(), 32);
         p.pack_array(257);
         for (int i = 0; i < 257; ++i) p.pack(std::string("*:*"));
         p.pack(false);
       },
       errc::too_large, "grant payload: field allow has 257 elements, limit 256"},
      {"unknown phase", record_type::progress,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("d"));
         p.pack(std::string("h"));
         p.pack(std::string("finished"));
       },
       errc::schema, "field phase has unknown value"},
      {"event field wrong", record_type::progress,
       [](packer& p) {
         p.pack_array(4);
         p.pack(std::string("d"));
         p.pack(std::string("h"));
         p.pack(std::string("entered"));
         p.pack_array(1);
         p.pack_array(3);
         p.pack(std::string("BeforeInstall"));
         p.pack(std::string("Succeeded"));
         p.pack(std::string("soon"));
       },
       errc::malformed, "progress payload: field events[0].start_ms is not an integer"},
      {"log tail too long", record_type::progress,
       [](packer& p) {
         p.pack_array(4);
         p.pack(std::string("d"));
         p.pack(std::string("h"));
         p.pack(std::string("entered"));
         p.pack_array(1);
         p.pack_array(8);
         p.pack(std::string("BeforeInstall"));
         p.pack(std::string("Succeeded"));
         p.pack(0);
         p.pack(0);
         p.pack(std::string());
         p.pack(std::string());
         p.pack(std::string());
         p.pack(std::string(16 * 1024 + 1, 'x'));
       },
       errc::too_large, "field events[0].log_tail is 16385 bytes, limit 16384"},
      {"too many events", record_type::progress,
       [](packer& p) {
         p.pack_array(4);
         p.pack(std::string("d"));
         p.pack(std::string("h"));
         p.pack(std::string("entered"));
         p.pack_array(65);
         for (int i = 0; i < 65; ++i) p.pack_nil();
       },
       errc::too_large, "field events has 65 elements, limit 64"},
      {"too many tag sets", record_type::group,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("web"));
         p.pack(std::string("prod"));
         p.pack_array(33);
         for (int i = 0; i < 33; ++i) p.pack_map(0);
       },
       errc::too_large, "field selector has 33 elements, limit 32"},
      {"tag value not string", record_type::group,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("web"));
         p.pack(std::string("prod"));
         p.pack_array(1);
         p.pack_map(1);
         p.pack(std::string("env"));
         p.pack(1);
       },
       errc::malformed, "field selector[0][env] is not a string"},
      {"duplicate tag key", record_type::group,
       [](packer& p) {
         p.pack_array(3);
         p.pack(std::string("web"));
         p.pack(std::string("prod"));
         p.pack_array(1);
         p.pack_map(2);
         p.pack(std::string("env"));
         p.pack(std::string("a"));
         p.pack(std::string("env"));
         p.pack(std::string("b"));
       },
       errc::malformed, "repeats tag key \"env\""},
      {"too many targets", record_type::intent,
       [](packer& p) {
         p.pack_array(6);
         for (const char* s : {"d", "a", "g", "r", "c"}) p.pack(std::string(s));
         p.pack_array(10'001);
         for (int i = 0; i < 10'001; ++i) p.pack(std::string("h"));
       },
       errc::too_large, "intent payload"},
      {"too deep", record_type::application,
       [](packer& p) {
         for (int i = 0; i < 6; ++i) p.pack_array(1);
         p.pack(1);
       },
       errc::too_large, "application payload"},
  };
  for (const auto& c : cases) {
    msgpack::sbuffer b;
    packer p(b);
    c.write(p);
    auto r = decode_payload(c.type, bytes_of(b));
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().code, make_error_code(c.code)) << c.what << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.what << ": " << r.error().message;
  }
}

TEST(PayloadsTest, GarbageAndTrailingBytesAreMalformed) {
  std::vector<std::byte> bytes = encode_payload(application_payload{"web", false});
  bytes.push_back(std::byte{0xc0});
  auto r = decode_payload(record_type::application, bytes);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("trailing bytes"), std::string::npos);

  const std::vector<std::byte> truncated(bytes.begin(), bytes.begin() + 3);
  EXPECT_FALSE(decode_payload(record_type::application, truncated));
  EXPECT_FALSE(decode_payload(record_type::application, {}));
  const std::vector<std::byte> reserved{std::byte{0xc1}};
  EXPECT_FALSE(decode_payload(record_type::application, reserved));
}

TEST(PayloadsTest, OversizedPayloadIsTooLarge) {
  const std::vector<std::byte> big(max_payload_bytes + 1, std::byte{0});
  auto r = decode_payload(record_type::intent, big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::too_large));
}

TEST(PayloadsTest, IntentElectorateIsOptionalAndChecked) {
  intent_payload i{"d-1", "web", "prod", "rev", "OneAtATime", {"h1", "h2"},
                   1,     0,     "",     false, "",           "alice"};
  const auto without = encode_payload(i);
  i.electorate = {"h3", "h4"};
  const auto with = encode_payload(i);
  EXPECT_GT(with.size(), without.size());  // only present when non-empty: old bytes unchanged
  auto r = decode_payload(record_type::intent, with);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(std::get<intent_payload>(r.value()).electorate, (std::vector<std::string>{"h3", "h4"}));
  auto old = decode_payload(record_type::intent, without);
  ASSERT_TRUE(old) << old.error().message;
  EXPECT_TRUE(std::get<intent_payload>(old.value()).electorate.empty());

  auto bad = [](intent_payload x, const std::string& what) {
    auto d = decode_payload(record_type::intent, encode_payload(x));
    ASSERT_FALSE(d) << what;
    EXPECT_EQ(d.error().code, make_error_code(errc::schema)) << what;
    EXPECT_NE(d.error().message.find("field electorate"), std::string::npos) << d.error().message;
  };
  i.electorate = {"h3", "h2"};
  bad(i, "names a target");
  i.electorate = {"h3", "h3"};
  bad(i, "repeats a host");
}

TEST(PayloadsTest, TenThousandTargetsFitInOnePayload) {
  intent_payload i{"d-1", "web", "prod", "rev", "OneAtATime", {}, 1, 0, "", false, "", "alice"};
  for (int n = 0; n < 10'000; ++n) i.targets.push_back("host-" + std::to_string(100000 + n));
  const auto bytes = encode_payload(i);
  EXPECT_LE(bytes.size(), max_payload_bytes);
  auto r = decode_payload(record_type::intent, bytes);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(std::get<intent_payload>(r.value()).targets.size(), 10'000u);
}

// Every prefix and every single-byte corruption of a valid payload decodes or fails cleanly.
TEST(PayloadsTest, CorruptedPayloadsNeverCrash) {
  for (const payload& p : samples()) {
    const auto bytes = encode_payload(p);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      (void)decode_payload(type_of(p), std::span(bytes).first(n));
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      auto copy = bytes;
      copy[i] ^= std::byte{0xff};
      (void)decode_payload(type_of(p), copy);
    }
  }
}

// The longest key (an approval of four 128-byte names) fits the envelope's key limit.
TEST(PayloadsTest, LongestApprovalKeyFitsTheEnvelope) {
  const std::string n(128, 'n');
  const approval_payload a{n, n, n, n, n};
  record r;
  r.type = record_type::approval;
  r.key = expected_key(a);
  r.payload = encode_payload(a);
  EXPECT_EQ(r.key.size(), 515u);
  auto back = decode(encode(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(decode_payload(record_type::approval, back.value().payload));
}

}  // namespace
}  // namespace meshdeploy::records
