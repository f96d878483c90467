#include "node/agent/appspec.h"

#include "node/agent/errc.h"
#include "tests/support/temp_dir.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// The two lines every appspec starts with in these tests; the lines that
// follow are therefore numbered from 3.
constexpr const char* head = "version: 0.0\nos: linux\n";

// One appspec that must be refused: the error must name `key` on `line`
// ("appspec.yml:<line>: <key>: ...") and contain `words`.
struct bad_case {
  std::string what;
  std::string yaml;
  int line;
  std::string key;
  std::string words;
};

void expect_rejected(const std::vector<bad_case>& cases) {
  for (const bad_case& c : cases) {
    SCOPED_TRACE(c.what);
    const auto r = parse_appspec(c.yaml);
    ASSERT_FALSE(r) << "accepted:\n" << c.yaml;
    EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
    // Line 0 stands for "no line" (an empty document has none).
    std::string prefix = c.line > 0 ? fmt::format("appspec.yml:{}: ", c.line) : "appspec.yml: ";
    if (!c.key.empty()) prefix += c.key + ": ";
    EXPECT_THAT(r.error().message, HasSubstr(prefix));
    EXPECT_THAT(r.error().message, HasSubstr(c.words));
  }
}

appspec parse_ok(const std::string& yaml) {
  auto r = parse_appspec(yaml);
  EXPECT_TRUE(r) << (r ? "" : r.error().message) << "\n" << yaml;
  return r ? std::move(r).value() : appspec{};
}

// --- what is accepted ---------------------------------------------------------

TEST(AppspecTest, ParsesMinimalAppspec) {
  const appspec a = parse_ok(head);
  EXPECT_EQ(a.version, "0.0");
  EXPECT_EQ(a.os, "linux");
  EXPECT_TRUE(a.files.empty());
  EXPECT_FALSE(a.file_exists.has_value());
  EXPECT_TRUE(a.permissions.empty());
  EXPECT_TRUE(a.hooks.empty());
  EXPECT_EQ(a.file_name, "appspec.yml");
}

TEST(AppspecTest, ParsesFullAppspecWithEveryKey) {
  const appspec a = parse_ok(R"(version: 0.0
os: linux
files:
  - source: /
    destination: /var/www/html
  - source: config/app.conf
    destination: /etc/app
file_exists_behavior: OVERWRITE
permissions:
  - object: /var/www/html
    pattern: "*.html"
    except: [secret.html, "draft-*"]
    owner: nobody
    group: nogroup
    mode: 644
    acls:
      - u:alice:rw
      - d:g:ops:rwx
    context:
      user: system_u
      type: httpd_sys_content_t
      range: s0-s1:c0.c3,c7
    type:
      - file
  - object: /etc/app
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 60
  BeforeInstall:
    - location: scripts/clean.sh
  AfterInstall:
    - location: scripts/configure.sh
      timeout: 300
      runas: nobody
    - location: scripts/migrate.sh
      timeout: 600
)");
  ASSERT_EQ(a.files.size(), 2u);
  EXPECT_EQ(a.files[0].source, "/");
  EXPECT_EQ(a.files[0].destination, "/var/www/html");
  EXPECT_EQ(a.files[0].line, 4);
  EXPECT_EQ(a.files[1].source, "config/app.conf");
  EXPECT_EQ(a.files[1].destination, "/etc/app");
  EXPECT_EQ(a.files[1].line, 6);
  EXPECT_EQ(a.file_exists, file_exists_behavior::overwrite);

  ASSERT_EQ(a.permissions.size(), 2u);
  const permission_rule& p = a.permissions[0];
  EXPECT_EQ(p.object, "/var/www/html");
  EXPECT_EQ(p.pattern, "*.html");
  EXPECT_THAT(p.except, ElementsAre("secret.html", "draft-*"));
  EXPECT_EQ(p.owner, "nobody");
  EXPECT_EQ(p.group, "nogroup");
  EXPECT_EQ(p.mode, 0644u);
  EXPECT_THAT(p.acls, ElementsAre("u:alice:rw", "d:g:ops:rwx"));
  ASSERT_TRUE(p.context.has_value());
  EXPECT_EQ(p.context->user, "system_u");
  EXPECT_EQ(p.context->type, "httpd_sys_content_t");
  EXPECT_EQ(p.context->range, "s0-s1:c0.c3,c7");
  EXPECT_THAT(p.types, ElementsAre(object_type::file));
  EXPECT_EQ(p.line, 10);
  const permission_rule& q = a.permissions[1];
  EXPECT_EQ(q.object, "/etc/app");
  EXPECT_EQ(q.pattern, "**");
  EXPECT_TRUE(q.except.empty());
  EXPECT_FALSE(q.owner || q.group || q.mode || q.context);
  EXPECT_TRUE(q.types.empty());
  EXPECT_EQ(q.line, 25);

  ASSERT_EQ(a.hooks.size(), 3u);
  const auto& stop = a.hooks.at(lifecycle_event::application_stop);
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].location, "scripts/stop.sh");
  EXPECT_EQ(stop[0].timeout, 60s);
  EXPECT_EQ(stop[0].runas, "");
  EXPECT_EQ(stop[0].line, 28);
  const auto& before = a.hooks.at(lifecycle_event::before_install);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].timeout, 3600s);
  const auto& after = a.hooks.at(lifecycle_event::after_install);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].location, "scripts/configure.sh");
  EXPECT_EQ(after[0].timeout, 300s);
  EXPECT_EQ(after[0].runas, "nobody");
  EXPECT_EQ(after[0].line, 33);
  EXPECT_EQ(after[1].location, "scripts/migrate.sh");
  EXPECT_EQ(after[1].timeout, 600s);
  EXPECT_EQ(after[1].line, 36);
}

TEST(AppspecTest, AcceptsCommentsQuotedFormsAndFlowStyle) {
  const appspec a = parse_ok(R"(# deployed by meshdeploy
version: "0.0"   # quoted, which CodeDeploy's agent refuses
os: 'linux'
files: [{source: "app", destination: '/opt/app'}]   # flow style
file_exists_behavior: "RETAIN"
permissions:
  - {object: "/opt/app", mode: "0755", type: ["directory"]}
hooks:
  # a comment between keys
  ApplicationStart:
    - location: "scripts/start.sh"   # quoted location
      timeout: "120"
      runas: 'nobody'
)");
  EXPECT_EQ(a.version, "0.0");
  EXPECT_EQ(a.os, "linux");
  ASSERT_EQ(a.files.size(), 1u);
  EXPECT_EQ(a.files[0].source, "app");
  EXPECT_EQ(a.files[0].destination, "/opt/app");
  EXPECT_EQ(a.file_exists, file_exists_behavior::retain);
  ASSERT_EQ(a.permissions.size(), 1u);
  EXPECT_EQ(a.permissions[0].mode, 0755u);
  EXPECT_THAT(a.permissions[0].types, ElementsAre(object_type::directory));
  const auto& start = a.hooks.at(lifecycle_event::application_start);
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0].location, "scripts/start.sh");
  EXPECT_EQ(start[0].timeout, 120s);
  EXPECT_EQ(start[0].runas, "nobody");
  EXPECT_EQ(start[0].line, 11);
}

TEST(AppspecTest, AcceptsWindowsLineEndingsAndUsesTheGivenFileName) {
  auto r =
      parse_appspec("version: 0.0\r\nos: linux\r\nfiles:\r\n  - source: a\r\n", "appspec.yaml");
  ASSERT_FALSE(r);
  // The mapping lacks destination; the message uses the given file name.
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yaml:4: files[0].destination: "));
  const appspec a = parse_ok("version: 0.0\r\nos: linux\r\n");
  EXPECT_EQ(a.os, "linux");
}

TEST(AppspecTest, AcceptsAHookOnEveryNonReservedEvent) {
  std::string yaml = std::string(head) + "hooks:\n";
  int hookable = 0;
  for (lifecycle_event e : lifecycle_order()) {
    if (is_reserved(e)) continue;
    ++hookable;
    yaml += fmt::format("  {}:\n    - location: scripts/{}.sh\n", to_string(e), to_string(e));
  }
  EXPECT_EQ(hookable, 9);
  const appspec a = parse_ok(yaml);
  ASSERT_EQ(a.hooks.size(), 9u);
  for (const auto& [event, scripts] : a.hooks) {
    EXPECT_FALSE(is_reserved(event));
    ASSERT_EQ(scripts.size(), 1u);
    EXPECT_EQ(scripts[0].location, fmt::format("scripts/{}.sh", to_string(event)));
  }
}

TEST(AppspecTest, NullSectionsAndNullOptionalKeysCountAsAbsent) {
  const appspec a = parse_ok(std::string(head) + R"(files:
permissions:
file_exists_behavior: ~
hooks:
  AfterInstall:
  ApplicationStart:
    - location: start.sh
      timeout:
      runas: null
)");
  EXPECT_TRUE(a.files.empty());
  EXPECT_TRUE(a.permissions.empty());
  EXPECT_FALSE(a.file_exists.has_value());
  EXPECT_EQ(a.hooks.count(lifecycle_event::after_install), 0u);
  const auto& start = a.hooks.at(lifecycle_event::application_start);
  EXPECT_EQ(start[0].timeout, 3600s);
  EXPECT_EQ(start[0].runas, "");
}

TEST(AppspecTest, ModeIsOctalWhateverTheSpelling) {
  const std::vector<std::pair<std::string, unsigned>> cases = {
      {"644", 0644},     {"\"644\"", 0644}, {"0644", 0644}, {"\"0644\"", 0644},
      {"4755", 04755},   {"04755", 04755},  {"7", 07},      {"00", 0},
      {"'2775'", 02775}, {"1777", 01777},   {"0777", 0777},
  };
  for (const auto& [text, mode] : cases) {
    const appspec a =
        parse_ok(std::string(head) + "permissions:\n  - object: /x\n    mode: " + text + "\n");
    ASSERT_EQ(a.permissions.size(), 1u) << text;
    EXPECT_EQ(a.permissions[0].mode, mode) << text;
  }
}

TEST(AppspecTest, LocationIsTrimmedAndLeadingSlashMeansRevisionRoot) {
  const appspec a = parse_ok(std::string(head) + R"(hooks:
  AfterInstall:
    - location: /scripts/a.sh
    - location: "  scripts/b.sh  "
)");
  const auto& s = a.hooks.at(lifecycle_event::after_install);
  EXPECT_EQ(s[0].location, "scripts/a.sh");
  EXPECT_EQ(s[1].location, "scripts/b.sh");
}

TEST(AppspecTest, ContextAcceptsNameAsTheAgentReadsIt) {
  const appspec a = parse_ok(std::string(head) + R"(permissions:
  - object: /srv
    context:
      name: unconfined_u
      type: var_t
)");
  ASSERT_TRUE(a.permissions[0].context.has_value());
  EXPECT_EQ(a.permissions[0].context->user, "unconfined_u");
  EXPECT_EQ(a.permissions[0].context->type, "var_t");
  EXPECT_EQ(a.permissions[0].context->range, "");
}

TEST(AppspecTest, ParsesFileExistsBehaviorNames) {
  EXPECT_EQ(parse_file_exists_behavior("DISALLOW"), file_exists_behavior::disallow);
  EXPECT_EQ(parse_file_exists_behavior("OVERWRITE"), file_exists_behavior::overwrite);
  EXPECT_EQ(parse_file_exists_behavior("RETAIN"), file_exists_behavior::retain);
  EXPECT_FALSE(parse_file_exists_behavior("retain"));
  EXPECT_FALSE(parse_file_exists_behavior(""));
  for (auto b : {file_exists_behavior::disallow, file_exists_behavior::overwrite,
                 file_exists_behavior::retain}) {
    EXPECT_EQ(parse_file_exists_behavior(to_string(b)), b);
  }
  EXPECT_EQ(to_string(object_type::file), "file");
  EXPECT_EQ(to_string(object_type::directory), "directory");
}

// --- the 3600 s rule --------------------------------------------------------------

TEST(AppspecTest, EventTimeoutsMayAddUpToExactly3600) {
  const appspec a = parse_ok(std::string(head) + R"(hooks:
  ValidateService:
    - location: a.sh
      timeout: 1800
    - location: b.sh
      timeout: 1200
    - location: c.sh
      timeout: 600
)");
  EXPECT_EQ(a.hooks.at(lifecycle_event::validate_service).size(), 3u);
}

TEST(AppspecTest, ScriptsWithoutTimeoutEachKeepTheDefault) {
  const appspec a = parse_ok(std::string(head) + R"(hooks:
  AfterInstall:
    - location: a.sh
    - location: b.sh
      timeout: 3600
    - location: c.sh
)");
  const auto& s = a.hooks.at(lifecycle_event::after_install);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].timeout, 3600s);
  EXPECT_EQ(s[2].timeout, 3600s);
}

TEST(AppspecTest, RejectsEventTimeoutsAddingUpToOver3600WithEventLine) {
  expect_rejected({
      {"two halves and one second", std::string(head) + R"(hooks:
  BeforeInstall:
    - location: a.sh
      timeout: 1800
    - location: b.sh
      timeout: 1801
)",
       4, "hooks.BeforeInstall", "add up to 3601 s"},
      {"many small ones", std::string(head) + R"(hooks:
  ApplicationStart:
    - location: a.sh
      timeout: 1000
    - location: b.sh
      timeout: 1000
    - location: c.sh
      timeout: 1000
    - location: d.sh
      timeout: 1000
)",
       4, "hooks.ApplicationStart", "over the 3600 s"},
  });
}

// --- one test per error family ------------------------------------------------------

TEST(AppspecTest, RejectsYamlSyntaxErrorsWithLine) {
  expect_rejected({
      {"unclosed flow list", std::string(head) + "files:\n  - source: [a, b\n", 5, "",
       "YAML syntax error"},
      {"value after a value", "version: 0.0\nos: linux: x\n", 2, "", "YAML syntax error"},
      {"tab indentation", std::string(head) + "files:\n\t- source: a\n", 4, "",
       "YAML syntax error"},
      {"undefined alias", std::string(head) + "files:\n  - *nothing\n", 4, "",
       "YAML syntax error: the referenced anchor is not defined"},
      {"bad indentation", "version: 0.0\nos: linux\n  files: x\n", 3, "", "YAML syntax error"},
  });
}

TEST(AppspecTest, RejectsUnknownKeysAtEveryLevelWithLine) {
  expect_rejected({
      {"top level", std::string(head) + "Files: []\n", 3, "Files", "unknown key"},
      {"top level lists the valid keys", std::string(head) + "resources: []\n", 3, "resources",
       "version, os, files"},
      {"files item",
       std::string(head) + "files:\n  - source: a\n    destination: /b\n    dest: /c\n", 6,
       "files[0].dest", "unknown key (expected source, destination)"},
      {"permissions item", std::string(head) + "permissions:\n  - object: /a\n    owners: x\n", 5,
       "permissions[0].owners", "unknown key"},
      {"context",
       std::string(head) +
           "permissions:\n  - object: /a\n    context:\n      type: t\n      role: r\n",
       7, "permissions[0].context.role", "unknown key"},
      {"hook script",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: true\n", 6,
       "hooks.AfterInstall[0].sudo", "unknown key (expected location, timeout, runas)"},
  });
}

TEST(AppspecTest, RejectsDuplicateKeysWithLine) {
  expect_rejected({
      {"top level", std::string(head) + "os: linux\n", 3, "os",
       "duplicate key (first given on line 2)"},
      {"hook event",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n  AfterInstall:\n    - "
                           "location: b.sh\n",
       6, "hooks.AfterInstall", "duplicate key"},
      {"script key",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n      location: b.sh\n",
       6, "hooks.AfterInstall[0].location", "duplicate key"},
  });
}

TEST(AppspecTest, RejectsUnknownHookNamesWithLine) {
  expect_rejected({
      {"typo", std::string(head) + "hooks:\n  AfterInstal:\n    - location: a.sh\n", 4,
       "hooks.AfterInstal", "unknown lifecycle event"},
      {"wrong case suggests the right name",
       std::string(head) + "hooks:\n  afterinstall:\n    - location: a.sh\n", 4,
       "hooks.afterinstall", "did you mean AfterInstall?"},
      {"lists the hookable events", std::string(head) + "hooks:\n  Deploy:\n    - location: a.sh\n",
       4, "hooks.Deploy", "BeforeBlockTraffic, AfterBlockTraffic, ApplicationStop"},
  });
}

TEST(AppspecTest, RejectsHooksOnReservedEventsWithLine) {
  std::vector<bad_case> cases;
  for (const char* name : {"BlockTraffic", "DownloadBundle", "Install", "AllowTraffic"}) {
    cases.push_back({name,
                     std::string(head) + "hooks:\n  BeforeInstall:\n    - location: a.sh\n  " +
                         name + ":\n    - location: b.sh\n",
                     6, fmt::format("hooks.{}", name), "takes no hooks"});
  }
  expect_rejected(cases);
}

TEST(AppspecTest, RejectsWrongTypesWithKeyAndLine) {
  expect_rejected({
      {"top level is a list", "- version: 0.0\n", 1, "", "must be a mapping"},
      {"top level is a scalar", "hello\n", 1, "", "must be a mapping"},
      {"empty document", "", 0, "", "must be a mapping"},
      {"version is a list", "version: [0.0]\nos: linux\n", 1, "version",
       "expected a single value, found a list"},
      {"files is a mapping", std::string(head) + "files:\n  source: a\n", 3, "files",
       "expected a list, found a mapping"},
      {"files item is a scalar", std::string(head) + "files:\n  - a\n", 4, "files[0]",
       "expected a mapping"},
      {"destination is a list",
       std::string(head) + "files:\n  - source: a\n    destination: [/b]\n", 5,
       "files[0].destination", "expected a single value"},
      {"permissions is a scalar", std::string(head) + "permissions: all\n", 3, "permissions",
       "expected a list"},
      {"except is a scalar",
       std::string(head) + "permissions:\n  - object: /a\n    except: b.txt\n", 5,
       "permissions[0].except", "expected a list"},
      {"acls is a mapping",
       std::string(head) + "permissions:\n  - object: /a\n    acls: {u: alice}\n", 5,
       "permissions[0].acls", "expected a list"},
      {"context is a scalar",
       std::string(head) + "permissions:\n  - object: /a\n    context: httpd_t\n", 5,
       "permissions[0].context", "expected a mapping"},
      {"type is a scalar", std::string(head) + "permissions:\n  - object: /a\n    type: file\n", 5,
       "permissions[0].type", "expected a list"},
      {"owner is a mapping",
       std::string(head) + "permissions:\n  - object: /a\n    owner: {name: x}\n", 5,
       "permissions[0].owner", "expected a single value"},
      {"hooks is a list", std::string(head) + "hooks:\n  - AfterInstall\n", 3, "hooks",
       "expected a mapping"},
      {"event is a mapping", std::string(head) + "hooks:\n  AfterInstall:\n    location: a.sh\n", 4,
       "hooks.AfterInstall", "expected a list"},
      {"script is a scalar", std::string(head) + "hooks:\n  AfterInstall:\n    - a.sh\n", 5,
       "hooks.AfterInstall[0]", "expected a mapping"},
      {"location is a list",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: [a.sh]\n", 5,
       "hooks.AfterInstall[0].location", "expected a single value"},
      {"key is a list", std::string(head) + "[a, b]: c\n", 3, "", "a key must be a plain string"},
  });
}

TEST(AppspecTest, RejectsMissingRequiredKeysWithLine) {
  expect_rejected({
      {"version", "os: linux\n", 1, "version", "required key is missing"},
      {"null version", "version:\nos: linux\n", 1, "version", "required key is missing"},
      {"os", "version: 0.0\nfiles: []\n", 1, "os", "required key is missing"},
      {"source", std::string(head) + "files:\n  - destination: /b\n", 4, "files[0].source",
       "required key is missing"},
      {"destination", std::string(head) + "files:\n  - source: a\n  - source: b\n", 4,
       "files[0].destination", "required key is missing"},
      {"object", std::string(head) + "permissions:\n  - mode: 644\n", 4, "permissions[0].object",
       "required key is missing"},
      {"context type",
       std::string(head) + "permissions:\n  - object: /a\n    context:\n      user: u\n", 6,
       "permissions[0].context.type", "required key is missing"},
      {"location", std::string(head) + "hooks:\n  AfterInstall:\n    - timeout: 10\n", 5,
       "hooks.AfterInstall[0].location", "required key is missing"},
      {"null location", std::string(head) + "hooks:\n  AfterInstall:\n    - location: ~\n", 5,
       "hooks.AfterInstall[0].location", "required key is missing"},
  });
}

TEST(AppspecTest, RejectsVersionOtherThanZeroPointZeroWithLine) {
  expect_rejected({
      {"1.0", "version: 1.0\nos: linux\n", 1, "version", "\"1.0\" is not supported"},
      {"0", "os: linux\nversion: 0\n", 2, "version", "the only AppSpec version is 0.0"},
      {"0.00", "version: 0.00\nos: linux\n", 1, "version", "not supported"},
      {"quoted 1", "version: \"1\"\nos: linux\n", 1, "version", "not supported"},
  });
}

TEST(AppspecTest, RejectsOsOtherThanLinuxWithLine) {
  expect_rejected({
      {"windows", "version: 0.0\nos: windows\n", 2, "os", "Linux hosts only"},
      {"Linux", "version: 0.0\nos: Linux\n", 2, "os", "\"Linux\" is not supported: use linux"},
      {"ubuntu", "version: 0.0\n\nos: ubuntu\n", 3, "os", "use linux"},
  });
}

TEST(AppspecTest, RejectsBadPathsWithKeyAndLine) {
  const std::string files = std::string(head) + "files:\n";
  expect_rejected({
      {"relative destination", files + "  - source: a\n    destination: var/www\n", 5,
       "files[0].destination", "not an absolute path"},
      {"empty destination", files + "  - source: a\n    destination: \"\"\n", 5,
       "files[0].destination", "not an absolute path"},
      {"destination with ..", files + "  - source: a\n    destination: /var/../etc\n", 5,
       "files[0].destination", "contains \"..\""},
      {"absolute source", files + "  - source: /etc/passwd\n    destination: /a\n", 4,
       "files[0].source", "is absolute"},
      {"source with ..", files + "  - source: app/../../x\n    destination: /a\n", 4,
       "files[0].source", "contains \"..\""},
      {"source is ..", files + "  - source: ..\n    destination: /a\n", 4, "files[0].source",
       "contains \"..\""},
      {"empty source", files + "  - source: ''\n    destination: /a\n", 4, "files[0].source",
       "must not be empty"},
      {"relative object", std::string(head) + "permissions:\n  - object: var/www\n", 4,
       "permissions[0].object", "not an absolute path"},
      {"object with ..", std::string(head) + "permissions:\n  - object: /var/..\n", 4,
       "permissions[0].object", "contains \"..\""},
      {"location with ..",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: ../outside.sh\n", 5,
       "hooks.AfterInstall[0].location", "contains \"..\""},
      {"location is only a slash",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: /\n", 5,
       "hooks.AfterInstall[0].location", "names no script"},
  });
}

TEST(AppspecTest, RejectsBadTimeoutsWithKeyAndLine) {
  std::vector<bad_case> cases;
  for (const auto& [text, words] : std::vector<std::pair<std::string, std::string>>{
           {"0", "not a positive whole number"},
           {"000", "not a positive whole number"},
           {"-5", "not a positive whole number"},
           {"abc", "not a positive whole number"},
           {"1.5", "not a positive whole number"},
           {"30s", "not a positive whole number"},
           {"\"\"", "not a positive whole number"},
           {"3601", "\"3601\" is over the 3600 s maximum"},
           {"99999999999999999999", "over the 3600 s maximum"},
           {"[10]", "expected a single value"},
       }) {
    cases.push_back({text.c_str(),
                     std::string(head) +
                         "hooks:\n  AfterInstall:\n    - location: a.sh\n"
                         "      timeout: " +
                         text + "\n",
                     6, "hooks.AfterInstall[0].timeout", words});
  }
  expect_rejected(cases);
}

TEST(AppspecTest, RejectsBadModesWithKeyAndLine) {
  std::vector<bad_case> cases;
  for (const char* text :
       {"888", "12345", "abc", "\"\"", "64a", "0o644", "-644", "7777 7", "[644]"}) {
    cases.push_back(
        {text, std::string(head) + "permissions:\n  - object: /a\n    mode: " + text + "\n", 5,
         "permissions[0].mode", text[0] == '[' ? "expected a single value" : "octal"});
  }
  expect_rejected(cases);
}

TEST(AppspecTest, RejectsBadObjectTypesWithKeyAndLine) {
  const std::string perm = std::string(head) + "permissions:\n  - object: /a\n";
  expect_rejected({
      {"unknown type", perm + "    type:\n      - file\n      - socket\n", 7,
       "permissions[0].type[1]", "\"socket\" is not an object type"},
      {"capitalised", perm + "    type: [File]\n", 5, "permissions[0].type[0]",
       "use file or directory"},
      {"empty list", perm + "    type: []\n", 5, "permissions[0].type", "empty list"},
  });
}

TEST(AppspecTest, RejectsBadFileExistsBehaviorWithLine) {
  expect_rejected({
      {"lower case", std::string(head) + "file_exists_behavior: overwrite\n", 3,
       "file_exists_behavior", "use DISALLOW, OVERWRITE or RETAIN"},
      {"unknown", std::string(head) + "\nfile_exists_behavior: KEEP\n", 4, "file_exists_behavior",
       "\"KEEP\" is not valid"},
      {"list", std::string(head) + "file_exists_behavior: [RETAIN]\n", 3, "file_exists_behavior",
       "expected a single value"},
  });
}

TEST(AppspecTest, RejectsEmptyRunasOwnerAndGroupWithLine) {
  expect_rejected({
      {"runas empty",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: ''\n", 6,
       "hooks.AfterInstall[0].runas", "must not be empty"},
      {"runas blank",
       std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: '  '\n", 6,
       "hooks.AfterInstall[0].runas", "must not be empty"},
      {"owner empty", std::string(head) + "permissions:\n  - object: /a\n    owner: \"\"\n", 5,
       "permissions[0].owner", "must not be empty"},
      {"group empty", std::string(head) + "permissions:\n  - object: /a\n    group: ''\n", 5,
       "permissions[0].group", "must not be empty"},
  });
}

TEST(AppspecTest, RejectsBadPatternsAndExceptGlobsWithLine) {
  const std::string perm = std::string(head) + "permissions:\n  - object: /a\n";
  expect_rejected({
      {"pattern with slash", perm + "    pattern: \"sub/*.html\"\n", 5, "permissions[0].pattern",
       "contains \"/\""},
      {"empty pattern", perm + "    pattern: ''\n", 5, "permissions[0].pattern",
       "must not be empty"},
      {"except with slash", perm + "    except:\n      - ok.txt\n      - a/b\n", 7,
       "permissions[0].except[1]", "contains \"/\""},
      {"except empty entry", perm + "    except: ['']\n", 5, "permissions[0].except[0]",
       "must not be empty"},
  });
}

TEST(AppspecTest, RejectsBadAclsWithLine) {
  const std::string perm = std::string(head) + "permissions:\n  - object: /a\n    acls:\n";
  std::vector<bad_case> cases;
  for (const auto& [ace, words] : std::vector<std::pair<std::string, std::string>>{
           {"rw", "2 to 4 fields"},
           {"a:b:c:d:e", "2 to 4 fields"},
           {"x:alice:rw", "unknown entry type"},
           {"u:alice:rz", "invalid permission character"},
           {"u::rw", "set it with mode"},
           {"o:bob:r", "takes no name"},
           {"x:u:alice:rw", "first of 4 fields"},
           {"default:d:alice:rw", "default given twice"},
       }) {
    cases.push_back({ace.c_str(), perm + "      - u:ok:r\n      - \"" + ace + "\"\n", 7,
                     "permissions[0].acls[1]", words});
  }
  expect_rejected(cases);
  // The forms CodeDeploy's agent accepts.
  const appspec a = parse_ok(perm +
                             "      - u:alice:rw\n      - alice:7\n      - g:ops:r-x\n      - "
                             "m::rx\n      - d:u::rwx\n      - default:group:ops:5\n      - "
                             "mask:rw\n");
  EXPECT_EQ(a.permissions.at(0).acls.size(), 7u);
}

TEST(AppspecTest, RejectsBadSelinuxContextsWithLine) {
  const std::string ctx =
      std::string(head) + "permissions:\n  - object: /a\n    context:\n      type: t\n";
  std::vector<bad_case> cases;
  for (const char* range : {"0", "s", "sx", "s1-s0", "s0:", "s0:c1024", "s0:c3.c1", "s0:c1,c1",
                            "s0:c0.c2,c1", "s0-:c1", "s0:x1"}) {
    cases.push_back({range, ctx + "      range: \"" + std::string(range) + "\"\n", 7,
                     "permissions[0].context.range", "not a valid SELinux range"});
  }
  cases.push_back({"user and name", ctx + "      user: a\n      name: b\n", 7,
                   "permissions[0].context.user", "give the SELinux user once"});
  cases.push_back(
      {"empty type",
       std::string(head) + "permissions:\n  - object: /a\n    context:\n      type: ''\n", 6,
       "permissions[0].context.type", "must not be empty"});
  expect_rejected(cases);
  for (const char* range : {"s0", "s0-s15:c0.c1023", "s2:c1,c3.c5,c9", "s0-s0"}) {
    const appspec a = parse_ok(ctx + "      range: " + range + "\n");
    EXPECT_EQ(a.permissions.at(0).context->range, range);
  }
}

TEST(AppspecTest, RejectsOversizedText) {
  std::string yaml = std::string(head) + "# ";
  yaml.append(max_appspec_bytes, 'x');
  const auto r = parse_appspec(yaml);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml: the file is"));
  EXPECT_THAT(r.error().message, HasSubstr("byte limit"));
}

TEST(AppspecTest, ReportsTheEarliestProblemFirst) {
  const auto r = parse_appspec(R"(version: 0.0
os: linux
hooks:
  AfterInstall:
    - location: a.sh
      timeout: 0
files:
  - source: /abs
    destination: /x
version: 2
)");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:6: hooks.AfterInstall[0].timeout: "));
}

TEST(AppspecTest, SurvivesDeepNestingAndAliases) {
  std::string deep = std::string(head) + "files: ";
  deep.append(10000, '[');
  auto r = parse_appspec(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));

  const appspec a = parse_ok(std::string(head) + R"(hooks:
  AfterInstall: &scripts
    - location: a.sh
      timeout: 10
  ApplicationStart: *scripts
)");
  EXPECT_EQ(a.hooks.at(lifecycle_event::application_start).at(0).location, "a.sh");
}

// --- the revision on disk ----------------------------------------------------------

class AppspecRevisionTest : public ::testing::Test {
 protected:
  void write(const std::string& rel, const std::string& content, unsigned mode = 0644) {
    test::write_file(dir_ / rel, content, mode);
  }
  void script(const std::string& rel, unsigned mode = 0755) {
    write(rel, "#!/bin/sh\nexit 0\n", mode);
  }
  // An appspec.yml whose hooks run `location` at AfterInstall (line 5).
  void appspec_running(const std::string& location) {
    write("appspec.yml",
          std::string(head) + "hooks:\n  AfterInstall:\n    - location: " + location + "\n");
  }
  result<appspec> load() { return load_appspec(dir_.path()); }

  test::temp_dir dir_{"appspec-test"};
};

TEST_F(AppspecRevisionTest, LoadsValidRevision) {
  write("appspec.yml", std::string(head) + R"(files:
  - source: app
    destination: /opt/app
  - source: /
    destination: /srv
hooks:
  AfterInstall:
    - location: scripts/configure.sh
  ApplicationStart:
    - location: start.sh
)");
  write("app/index.html", "hi");
  script("scripts/configure.sh");
  script("start.sh", 0500);
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().file_name, "appspec.yml");
  EXPECT_EQ(r.value().files.size(), 2u);
  EXPECT_EQ(r.value().hooks.size(), 2u);
}

TEST_F(AppspecRevisionTest, MissingAppspecIsAppspecMissing) {
  write("appspec.yml.bak", head);
  write("scripts/a.sh", "");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_missing));
  EXPECT_THAT(r.error().message, HasSubstr("no appspec.yml or appspec.yaml"));
  EXPECT_THAT(r.error().message, HasSubstr(dir_.path().string()));

  const auto nowhere = load_appspec(dir_ / "does-not-exist");
  ASSERT_FALSE(nowhere);
  EXPECT_EQ(nowhere.error().code, make_error_code(errc::appspec_missing));
}

TEST_F(AppspecRevisionTest, FallsBackToAppspecYaml) {
  write("appspec.yaml", std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n");
  script("a.sh");
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().file_name, "appspec.yaml");
  EXPECT_EQ(r.value().hooks.size(), 1u);
}

TEST_F(AppspecRevisionTest, MessagesNameAppspecYamlWhenThatIsTheFile) {
  write("appspec.yaml", std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yaml:5: hooks.AfterInstall[0].location: "));
}

TEST_F(AppspecRevisionTest, AppspecYmlWinsWhenBothExist) {
  write("appspec.yml", std::string(head) + "hooks:\n  AfterInstall:\n    - location: a.sh\n");
  write("appspec.yaml", "this: is: not: valid yaml: [\n");
  script("a.sh");
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().file_name, "appspec.yml");
  EXPECT_EQ(r.value().hooks.count(lifecycle_event::after_install), 1u);
}

TEST_F(AppspecRevisionTest, AppspecThatIsADirectoryIsInvalid) {
  fs::create_directory(dir_ / "appspec.yml");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml: not a regular file"));
}

TEST_F(AppspecRevisionTest, AppspecSymlinkLeavingTheRevisionIsInvalid) {
  test::temp_dir outside("appspec-outside");
  test::write_file(outside / "appspec.yml", head);
  fs::create_symlink(outside / "appspec.yml", dir_ / "appspec.yml");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
  EXPECT_THAT(r.error().message, HasSubstr("inside the revision"));
}

TEST_F(AppspecRevisionTest, SyntaxErrorInFileNamesLine) {
  write("appspec.yml", std::string(head) + "hooks:\n  AfterInstall: [\n");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:5: YAML syntax error"));
}

TEST_F(AppspecRevisionTest, ScriptMissingNamesKeyLineAndLocation) {
  appspec_running("scripts/nope.sh");
  script("scripts/other.sh");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:5: hooks.AfterInstall[0].location: "
                                           "\"scripts/nope.sh\" does not exist"));
}

TEST_F(AppspecRevisionTest, ScriptWithoutExecuteBitIsNotExecutable) {
  appspec_running("scripts/start.sh");
  script("scripts/start.sh", 0644);
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_not_executable));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:5: hooks.AfterInstall[0].location: "
                                           "\"scripts/start.sh\" is not executable"));
}

TEST_F(AppspecRevisionTest, AnyExecuteBitIsEnough) {
  for (unsigned mode : {0744u, 0654u, 0645u}) {
    appspec_running("s.sh");
    script("s.sh", mode);
    const auto r = load();
    EXPECT_TRUE(r) << std::oct << mode << ": " << (r ? "" : r.error().message);
  }
}

TEST_F(AppspecRevisionTest, ScriptInSubdirectoryIsFound) {
  appspec_running("deploy/scripts/linux/after.sh");
  script("deploy/scripts/linux/after.sh");
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().hooks.at(lifecycle_event::after_install).at(0).location,
            "deploy/scripts/linux/after.sh");
}

TEST_F(AppspecRevisionTest, LeadingSlashLocationResolvesInsideTheRevision) {
  appspec_running("/scripts/a.sh");
  script("scripts/a.sh");
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
}

TEST_F(AppspecRevisionTest, SymlinkInsideTheRevisionIsFollowed) {
  appspec_running("run.sh");
  script("real/run.sh");
  fs::create_symlink("real/run.sh", dir_ / "run.sh");
  const auto r = load();
  ASSERT_TRUE(r) << r.error().message;
}

TEST_F(AppspecRevisionTest, SymlinkEscapingTheRevisionIsScriptMissing) {
  test::temp_dir outside("appspec-outside");
  test::write_file(outside / "evil.sh", "#!/bin/sh\n", 0755);
  appspec_running("scripts/evil.sh");
  fs::create_directories(dir_ / "scripts");
  fs::create_symlink(outside / "evil.sh", dir_ / "scripts/evil.sh");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:5: hooks.AfterInstall[0].location: "));
  EXPECT_THAT(r.error().message, HasSubstr("leads outside the revision"));
}

TEST_F(AppspecRevisionTest, DirectorySymlinkEscapingTheRevisionIsScriptMissing) {
  test::temp_dir outside("appspec-outside");
  test::write_file(outside / "bin/start.sh", "#!/bin/sh\n", 0755);
  appspec_running("bin/start.sh");
  fs::create_symlink(outside / "bin", dir_ / "bin");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("leads outside the revision"));
}

TEST_F(AppspecRevisionTest, DanglingSymlinkIsScriptMissing) {
  appspec_running("gone.sh");
  fs::create_symlink("nowhere.sh", dir_ / "gone.sh");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:5: hooks.AfterInstall[0].location: "));
}

TEST_F(AppspecRevisionTest, DirectoryAsScriptIsScriptMissing) {
  appspec_running("scripts");
  script("scripts/a.sh");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::script_missing));
  EXPECT_THAT(r.error().message, HasSubstr("is a directory"));
}

TEST_F(AppspecRevisionTest, MissingSourceNamesKeyAndLine) {
  write("appspec.yml", std::string(head) + R"(files:
  - source: app
    destination: /opt/app
  - source: config/missing.conf
    destination: /etc
)");
  write("app/a.txt", "a");
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::appspec_invalid));
  EXPECT_THAT(r.error().message, HasSubstr("appspec.yml:6: files[1].source: "
                                           "\"config/missing.conf\" does not exist"));
}

TEST_F(AppspecRevisionTest, ValidateCollectsEveryProblem) {
  write("appspec.yml", std::string(head) + R"(files:
  - source: missing
    destination: /opt
hooks:
  AfterInstall:
    - location: nope.sh
    - location: plain.sh
  ApplicationStart:
    - location: ok.sh
)");
  script("plain.sh", 0644);
  script("ok.sh");
  const validation_report rep = validate_revision_dir(dir_.path());
  ASSERT_TRUE(rep.spec.has_value());
  std::vector<boost::system::error_code> codes;
  for (const error& e : rep.problems) codes.push_back(e.code);
  EXPECT_THAT(codes, ElementsAre(make_error_code(errc::script_missing),
                                 make_error_code(errc::script_not_executable),
                                 make_error_code(errc::appspec_invalid)));
  ASSERT_EQ(rep.problems.size(), 3u);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("appspec.yml:8: hooks.AfterInstall[0]"));
  EXPECT_THAT(rep.problems[1].message, HasSubstr("appspec.yml:9: hooks.AfterInstall[1]"));
  EXPECT_THAT(rep.problems[2].message, HasSubstr("appspec.yml:4: files[0].source"));

  // load_appspec stops at the first of them.
  const auto r = load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, rep.problems[0].message);
}

TEST_F(AppspecRevisionTest, ValidateCollectsEveryParseProblemInLineOrder) {
  write("appspec.yml", R"(version: 1.0
os: windows
files:
  - source: a
hooks:
  Install:
    - location: a.sh
  AfterInstall:
    - location: b.sh
      timeout: 0
)");
  const validation_report rep = validate_revision_dir(dir_.path());
  EXPECT_FALSE(rep.spec.has_value());
  std::vector<std::string> messages;
  for (const error& e : rep.problems) {
    EXPECT_EQ(e.code, make_error_code(errc::appspec_invalid));
    messages.push_back(e.message.substr(0, e.message.find(": ", e.message.find(": ") + 2)));
  }
  EXPECT_THAT(messages,
              ElementsAre("appspec.yml:1: version", "appspec.yml:2: os",
                          "appspec.yml:4: files[0].destination", "appspec.yml:6: hooks.Install",
                          "appspec.yml:10: hooks.AfterInstall[0].timeout"));
}

TEST_F(AppspecRevisionTest, ValidateOfCleanRevisionHasNoProblems) {
  appspec_running("a.sh");
  script("a.sh");
  const validation_report rep = validate_revision_dir(dir_.path());
  ASSERT_TRUE(rep.spec.has_value());
  EXPECT_TRUE(rep.problems.empty());
  EXPECT_EQ(rep.spec->hooks.size(), 1u);
}

TEST_F(AppspecRevisionTest, ValidateReportsMissingAppspec) {
  const validation_report rep = validate_revision_dir(dir_.path());
  EXPECT_FALSE(rep.spec.has_value());
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.problems[0].code, make_error_code(errc::appspec_missing));
}

}  // namespace
}  // namespace meshdeploy::agent
