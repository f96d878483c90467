#include "node/deploy/journal_store.h"

#include "storage/db.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

namespace meshdeploy::deploy {
namespace {

rollout::host_journal sample() {
  rollout::host_journal j;
  j.approved[""] = "d-1";
  j.approved["d-1"] = "d-2";
  records::intent_payload in{"d-2",        "web",        "prod", std::string(64, 'a'),
                             "OneAtATime", {"h1", "h2"}, 1,      0,
                             "",           false,        "",     "alice"};
  j.approved_intents["d-2"] = {in, 1'700'000'000'123};
  j.entered = {"d-1", "d-2"};
  records::event_progress ev;
  ev.name = "ValidateService";
  ev.status = "Failed";
  ev.error_code = "ScriptFailed";
  ev.message = "exit 3";
  j.finished["d-1"] = records::progress_payload{"d-1", "h1", "failed", {ev}};
  return j;
}

TEST(JournalStoreTest, EncodeDecodeRoundTrips) {
  const auto j = sample();
  auto back = decode_journal(encode_journal(j));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value().approved, j.approved);
  EXPECT_EQ(back.value().entered, j.entered);
  ASSERT_EQ(back.value().approved_intents.count("d-2"), 1u);
  EXPECT_EQ(back.value().approved_intents.at("d-2").first.targets,
            (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(back.value().approved_intents.at("d-2").second, 1'700'000'000'123);
  ASSERT_EQ(back.value().finished.count("d-1"), 1u);
  EXPECT_EQ(back.value().finished.at("d-1").events.at(0).message, "exit 3");
}

TEST(JournalStoreTest, HostileDocumentsAreErrorsNamingTheField) {
  struct bad_case {
    const char* text;
    const char* names;
  };
  const bad_case cases[] = {
      {"not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"approved":{},"approvedIntents":{},"finished":{}})", "entered"},
      {R"({"approved":[],"approvedIntents":{},"finished":{},"entered":[]})", "approved"},
      {R"({"approved":{"":1},"approvedIntents":{},"finished":{},"entered":[]})", "approved."},
      {R"({"approved":{},"approvedIntents":{"d":{"intent":"zz","created":1}},"finished":{},"entered":[]})",
       "approvedIntents.d"},
      {R"({"approved":{},"approvedIntents":{},"finished":{"d":"00"},"entered":[]})", "finished.d"},
      {R"({"approved":{},"approvedIntents":{},"finished":{},"entered":[1]})", "entered"},
  };
  for (const auto& c : cases) {
    auto r = decode_journal(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.names), std::string::npos)
        << c.text << " -> " << r.error().message;
  }
}

TEST(JournalStoreTest, SavedJournalSurvivesReopeningTheDatabase) {
  test::temp_dir dir{"journal"};
  {
    auto db = storage::db::open({dir / "db", {journal_store::column_family}}).value();
    journal_store js(*db);
    auto empty = js.load("web", "prod");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty.value().entered.empty());
    ASSERT_TRUE(js.save("web", "prod", sample(), /*synced=*/true));
  }
  auto db = storage::db::open({dir / "db", {journal_store::column_family}}).value();
  journal_store js(*db);
  auto j = js.load("web", "prod");
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j.value().entered, sample().entered);
  EXPECT_TRUE(js.load("web", "other").value().approved.empty());
  // A corrupted document is an error naming the group, not a crash or an empty journal.
  ASSERT_TRUE(db->put(journal_store::column_family, "web/prod", "{broken"));
  auto broken = js.load("web", "prod");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("group web/prod"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::deploy
