#include "cli/node_cmd.h"

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/node_config.h"
#include "cli/render.h"
#include "node/node.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <unistd.h>

extern char** environ;

namespace meshdeploy::cli {

namespace {

std::vector<std::string> process_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

// What the flags of `node run` collected, by setting key; filled by CLI11 during parse.
struct node_flags {
  std::string config_file;
  std::map<std::string, std::vector<std::string>> values;  // stable addresses for CLI11
  raw_settings collected() const {
    raw_settings out;
    for (const auto& [key, v] : values) {
      if (v.empty()) continue;
      out[key] = raw_setting{v, "--" + key};
    }
    return out;
  }
};

// The file (named by --config FILE or MESHDEPLOY_NODE_CONFIG), then the environment, resolved
// with the flags. Prints what is wrong and returns nullopt on error.
struct loaded_config {
  raw_settings file, env;
  node::node_options options;
};
std::optional<loaded_config> load_all(const std::string& config_flag, const raw_settings& flags) {
  const auto environment = process_environment();
  loaded_config c;
  std::string config_file = config_flag;
  if (config_file.empty()) config_file = config_file_from_env(environment);
  if (!config_file.empty()) {
    auto f = load_node_config_file(config_file);
    if (!f) {
      print_error(f.error().message);
      return std::nullopt;
    }
    c.file = std::move(f).value();
  }
  auto e = node_settings_from_env(environment);
  if (!e) {
    print_error(e.error().message);
    return std::nullopt;
  }
  c.env = std::move(e).value();
  auto o = resolve_node_options(c.file, c.env, flags);
  if (!o) {
    print_error(o.error().message);
    return std::nullopt;
  }
  c.options = std::move(o).value();
  return c;
}

}  // namespace

void add_node_commands(CLI::App& app, const std::string& output, int& code) {
  auto* node_cmd = app.add_subcommand("node", "Run a meshdeploy node, or check its configuration")
                       ->require_subcommand(1);
  // Owned by the subcommand's callbacks, which CLI11 keeps for the app's lifetime.
  auto flags = std::make_shared<node_flags>();

  auto* run = node_cmd->add_subcommand(
      "run",
      "Run the node daemon in the foreground until SIGINT/SIGTERM.\n\n"
      "Every setting is a flag, an environment variable MESHDEPLOY_NODE_<KEY> and a key in the\n"
      "YAML file given with --config (or MESHDEPLOY_NODE_CONFIG); a flag beats the environment,\n"
      "which beats the file, which beats the default. Lists (tag, join, grant) are repeated\n"
      "flags, comma-separated in the environment and YAML sequences in the file.\n\n"
      "Examples:\n"
      "  meshdeploy node run --config /etc/meshdeploy/node.yaml\n"
      "  meshdeploy node run --name web-1 --data-dir /var/lib/meshdeploy --tag role=web \\\n"
      "    --keyring keys/keyring.txt --admin-pub keys/admin.pub --join 10.0.0.5:7946");
  run->add_option("--config", flags->config_file,
                  "YAML file of settings (env MESHDEPLOY_NODE_CONFIG; check it with `meshdeploy "
                  "node check-config FILE`)");
  for (const auto& s : node_settings()) {
    const std::string where = fmt::format(" [env {}, key {}]", env_name(s.key), yaml_key(s.key));
    auto& store = flags->values[s.key];
    if (s.boolean) {
      run->add_flag_callback(
          "--" + s.key, [&store] { store = {"true"}; }, s.help + where);
      run->add_flag_callback(
          "--no-" + s.key, [&store] { store = {"false"}; }, fmt::format("Turn --{} off", s.key));
      continue;
    }
    auto* opt = run->add_option("--" + s.key, store, s.help + where);
    if (!s.list) {
      opt->expected(1);
      opt->multi_option_policy(CLI::MultiOptionPolicy::Throw);
    }
    if (!s.default_text.empty()) opt->default_str(s.default_text);
  }
  run->callback([flags, &code] {
    auto c = load_all(flags->config_file, flags->collected());
    if (!c) {
      code = exit_usage;
      return;
    }
    code = node::run_node(c->options);
  });

  // check-config ------------------------------------------------------------------
  auto check_file = std::make_shared<std::string>();
  auto* check = node_cmd->add_subcommand(
      "check-config",
      "Validate a node config file, together with the MESHDEPLOY_NODE_* environment, without\n"
      "starting a node: unknown keys and bad values are errors naming the key and line; the\n"
      "keyring, admin public key and grant files must be readable. Prints each setting's\n"
      "effective value and where it came from. Exit 0 if valid, 2 if not.\n\n"
      "Example:\n  meshdeploy node check-config /etc/meshdeploy/node.yaml");
  check->add_option("FILE", *check_file, "The YAML config file")->required();
  check->callback([check_file, &output, &code] {
    auto c = load_all(*check_file, {});
    if (!c) {
      code = exit_usage;
      return;
    }
    std::vector<std::string> problems;
    auto readable = [&](const std::string& key, const std::filesystem::path& p) {
      if (::access(p.c_str(), R_OK) != 0) {
        problems.push_back(fmt::format("{}: cannot read {}", key, p.string()));
      }
    };
    readable("keyring", c->options.keyring_file);
    readable("admin_pub", c->options.admin_pub_file);
    for (const auto& g : c->options.grant_files) readable("grant", g);
    for (const auto& p : problems) print_error(p);
    const bool valid = problems.empty();
    code = valid ? exit_ok : exit_usage;

    nlohmann::json settings = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : node_settings()) {
      const raw_setting* r = nullptr;
      for (const raw_settings* src : {&c->env, &c->file}) {
        if (auto it = src->find(s.key); it != src->end() && r == nullptr) r = &it->second;
      }
      std::string value = r ? fmt::format("{}", fmt::join(r->values, ",")) : s.default_text;
      std::string origin = r ? r->origin : "default";
      settings.push_back(nlohmann::json{
          {"key", yaml_key(s.key)},
          {"value", r                        ? r->values
                    : s.default_text.empty() ? std::vector<std::string>{}
                                             : std::vector<std::string>{s.default_text}},
          {"source", origin}});
      rows.push_back({yaml_key(s.key), value, origin});
    }
    if (output == "json") {
      print_json(nlohmann::json{
          {"file", *check_file}, {"valid", valid}, {"problems", problems}, {"settings", settings}});
      return;
    }
    std::cout << render_table({"KEY", "VALUE", "SOURCE"}, rows);
    if (valid) std::cout << *check_file << ": valid\n";
  });
}

}  // namespace meshdeploy::cli
