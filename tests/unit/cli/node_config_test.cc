#include "cli/node_config.h"

#include "gossip/config.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <set>

namespace meshdeploy::cli {
namespace {

const raw_settings required_keys{{"keyring", {{"/k/keyring"}, "test"}},
                                 {"admin-pub", {{"/k/admin.pub"}, "test"}}};

raw_settings with_required(raw_settings s) {
  for (const auto& [k, v] : required_keys) s.emplace(k, v);
  return s;
}

raw_settings parse_ok(const std::string& yaml) {
  auto r = parse_node_config(yaml, "node.yaml");
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? r.value() : raw_settings{};
}

std::string parse_error(const std::string& yaml) {
  auto r = parse_node_config(yaml, "node.yaml");
  EXPECT_FALSE(r) << "accepted: " << yaml;
  return r ? "" : r.error().message;
}

TEST(NodeConfigTest, NamesDeriveFromOneKey) {
  EXPECT_EQ(yaml_key("max-upload-rate"), "max_upload_rate");
  EXPECT_EQ(env_name("max-upload-rate"), "MESHDEPLOY_NODE_MAX_UPLOAD_RATE");
  // Every setting's three names are distinct across the table.
  std::set<std::string> seen;
  for (const auto& s : node_settings()) {
    EXPECT_TRUE(seen.insert(s.key).second) << s.key;
    EXPECT_FALSE(s.help.empty()) << s.key;
    EXPECT_TRUE(s.apply) << s.key;
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(NodeConfigTest, FileSetsEveryKindOfValue) {
  const auto f = parse_ok(
      "# a node\n"
      "name: web-1\n"
      "data_dir: /srv/md\n"
      "tag: [role=web, env=prod]\n"
      "join:\n  - 10.0.0.5:7946\n  - 10.0.0.6:7946\n"
      "max_upload_rate: 6M\n"
      "retention_days: 7\n"
      "catch_up: false\n"
      "gossip_profile: local\n"
      "log_format: json\n");
  auto o = resolve_node_options(with_required(f), {}, {});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o.value().name, "web-1");
  EXPECT_EQ(o.value().data_dir, "/srv/md");
  ASSERT_EQ(o.value().tags.size(), 2u);
  EXPECT_EQ(o.value().tags[1].key, "env");
  EXPECT_EQ(o.value().gossip.join, (std::vector<std::string>{"10.0.0.5:7946", "10.0.0.6:7946"}));
  EXPECT_EQ(o.value().max_upload_rate, 6u << 20);
  EXPECT_EQ(o.value().retention_days, 7u);
  EXPECT_FALSE(o.value().catch_up);
  EXPECT_EQ(o.value().log_format, "json");
  EXPECT_EQ(o.value().gossip.cfg.probe_interval, gossip::config::local().probe_interval);
}

TEST(NodeConfigTest, DefaultsStayWhenNothingIsSet) {
  auto o = resolve_node_options(required_keys, {}, {});
  ASSERT_TRUE(o) << o.error().message;
  const node::node_options d;
  EXPECT_EQ(o.value().data_dir, d.data_dir);
  EXPECT_EQ(o.value().api, d.api);
  EXPECT_TRUE(o.value().catch_up);
  EXPECT_EQ(o.value().log_format, "text");
}

TEST(NodeConfigTest, FlagBeatsEnvBeatsFile) {
  const auto file = parse_ok("name: from-file\nbind: 10.0.0.1:7946\napi: 127.0.0.1:1\n");
  auto env = node_settings_from_env(
      {"MESHDEPLOY_NODE_NAME=from-env", "MESHDEPLOY_NODE_BIND=10.0.0.2:7946", "PATH=/bin"});
  ASSERT_TRUE(env) << env.error().message;
  const raw_settings flags{{"name", {{"from-flag"}, "--name"}}};
  auto o = resolve_node_options(with_required(file), env.value(), flags);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o.value().name, "from-flag");
  EXPECT_EQ(o.value().gossip.bind, "10.0.0.2:7946");
  EXPECT_EQ(o.value().api, "127.0.0.1:1");
}

TEST(NodeConfigTest, ListFromHigherSourceReplacesNotMerges) {
  const auto file = parse_ok("tag: [role=web, env=prod]\n");
  auto env = node_settings_from_env({"MESHDEPLOY_NODE_TAG=role=db,zone=a"});
  ASSERT_TRUE(env);
  auto o = resolve_node_options(with_required(file), env.value(), {});
  ASSERT_TRUE(o) << o.error().message;
  ASSERT_EQ(o.value().tags.size(), 2u);
  EXPECT_EQ(o.value().tags[0].value, "db");
  EXPECT_EQ(o.value().tags[1].key, "zone");
}

TEST(NodeConfigTest, ApiAllowedHostsComeFromFileEnvOrFlagAndAreChecked) {
  const auto file = parse_ok("api_allowed_host: [deploy.corp.example, node-7]\n");
  auto o = resolve_node_options(with_required(file), {}, {});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o.value().api_allowed_hosts,
            (std::vector<std::string>{"deploy.corp.example", "node-7"}));
  auto env = node_settings_from_env({"MESHDEPLOY_NODE_API_ALLOWED_HOST=a.example,b.example"});
  ASSERT_TRUE(env) << env.error().message;
  o = resolve_node_options(with_required(file), env.value(), {});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o.value().api_allowed_hosts, (std::vector<std::string>{"a.example", "b.example"}));
  o = resolve_node_options(with_required(file), env.value(),
                           {{"api-allowed-host", {{"c.example"}, "--api-allowed-host"}}});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o.value().api_allowed_hosts, (std::vector<std::string>{"c.example"}));
  EXPECT_TRUE(resolve_node_options(required_keys, {}, {}).value().api_allowed_hosts.empty());
  auto bad = resolve_node_options(
      required_keys, {}, {{"api-allowed-host", {{"evil.example:80"}, "--api-allowed-host"}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'evil.example:80' is not a host name"), std::string::npos)
      << bad.error().message;
}

TEST(NodeConfigTest, UnknownKeyNamesKeyLineAndHint) {
  const auto e = parse_error("name: a\n\ndata-dir: /x\n");
  EXPECT_NE(e.find("node.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("'data-dir'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean data_dir"), std::string::npos) << e;
  const auto e2 = parse_error("colour: red\n");
  EXPECT_NE(e2.find("unknown key 'colour'"), std::string::npos) << e2;
}

TEST(NodeConfigTest, BadValueNamesOriginAndKey) {
  const auto file = parse_ok("name: a\nmax_upload_rate: fast\n");
  auto o = resolve_node_options(with_required(file), {}, {});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("node.yaml:2: max-upload-rate: 'fast' is not a byte size"),
            std::string::npos)
      << o.error().message;

  auto env = node_settings_from_env({"MESHDEPLOY_NODE_RETENTION_DAYS=-1"});
  ASSERT_TRUE(env);
  auto o2 = resolve_node_options(required_keys, env.value(), {});
  ASSERT_FALSE(o2);
  EXPECT_EQ(o2.error().message.rfind("MESHDEPLOY_NODE_RETENTION_DAYS: retention-days:", 0), 0u)
      << o2.error().message;

  auto o3 = resolve_node_options(required_keys, {}, {{"bind", {{"nowhere"}, "--bind"}}});
  ASSERT_FALSE(o3);
  EXPECT_NE(o3.error().message.find("--bind: bind: 'nowhere' is not HOST:PORT"), std::string::npos)
      << o3.error().message;
}

TEST(NodeConfigTest, RejectsMalformedShapes) {
  EXPECT_NE(parse_error("- a\n- b\n").find("must be a mapping"), std::string::npos);
  EXPECT_NE(parse_error("name: [a, b]\n").find("name: must be a single value"), std::string::npos);
  EXPECT_NE(parse_error("name: a\nname: b\n").find("node.yaml:2: key 'name' appears twice"),
            std::string::npos);
  EXPECT_NE(parse_error("name:\n").find("has no value"), std::string::npos);
  EXPECT_NE(parse_error("tag: [{a: b}]\n").find("each item must be a plain value"),
            std::string::npos);
  EXPECT_NE(parse_error("tag: [role=web\n").find("not valid YAML"), std::string::npos);
  EXPECT_NE(parse_error("{a: 1}: x\n").find("a key must be a plain name"), std::string::npos);
  // An empty file or only comments is no settings, not an error.
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("# nothing yet\n").empty());
}

TEST(NodeConfigTest, UnknownEnvironmentVariableIsAnError) {
  auto env = node_settings_from_env({"MESHDEPLOY_NODE_DATADIR=/x"});
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find("MESHDEPLOY_NODE_DATADIR: not a setting"), std::string::npos);
  // The config file variable and other MESHDEPLOY_ variables are not settings and are skipped.
  auto ok = node_settings_from_env(
      {"MESHDEPLOY_NODE_CONFIG=/etc/x.yaml", "MESHDEPLOY_API=1.2.3.4:1", "MESHDEPLOY_NODE_"});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(ok.value().empty());
  EXPECT_EQ(config_file_from_env({"A=b", "MESHDEPLOY_NODE_CONFIG=/etc/x.yaml"}), "/etc/x.yaml");
}

TEST(NodeConfigTest, KeyringAndAdminKeyAreRequired) {
  auto o = resolve_node_options({}, {}, {});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("MESHDEPLOY_NODE_KEYRING"), std::string::npos);
  EXPECT_NE(o.error().message.find("cluster init"), std::string::npos);
}

TEST(NodeConfigTest, ByteSizes) {
  std::uint64_t n = 0;
  EXPECT_TRUE(parse_byte_size("8G", n));
  EXPECT_EQ(n, 8ull << 30);
  EXPECT_TRUE(parse_byte_size("512k", n));
  EXPECT_EQ(n, 512u << 10);
  EXPECT_TRUE(parse_byte_size("6MiB", n));
  EXPECT_EQ(n, 6u << 20);
  EXPECT_TRUE(parse_byte_size("1048576", n));
  EXPECT_EQ(n, 1048576u);
  for (const char* bad : {"", "G", "1.5G", "-1", "1X", "99999999999999999999", "17179869184T"}) {
    EXPECT_FALSE(parse_byte_size(bad, n)) << bad;
  }
}

TEST(NodeConfigTest, OperationsGuideListsEverySetting) {
  const std::string doc = test::read_file(test::source_path("docs/operations.md"));
  ASSERT_FALSE(doc.empty());
  for (const auto& s : node_settings()) {
    EXPECT_NE(doc.find("| `" + yaml_key(s.key) + "` |"), std::string::npos)
        << yaml_key(s.key) << " is missing from the settings table of docs/operations.md";
  }
}

TEST(NodeConfigTest, LoadsFileAndRefusesHugeOrMissingOnes) {
  test::temp_dir dir;
  test::write_file(dir / "node.yaml", "name: a\n");
  auto r = load_node_config_file(dir / "node.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().at("name").origin, (dir / "node.yaml").string() + ":1");
  auto missing = load_node_config_file(dir / "nope.yaml");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot read"), std::string::npos);
  test::write_file(dir / "big.yaml", std::string((1 << 20) + 10, '#'));
  auto big = load_node_config_file(dir / "big.yaml");
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("larger than 1 MiB"), std::string::npos);
}

}  // namespace
}  // namespace meshdeploy::cli
