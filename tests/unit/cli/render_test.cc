#include "cli/render.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::cli {
namespace {

using nlohmann::json;

json doc(const std::string& status, const std::string& ev_status) {
  return json{
      {"deploymentId", "d-1"},
      {"status", status},
      {"createTime", "2026-01-01T00:00:00.000Z"},
      {"hosts",
       {{{"host", "h1"},
         {"status", ev_status == "Failed" ? "Failed" : "InProgress"},
         {"events",
          {{{"name", "ValidateService"},
            {"status", ev_status},
            {"startTime", "2026-01-01T00:00:01.000Z"},
            {"endTime", ev_status == "InProgress" ? json() : json("2026-01-01T00:00:01.250Z")},
            {"diagnostics", ev_status == "Failed" ? json{{"errorCode", "ScriptFailed"},
                                                         {"scriptName", "v.sh"},
                                                         {"message", "exit 3"},
                                                         {"logTail", "a\nb\nc\n"}}
                                                  : json()}}}}}}}};
}

TEST(RenderTest, TableAlignsColumns) {
  const std::string t = render_table({"A", "LONGER"}, {{"xxxx", "y"}, {"z", "w"}});
  EXPECT_EQ(t, "A     LONGER\nxxxx  y\nz     w\n");
}

TEST(RenderTest, DurationFormatsMillisAndSeconds) {
  EXPECT_EQ(duration_between("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.087Z"), "87ms");
  EXPECT_EQ(duration_between("2026-01-01T00:00:00.000Z", "2026-01-01T00:01:01.500Z"), "61.500s");
  EXPECT_EQ(duration_between(json(), "2026-01-01T00:00:00.087Z"), "");
}

TEST(RenderTest, ProgressReportsStartsAndFailuresOnce) {
  auto l1 = progress_lines(json(), doc("InProgress", "InProgress"));
  ASSERT_EQ(l1.size(), 2u);
  EXPECT_NE(l1[0].find("ValidateService"), std::string::npos);
  EXPECT_NE(l1[0].find("started"), std::string::npos);
  auto l2 = progress_lines(doc("InProgress", "InProgress"), doc("Failed", "Failed"));
  ASSERT_GE(l2.size(), 2u);
  EXPECT_NE(l2[0].find("ScriptFailed: exit 3"), std::string::npos) << l2[0];
  EXPECT_NE(l2[0].find("250ms"), std::string::npos) << l2[0];
  EXPECT_TRUE(progress_lines(doc("Failed", "Failed"), doc("Failed", "Failed")).empty());
}

TEST(RenderTest, StatusShowsFailingEventLogTail) {
  const std::string s = render_status(doc("Failed", "Failed"), 2);
  EXPECT_NE(s.find("ValidateService failed: exit 3"), std::string::npos) << s;
  EXPECT_NE(s.find("| c"), std::string::npos);
  EXPECT_EQ(s.find("| a"), std::string::npos) << "only the last 2 lines";
}

json fleet() {
  auto host = [](const std::string& name, const std::string& st, const std::string& event,
                 const std::string& msg) {
    json events = json::array();
    if (!event.empty()) {
      json e{{"name", event}, {"status", "InProgress"}};
      if (!msg.empty()) e["message"] = msg;
      events.push_back(e);
    }
    return json{{"host", name}, {"status", st}, {"events", events}};
  };
  return json{{"deploymentId", "d-AB12CD34E"},
              {"status", "InProgress"},
              {"hosts",
               {host("h1", "Succeeded", "", ""), host("h2", "Failed", "", ""),
                host("h3", "InProgress", "DownloadBundle",
                     "downloading the bundle: 12.0 of 64.0 MiB (18%)"),
                host("h4", "InProgress", "AfterInstall", ""), host("h5", "Pending", "", ""),
                host("h6", "Skipped", "", "")}}};
}

TEST(RenderTest, LiveViewShowsBarCountsAndTheWindow) {
  const std::string v = render_live(fleet(), 200, 8, 12);
  EXPECT_EQ(v,
            "d-AB12CD34E  InProgress  [######......] 3/6 hosts\n"
            "  2 done, 2 in progress, 1 failed, 1 pending\n"
            "  h3  DownloadBundle   downloading the bundle: 12.0 of 64.0 MiB (18%)\n"
            "  h4  AfterInstall\n");
}

TEST(RenderTest, LiveViewLimitsHostsAndWidth) {
  const std::string v = render_live(fleet(), 30, 1, 10);
  EXPECT_NE(v.find("  ... and 1 more in progress\n"), std::string::npos) << v;
  EXPECT_EQ(v.find("h4"), std::string::npos) << v;
  std::size_t start = 0;
  for (std::size_t nl; (nl = v.find('\n', start)) != std::string::npos; start = nl + 1) {
    EXPECT_LE(nl - start, 30u) << v;
  }
  EXPECT_EQ(render_live(json{{"deploymentId", "d-X"}, {"status", "Queued"}}, 80, 8, 4),
            "d-X  Queued  [....] 0/0 hosts\n  0 done, 0 in progress, 0 failed, 0 pending\n");
}

}  // namespace
}  // namespace meshdeploy::cli
