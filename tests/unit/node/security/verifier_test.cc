#include "node/security/verifier.h"

#include "node/records/errc.h"
#include "node/records/payloads.h"
#include "node/security/identity.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

namespace meshdeploy::security {
namespace {

using records::errc;
using records::record;
using records::record_type;

class map_trust final : public records::trust_source {
 public:
  std::vector<record> grant_history(const records::public_key& op) const override {
    auto it = grants.find(op);
    return it == grants.end() ? std::vector<record>{} : it->second;
  }
  std::optional<records::public_key> host_key(std::string_view name) const override {
    auto it = hosts.find(std::string(name));
    if (it == hosts.end()) return std::nullopt;
    return it->second;
  }
  std::optional<bool> group_auto_rollback(std::string_view app,
                                          std::string_view group) const override {
    auto it = auto_rollback.find(std::string(app) + "/" + std::string(group));
    if (it == auto_rollback.end()) return std::nullopt;
    return it->second;
  }
  std::map<records::public_key, std::vector<record>> grants;  // ascending by version
  std::map<std::string, records::public_key> hosts;
  std::map<std::string, bool> auto_rollback;  // app/group -> on
};

constexpr std::int64_t t0 = 1'700'000'000'000;

class VerifierTest : public ::testing::Test {
 protected:
  record make(const records::payload& p, const identity& by, std::int64_t time_ms,
              std::uint64_t version = 1) {
    record r;
    r.type = records::type_of(p);
    r.key = records::expected_key(p);
    r.version = version;
    r.time_ms = time_ms;
    r.payload = records::encode_payload(p);
    sign(r, by);
    return r;
  }

  // Adds a grant version for `op` signed by the admin at `time_ms`.
  void add_grant(const identity& op, std::vector<std::string> allow, bool revoked,
                 std::uint64_t version, std::int64_t time_ms) {
    trust_.grants[op.pub].push_back(
        make(records::grant_payload{op.name, op.pub, std::move(allow), revoked}, admin_, time_ms,
             version));
  }

  records::intent_payload intent(std::string app = "web", std::string group = "prod") {
    return records::intent_payload{"d-1", app, group, "rev", "OneAtATime", {"h1"},
                                   1,     0,   "",    false, "",           "alice"};
  }

  result<records::payload> check(const record& r) { return verify(r, trust_, admin_.pub); }

  identity admin_ = generate_identity("admin");
  identity alice_ = generate_identity("alice");
  identity host_ = generate_identity("h1");
  map_trust trust_;
};

void expect_error(const result<records::payload>& r, errc code, std::string_view part) {
  ASSERT_FALSE(r) << "expected " << part;
  EXPECT_EQ(r.error().code, make_error_code(code)) << r.error().message;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST(PatternTest, MatchesTable) {
  struct row {
    const char* pattern;
    const char* action;
    const char* resource;
    bool allowed;
  };
  const row rows[] = {
      {"deploy:app/web/*", "deploy", "app/web/prod", true},
      {"deploy:app/web/*", "deploy", "app/web", false},
      {"deploy:app/web/*", "stop", "app/web/prod", false},
      {"deploy:app/web/*", "deploy", "app/webx/prod", false},
      {"define:app/*", "define", "app/web", true},
      {"define:app/*", "define", "app/web/g", true},
      {"define:app/*", "define", "config/x", false},
      {"*:*", "stop", "config/anything", true},
      {"*:app/web", "deploy", "app/web", true},
      {"*:app/web", "deploy", "app/web/prod", false},
      {"deploy:app/*/prod", "deploy", "app/web/prod", true},
      {"deploy:app/*/prod", "deploy", "app/a/b/prod", true},
      {"deploy:app/*/prod", "deploy", "app/web/prodx", false},
      {"deploy:app/w*b/*", "deploy", "app/web/x", true},
      {"deploy:*", "deploy", "app/x", true},
      {"deploy:app/web/prod", "deploy", "app/web/prod", true},
      {"deploy", "deploy", "app/web/prod", false},
      {"deploy:", "deploy", "app/web/prod", false},
      {"deploy:app/web/prod**", "deploy", "app/web/prod", true},
  };
  for (const row& r : rows) {
    EXPECT_EQ(pattern_matches(r.pattern, r.action, r.resource), r.allowed)
        << r.pattern << " " << r.action << " " << r.resource;
  }
}

TEST(PatternTest, GrantAllowsIsFalseWhenRevoked) {
  records::grant_payload g{"alice", {}, {"*:*"}, false};
  EXPECT_TRUE(grant_allows(g, {"deploy", "app/web/prod"}));
  g.revoked = true;
  EXPECT_FALSE(grant_allows(g, {"deploy", "app/web/prod"}));
  g = {"alice", {}, {"define:config/*", "stop:app/web/*"}, false};
  EXPECT_TRUE(grant_allows(g, {"stop", "app/web/prod"}));
  EXPECT_FALSE(grant_allows(g, {"deploy", "app/web/prod"}));
}

TEST(PatternTest, ValidatePattern) {
  for (const char* good : {"*:*", "deploy:app/web/*", "define:config/x", "read:app/*", "stop:*",
                           "deploy:a*", "define:conf*"}) {
    EXPECT_TRUE(validate_pattern(good)) << good;
  }
  for (const char* bad : {"deploy", "launch:app/x", "deploy:", ":app/x", "deploy:web/prod",
                          "deploy:app", "Deploy:app/x"}) {
    auto r = validate_pattern(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, make_error_code(errc::schema));
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(PatternTest, RequiredPermissionTable) {
  using records::payload;
  auto req = [](const payload& p) { return required_permission(p); };
  EXPECT_EQ(req(records::application_payload{"web", false}), (permission{"define", "app/web"}));
  EXPECT_EQ(req(records::group_payload{"web", "prod", {}, "OneAtATime", false, false}),
            (permission{"define", "app/web/prod"}));
  EXPECT_EQ(req(records::config_payload{"Half", 1, 50, false}),
            (permission{"define", "config/Half"}));
  EXPECT_EQ(req(records::revision_payload{"web", "id", "zip", 1, "", ""}),
            (permission{"define", "app/web"}));
  EXPECT_EQ(req(records::intent_payload{"d", "web", "prod"}),
            (permission{"deploy", "app/web/prod"}));
  EXPECT_EQ(req(records::stop_payload{"d", "web", "prod", ""}),
            (permission{"stop", "app/web/prod"}));
  EXPECT_EQ(req(records::exclude_payload{"d", "web", "prod", "h"}),
            (permission{"stop", "app/web/prod"}));
  EXPECT_FALSE(req(records::grant_payload{}));
  EXPECT_FALSE(req(records::approval_payload{}));
  EXPECT_FALSE(req(records::progress_payload{}));
  EXPECT_FALSE(req(records::host_payload{}));
}

TEST_F(VerifierTest, AdminSignedGrantIsAccepted) {
  const record g = make(records::grant_payload{"alice", alice_.pub, {"*:*"}, false}, admin_, t0);
  ASSERT_TRUE(check(g));
}

TEST_F(VerifierTest, GrantNotSignedByAdminIsDenied) {
  const record g = make(records::grant_payload{"alice", alice_.pub, {"*:*"}, false}, alice_, t0);
  expect_error(check(g), errc::permission_denied, "grant not signed by the admin");
}

TEST_F(VerifierTest, OperatorRecordNeedsAGrant) {
  const record r = make(intent(), alice_, t0);
  expect_error(check(r), errc::unknown_writer, "no grant known");
  add_grant(alice_, {"deploy:app/web/*"}, false, 1, t0 - 1000);
  auto ok = check(r);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(std::get<records::intent_payload>(ok.value()).group, "prod");
}

TEST_F(VerifierTest, OperatorOutsideGrantIsDeniedWithNamedPermission) {
  add_grant(alice_, {"deploy:app/web/*"}, false, 1, t0 - 1000);
  const record r = make(intent("api", "prod"), alice_, t0);
  expect_error(check(r), errc::permission_denied,
               "permission denied: operator alice lacks deploy:app/api/prod");
  // Deploy rights do not let alice redefine the application.
  expect_error(check(make(records::application_payload{"web", false}, alice_, t0)),
               errc::permission_denied, "lacks define:app/web");
}

TEST_F(VerifierTest, MessagesNameTheRecordAndWriter) {
  const record r = make(intent(), alice_, t0);
  auto res = check(r);
  ASSERT_FALSE(res);
  const std::string prefix = "record intent/d-1 v1 by " + records::to_hex(alice_.pub).substr(0, 8);
  EXPECT_EQ(res.error().message.rfind(prefix, 0), 0u) << res.error().message;
}

TEST_F(VerifierTest, GrantInEffectAtRecordTimeDecides) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  add_grant(alice_, {"*:*"}, true, 2, t0 + 10'000);        // revoked from t0+10s
  add_grant(alice_, {"define:*"}, false, 3, t0 + 20'000);  // reinstated, define only
  EXPECT_TRUE(check(make(intent(), alice_, t0 + 5'000)));
  expect_error(check(make(intent(), alice_, t0 + 10'000)), errc::permission_denied,
               "operator alice is revoked (grant v2)");
  expect_error(check(make(intent(), alice_, t0 + 25'000)), errc::permission_denied,
               "lacks deploy:app/web/prod (grant v3)");
  EXPECT_TRUE(check(make(records::application_payload{"web", false}, alice_, t0 + 25'000)));
  // Older than every known grant: the oldest known version applies.
  EXPECT_TRUE(check(make(intent(), alice_, t0 - 60'000)));
}

TEST_F(VerifierTest, OldestKnownGrantAppliesWhenRecordPredatesAll) {
  // Only v2 (revoked) is known; a record "from before" it does not escape the revocation.
  add_grant(alice_, {"*:*"}, true, 2, t0);
  expect_error(check(make(intent(), alice_, t0 - 1)), errc::permission_denied, "revoked");
}

TEST_F(VerifierTest, HostRecordsMustBeSignedByTheBoundKey) {
  const records::approval_payload a{"web", "prod", "", "d-1", "h1"};
  const records::progress_payload p{"d-1", "h1", "entered", {}};
  expect_error(check(make(a, host_, t0)), errc::unknown_writer, "unknown host h1");
  trust_.hosts["h1"] = host_.pub;
  EXPECT_TRUE(check(make(a, host_, t0)));
  EXPECT_TRUE(check(make(p, host_, t0, 7)));
  expect_error(check(make(p, alice_, t0, 8)), errc::permission_denied, "not signed by host h1");
  // An operator's grant does not let it write host records.
  add_grant(alice_, {"*:*"}, false, 1, t0);
  expect_error(check(make(a, alice_, t0)), errc::permission_denied, "not signed by host h1");
}

TEST_F(VerifierTest, HostCatchUpIntentTargetsOnlyTheHostItself) {
  records::intent_payload in = intent();
  in.creator = "host:h1";
  in.targets = {"h1"};
  expect_error(check(make(in, host_, t0)), errc::unknown_writer, "unknown host h1");
  trust_.hosts["h1"] = host_.pub;
  EXPECT_TRUE(check(make(in, host_, t0)));
  // Signed by someone else, or naming other targets: refused.
  add_grant(alice_, {"*:*"}, false, 1, t0);
  expect_error(check(make(in, alice_, t0)), errc::permission_denied,
               "intent not signed by host h1");
  in.targets = {"h1", "h2"};
  expect_error(check(make(in, host_, t0)), errc::permission_denied,
               "may target only the host itself");
  in.targets = {"h2"};
  expect_error(check(make(in, host_, t0)), errc::permission_denied,
               "may target only the host itself");
}

TEST_F(VerifierTest, HostRollbackIntentNeedsAutoRollbackAndTheSignerAsTarget) {
  trust_.hosts["h1"] = host_.pub;
  records::intent_payload in = intent();
  in.creator = "host:h1";
  in.rollback_of = "d-0";
  in.targets = {"h2", "h1", "h3"};
  expect_error(check(make(in, host_, t0)), errc::unknown_writer, "group web/prod unknown");
  trust_.auto_rollback["web/prod"] = false;
  expect_error(check(make(in, host_, t0)), errc::permission_denied,
               "does not have automatic rollback on");
  trust_.auto_rollback["web/prod"] = true;
  EXPECT_TRUE(check(make(in, host_, t0)));
  in.targets = {"h2", "h3"};
  expect_error(check(make(in, host_, t0)), errc::permission_denied, "not one of its targets");
  // The submission check on a node intent needs no grant (and does not crash without one).
  in.targets = {"h1"};
  EXPECT_TRUE(check_submission(make(in, host_, t0), trust_, admin_.pub, t0));
}

TEST_F(VerifierTest, HostBindingIsSelfSigned) {
  EXPECT_TRUE(check(make(records::host_payload{"h1", host_.pub}, host_, t0)));
  expect_error(check(make(records::host_payload{"h1", host_.pub}, alice_, t0)),
               errc::permission_denied, "host record not signed by the key it binds");
}

TEST_F(VerifierTest, ImmutableTypesMustHaveVersionOne) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  expect_error(check(make(intent(), alice_, t0, 2)), errc::schema, "version other than 1");
  expect_error(check(make(records::host_payload{"h1", host_.pub}, host_, t0, 3)), errc::schema,
               "version other than 1");
  EXPECT_TRUE(check(make(records::application_payload{"web", false}, alice_, t0, 5)));
}

TEST_F(VerifierTest, KeyMustMatchPayload) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  record r = make(intent(), alice_, t0);
  r.key = "d-2";
  sign(r, alice_);
  expect_error(check(r), errc::schema, "key does not match the payload (expected \"d-1\")");
  // A grant keyed for one operator but naming another.
  record g = make(records::grant_payload{"alice", alice_.pub, {"*:*"}, false}, admin_, t0);
  g.key = records::to_hex(host_.pub);
  sign(g, admin_);
  expect_error(check(g), errc::schema, "key does not match");
}

TEST_F(VerifierTest, TamperedRecordsFailTheSignature) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  const record r = make(intent(), alice_, t0);
  ASSERT_TRUE(check(r));
  const auto bytes = records::encode(r);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= std::byte{0x04};
    auto d = records::decode(copy);
    if (!d) continue;
    auto res = check(d.value());
    ASSERT_FALSE(res) << "byte " << i;
  }
  record other = r;
  other.writer = host_.pub;  // claims another writer without re-signing
  expect_error(check(other), errc::bad_signature, "bad signature");
}

TEST_F(VerifierTest, PayloadNotMatchingTypeIsRefused) {
  record r = make(intent(), alice_, t0);
  r.type = record_type::host;
  sign(r, alice_);
  auto res = check(r);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, make_error_code(errc::malformed));
  EXPECT_NE(res.error().message.find("host payload: field key"), std::string::npos)
      << res.error().message;
}

TEST_F(VerifierTest, SubmissionNeedsTheNewestGrant) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  add_grant(alice_, {"*:*"}, true, 2, t0 + 60'000);
  // Backdated to before the revocation: verify() accepts it (as gossip would)...
  const record r = make(intent(), alice_, t0 + 1'000);
  EXPECT_TRUE(check(r));
  // ...but a node's API refuses it: the newest grant is revoked.
  auto sub = check_submission(r, trust_, admin_.pub, t0 + 2'000);
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, make_error_code(errc::permission_denied));
  EXPECT_NE(sub.error().message.find("revoked"), std::string::npos) << sub.error().message;
}

TEST_F(VerifierTest, SubmissionNamesMissingPermission) {
  add_grant(alice_, {"*:*"}, false, 1, t0);
  add_grant(alice_, {"deploy:app/api/*"}, false, 2, t0 + 60'000);
  const record r = make(intent(), alice_, t0 + 1'000);
  auto sub = check_submission(r, trust_, admin_.pub, t0 + 2'000);
  ASSERT_FALSE(sub);
  EXPECT_NE(sub.error().message.find("permission denied: operator alice lacks deploy:app/web/prod"),
            std::string::npos)
      << sub.error().message;
}

TEST_F(VerifierTest, SubmissionRefusesClockSkew) {
  add_grant(alice_, {"*:*"}, false, 1, t0 - 3'600'000);
  const record r = make(intent(), alice_, t0);
  EXPECT_TRUE(check_submission(r, trust_, admin_.pub, t0 + max_clock_skew_ms));
  EXPECT_TRUE(check_submission(r, trust_, admin_.pub, t0 - max_clock_skew_ms));
  for (std::int64_t now : {t0 + max_clock_skew_ms + 1, t0 - max_clock_skew_ms - 1}) {
    auto sub = check_submission(r, trust_, admin_.pub, now);
    ASSERT_FALSE(sub);
    EXPECT_EQ(sub.error().code, make_error_code(errc::stale));
    EXPECT_NE(sub.error().message.find("clock skew"), std::string::npos);
  }
  // Extreme values do not overflow.
  record far = make(intent(), alice_, std::numeric_limits<std::int64_t>::min());
  EXPECT_FALSE(check_submission(far, trust_, admin_.pub, std::numeric_limits<std::int64_t>::max()));
}

TEST_F(VerifierTest, SubmittedGrantsAndHostRecordsNeedNoFreshness) {
  // An admin signs grants offline; they may be submitted much later.
  const record g = make(records::grant_payload{"alice", alice_.pub, {"*:*"}, false}, admin_, t0);
  EXPECT_TRUE(check_submission(g, trust_, admin_.pub, t0 + 86'400'000));
  trust_.hosts["h1"] = host_.pub;
  EXPECT_TRUE(
      check_submission(make(records::progress_payload{"d-1", "h1", "entered", {}}, host_, t0),
                       trust_, admin_.pub, t0 + 86'400'000));
}

}  // namespace
}  // namespace meshdeploy::security
