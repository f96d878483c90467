#include "cli/cli.h"

#include "cli/audit_cmd.h"
#include "cli/aws_cmds.h"
#include "cli/client.h"
#include "cli/common.h"
#include "cli/completion.h"
#include "cli/keys_cmd.h"
#include "cli/node_cmd.h"
#include "cli/render.h"
#include "cli/security_cmds.h"
#include "cli/signer.h"
#include "cli/terminal.h"
#include "gossip/keyring.h"
#include "node/agent/appspec.h"
#include "node/agent/archive.h"
#include "node/agent/revision.h"
#include "node/deploy/deployment_config.h"
#include "node/deploy/local_deployer.h"
#include "node/deploy/registry.h"
#include "node/node.h"
#include "node/records/payloads.h"
#include "node/swarm/manifest.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <unistd.h>

namespace meshdeploy::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// --- validate -------------------------------------------------------------

// Validates a revision directory or archive locally. Prints problems; returns
// true when the revision is deployable.
bool validate_local(const fs::path& source, bool quiet, json* report) {
  std::vector<std::string> problems;
  std::optional<agent::appspec> spec;
  fs::path root = source;
  std::optional<fs::path> scratch;
  std::error_code ec;
  if (!fs::exists(source, ec)) {
    problems.push_back(fmt::format("{}: no such file or directory", source.string()));
  } else if (!fs::is_directory(source, ec)) {
    char templ[] = "/tmp/meshdeploy-validate-XXXXXX";
    if (::mkdtemp(templ) == nullptr) {
      problems.push_back("cannot create a temporary directory");
    } else {
      scratch = templ;
      root = *scratch;
      if (auto x = agent::extract_archive(source, root); !x) problems.push_back(x.error().message);
    }
  }
  if (problems.empty()) {
    auto rep = agent::validate_revision_dir(root);
    for (const auto& p : rep.problems) problems.push_back(p.message);
    spec = rep.spec;
  }
  if (scratch) fs::remove_all(*scratch, ec);
  if (report) {
    json hooks = json::object();
    if (spec) {
      for (const auto& [event, scripts] : spec->hooks) {
        json arr = json::array();
        for (const auto& sc : scripts) arr.push_back(sc.location);
        hooks[std::string(agent::to_string(event))] = arr;
      }
    }
    *report = json{{"source", source.string()},
                   {"valid", problems.empty()},
                   {"problems", problems},
                   {"files", spec ? spec->files.size() : 0},
                   {"permissions", spec ? spec->permissions.size() : 0},
                   {"hooks", hooks}};
  }
  if (!quiet) {
    for (const auto& p : problems) std::fprintf(stderr, "invalid: %s\n", p.c_str());
  }
  return problems.empty();
}

// --- push -----------------------------------------------------------------

// Packs (if a directory) and uploads a revision; returns its JSON.
reply_result push_revision(const client& c, const globals& g, const std::string& app,
                           const fs::path& source) {
  char templ[] = "/tmp/meshdeploy-push-XXXXXX";
  if (::mkdtemp(templ) == nullptr) {
    print_error("cannot create a temporary directory");
    return {exit_failed, {}};
  }
  const fs::path work = templ;
  auto bundle = agent::prepare_revision(source, work);
  if (!bundle) {
    print_error(bundle.error().message);
    std::error_code ec;
    fs::remove_all(work, ec);
    return {exit_usage, {}};
  }
  records::revision_payload rev;
  rev.app = app;
  rev.id = bundle.value().id;
  rev.format = std::string(agent::to_string(bundle.value().format));
  rev.size = bundle.value().size;
  // The piece manifest's name goes into the signed record, so every node verifies each piece
  // it fetches from any peer (docs/swarm.md).
  auto pieces = swarm::manifest_of_file(bundle.value().archive);
  if (!pieces) {
    print_error(pieces.error().message);
    std::error_code ec;
    fs::remove_all(work, ec);
    return {exit_failed, {}};
  }
  rev.manifest = swarm::manifest_id(swarm::encode_manifest(pieces.value()));
  auto health = c.call("GET", "/v1/health", {}, std::chrono::seconds(10));
  if (health && health.value().status == 200) {
    rev.origin = json::parse(health.value().body, nullptr, false).value("name", "");
  }
  auto s = sign_payload(c, g, rev);
  reply_result r{s.code, {}};
  if (s.code == exit_ok) {
    r = check_reply(
        c.upload(fmt::format("/v1/revisions?app={}&record={}", url_encode(app), record_hex(s.rec)),
                 bundle.value().archive));
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return r;
}

// --- deploy --wait ----------------------------------------------------------

// True while some host row of `d` is still Pending or InProgress.
bool rows_unsettled(const json& d) {
  for (const auto& h : d.value("hosts", json::array())) {
    const std::string st = h.value("status", "");
    if (st == "Pending" || st == "InProgress") return true;
  }
  return false;
}

// Follows a deployment until it ends, printing progress to stderr: on a terminal a live view
// redrawn in place (render_live), else one line per change (CI logs). Returns the
// final document, or an exit code on transport failure. A deployment can end (say Failed,
// once too many hosts failed) before every host's last record reached this node: the rows
// then get up to rows_grace to settle, so the final table is complete when the mesh is.
reply_result wait_for(const client& c, const std::string& id, bool quiet) {
  constexpr auto rows_grace = std::chrono::seconds(5);
  std::optional<std::chrono::steady_clock::time_point> ended;
  json last;
  std::uint64_t version = 0;
  const bool live = !quiet && is_live_terminal(STDERR_FILENO);
  live_block view(stderr);
  // Each long poll returns at the latest after 10 s; a deployment can take
  // hours (8 h CodeDeploy limit), so bound by count, not time.
  for (int polls = 0; polls < 100000; ++polls) {
    long long timeout_ms = 10000;
    if (ended) {
      const auto left = rows_grace - (std::chrono::steady_clock::now() - *ended);
      timeout_ms = std::max<long long>(
          1, std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
    }
    auto r = check_reply(c.call("GET",
                                fmt::format("/v1/deployments/{}?waitVersion={}&timeoutMs={}",
                                            url_encode(id), version, timeout_ms),
                                {}, std::chrono::seconds(40)));
    if (r.code != exit_ok) {
      view.clear();
      return r;
    }
    const json& d = r.body;
    if (live) {
      view.draw(render_live(d, terminal_columns(STDERR_FILENO)));
    } else if (!quiet) {
      for (const auto& line : progress_lines(last, d)) std::fprintf(stderr, "%s\n", line.c_str());
    }
    version = d.value("version", std::uint64_t{0});
    last = d;
    const std::string st = d.value("status", "");
    if (st == "Succeeded" || st == "Failed" || st == "Stopped") {
      const auto now = std::chrono::steady_clock::now();
      if (!ended) ended = now;
      if (!rows_unsettled(d) || now - *ended >= rows_grace) {
        view.clear();
        return {exit_ok, d};
      }
    }
  }
  view.clear();
  print_error("gave up waiting for " + id);
  return {exit_failed, last};
}

int final_code(const json& d) {
  const std::string st = d.value("status", "");
  return st == "Succeeded" ? exit_ok : exit_failed;
}

}  // namespace

int run(int argc, char** argv) {
  if (sodium_init() < 0) {
    print_error("libsodium failed to initialise");
    return exit_failed;
  }
  globals g;
  if (const char* env = std::getenv("MESHDEPLOY_API"); env && *env) {
    g.api = env;
  } else {
    g.api = "127.0.0.1:7947";
  }

  CLI::App app{
      "meshdeploy: masterless, peer-to-peer deployments of CodeDeploy-style revisions.\n"
      "Talks to a node's API (see --api); `meshdeploy node run` starts a node.\n\n"
      "Example:\n"
      "  meshdeploy app create web\n"
      "  meshdeploy group create --app web --name prod --tag role=web\n"
      "  meshdeploy deploy --app web --group prod --source ./my-revision --wait\n\n"
      "Exit codes: 0 ok, 1 deployment failed or stopped, 2 usage or validation error,\n"
      "3 no node reachable, 4 permission denied.",
      "meshdeploy"};
  app.set_version_flag("--version", std::string("meshdeploy ") + node::version());
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--api", g.api, "Node API address HOST:PORT (env MESHDEPLOY_API)")
      ->default_str("127.0.0.1:7947");
  app.add_option("--identity", g.identity,
                 "Operator key file that signs changes (env MESHDEPLOY_IDENTITY)");
  app.add_option("-o,--output", g.output, "Output format for reads")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_str("table");

  int code = exit_ok;
  auto c = [&] { return client(g.api); };

  add_node_commands(app, g.output, code);

  // app -----------------------------------------------------------------------
  auto* app_cmd = app.add_subcommand("app", "Manage applications")->require_subcommand(1);
  std::string app_name;
  auto* app_create = app_cmd->add_subcommand(
      "create", "Create an application\n\nExample:\n  meshdeploy app create web");
  app_create->add_option("NAME", app_name, "Application name")->required();
  app_create->callback([&] {
    auto r = submit_signed(c(), g, records::application_payload{app_name, false});
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Created application %s\n", app_name.c_str());
  });
  auto* app_list = app_cmd->add_subcommand(
      "list", "List applications\n\nExample:\n  meshdeploy app list -o json");
  app_list->callback([&] {
    auto r = check_reply(c().call("GET", "/v1/apps"));
    if ((code = r.code) != exit_ok) return;
    if (g.json()) return print_json(r.body);
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : r.body.value("applications", json::array())) {
      rows.push_back({a.value("name", ""), a.value("createTime", "")});
    }
    std::cout << (rows.empty() ? "No applications.\n" : render_table({"NAME", "CREATED"}, rows));
  });
  auto* app_delete = app_cmd->add_subcommand("delete",
                                             "Delete an application that has no deployment "
                                             "groups\n\nExample:\n  meshdeploy app delete web");
  app_delete->add_option("NAME", app_name, "Application name")->required();
  app_delete->callback([&] {
    auto r = submit_signed(c(), g, records::application_payload{app_name, true});
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Deleted application %s\n", app_name.c_str());
  });

  // group ---------------------------------------------------------------------
  auto* group_cmd = app.add_subcommand("group", "Manage deployment groups")->require_subcommand(1);
  std::string g_app, g_name, g_config;
  std::vector<std::string> g_tags, g_tag_sets;
  bool g_auto_rollback = false;
  auto* group_create = group_cmd->add_subcommand(
      "create",
      "Create a deployment group: the hosts whose tags match.\n"
      "--tag K=V (repeatable) hosts must have all of these tags; --tag-set K=V,K=V (repeatable)\n"
      "adds an alternative set (a host matches if it matches any set), like CodeDeploy's tag "
      "sets.\n\n"
      "Example:\n  meshdeploy group create --app web --name prod --tag role=web --tag env=prod");
  group_create->add_option("--app", g_app, "Application")->required();
  group_create->add_option("--name", g_name, "Group name")->required();
  group_create->add_option("--tag", g_tags, "KEY=VALUE a host must have (AND)");
  group_create->add_option("--tag-set", g_tag_sets, "K=V,K=V: an alternative tag set (OR)");
  group_create->add_option("--config", g_config, "Deployment configuration (default OneAtATime)");
  group_create->add_flag("--auto-rollback", g_auto_rollback,
                         "Roll back to the last successful revision when a deployment fails");
  // The selector of --tag (one AND set) and each --tag-set (alternatives); nullopt after
  // printing what is wrong (the exit code is then exit_usage).
  auto parse_selector = [&]() -> std::optional<records::tag_selector> {
    records::tag_selector sets;
    auto add_set = [&](const std::vector<std::string>& tags) -> bool {
      std::map<std::string, std::string> set;
      for (const auto& t : tags) {
        auto parsed = deploy::parse_tag(t);
        if (!parsed) {
          print_error(parsed.error().message);
          return false;
        }
        if (set.count(parsed.value().key) && set[parsed.value().key] != parsed.value().value) {
          print_error(
              fmt::format("tag key '{}' appears twice with different values in one tag "
                          "set; a host has one value per key, so the set could never match "
                          "(use --tag-set for alternatives)",
                          parsed.value().key));
          return false;
        }
        set[parsed.value().key] = parsed.value().value;
      }
      if (!set.empty()) sets.push_back(std::move(set));
      return true;
    };
    if (!add_set(g_tags)) {
      return std::nullopt;
    }
    for (const auto& ts : g_tag_sets) {
      std::vector<std::string> parts;
      std::size_t pos = 0;
      while (pos <= ts.size()) {
        auto comma = ts.find(',', pos);
        if (comma == std::string::npos) comma = ts.size();
        if (comma > pos) parts.push_back(ts.substr(pos, comma - pos));
        pos = comma + 1;
      }
      if (!add_set(parts)) {
        return std::nullopt;
      }
    }
    return sets;
  };
  group_create->callback([&] {
    auto selector = parse_selector();
    if (!selector) {
      code = exit_usage;
      return;
    }
    records::tag_selector sets = std::move(*selector);
    if (sets.empty()) {
      print_error("give at least one --tag KEY=VALUE or --tag-set K=V,K=V");
      code = exit_usage;
      return;
    }
    records::group_payload gp;
    gp.app = g_app;
    gp.name = g_name;
    gp.selector = std::move(sets);
    gp.config = g_config.empty() ? "OneAtATime" : deploy::canonical_config_name(g_config);
    gp.auto_rollback = g_auto_rollback;
    auto r = submit_signed(c(), g, gp);
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Created deployment group %s of %s (id %s)\n", g_name.c_str(), g_app.c_str(),
                  deploy::group_id(g_app, g_name).c_str());
  });
  bool g_no_auto_rollback = false;
  auto* group_update = group_cmd->add_subcommand(
      "update",
      "Change a deployment group: what is given replaces its setting, the rest stays.\n"
      "--tag/--tag-set, when given, replace the whole tag selection. The new settings are the\n"
      "group's next version, so every node ends up with them; deployments already submitted\n"
      "keep their targets and configuration.\n\n"
      "Examples:\n"
      "  meshdeploy group update --app web --name prod --config HalfAtATime\n"
      "  meshdeploy group update --app web --name prod --tag role=web --tag env=prod "
      "--no-auto-rollback");
  group_update->add_option("--app", g_app, "Application")->required();
  group_update->add_option("--name", g_name, "Group name")->required();
  group_update->add_option("--tag", g_tags,
                           "KEY=VALUE a host must have (AND); replaces the selection");
  group_update->add_option("--tag-set", g_tag_sets,
                           "K=V,K=V: an alternative tag set (OR); replaces the selection");
  group_update->add_option("--config", g_config, "Deployment configuration");
  auto* rollback_on =
      group_update->add_flag("--auto-rollback", g_auto_rollback,
                             "Roll back to the last successful revision when a deployment fails");
  group_update->add_flag("--no-auto-rollback", g_no_auto_rollback, "Turn automatic rollback off")
      ->excludes(rollback_on);
  group_update->callback([&] {
    auto cur =
        check_reply(c().call("GET", "/v1/groups/" + url_encode(g_app) + "/" + url_encode(g_name)));
    if ((code = cur.code) != exit_ok) return;
    records::group_payload gp;
    gp.app = g_app;
    gp.name = g_name;
    gp.config = cur.body.value("deploymentConfig", "OneAtATime");
    gp.auto_rollback = cur.body.value("autoRollback", false);
    for (const auto& set : cur.body.value("tagSets", json::array())) {
      std::map<std::string, std::string> tags;
      for (const auto& t : set) tags[t.value("key", "")] = t.value("value", "");
      gp.selector.push_back(std::move(tags));
    }
    if (!g_tags.empty() || !g_tag_sets.empty()) {
      auto selector = parse_selector();
      if (!selector) {
        code = exit_usage;
        return;
      }
      gp.selector = std::move(*selector);
    }
    if (!g_config.empty()) gp.config = deploy::canonical_config_name(g_config);
    if (g_auto_rollback) gp.auto_rollback = true;
    if (g_no_auto_rollback) gp.auto_rollback = false;
    auto s = sign_payload(c(), g, gp);
    if ((code = s.code) != exit_ok) return;
    auto r = check_reply(c().call("POST", "/v1/records",
                                  json{{"record", record_hex(s.rec)}, {"replace", true}}.dump()));
    if ((code = r.code) != exit_ok) return;
    if (g.json()) return print_json(r.body);
    std::printf("Updated deployment group %s of %s (version %llu): config %s, auto-rollback %s\n",
                g_name.c_str(), g_app.c_str(), static_cast<unsigned long long>(s.rec.version),
                gp.config.c_str(), gp.auto_rollback ? "on" : "off");
  });
  auto* group_list = group_cmd->add_subcommand(
      "list",
      "List an application's deployment groups\n\nExample:\n  meshdeploy group list --app web");
  group_list->add_option("--app", g_app, "Application")->required();
  group_list->callback([&] {
    auto r = check_reply(c().call("GET", "/v1/groups?app=" + url_encode(g_app)));
    if ((code = r.code) != exit_ok) return;
    if (g.json()) return print_json(r.body);
    std::vector<std::vector<std::string>> rows;
    for (const auto& gr : r.body.value("deploymentGroups", json::array())) {
      std::vector<std::string> sets;
      for (const auto& set : gr.value("tagSets", json::array())) {
        std::string s;
        for (const auto& t : set) {
          s += (s.empty() ? "" : " AND ") + t.value("key", "") + "=" + t.value("value", "");
        }
        sets.push_back("(" + s + ")");
      }
      std::string sel;
      for (const auto& s : sets) sel += (sel.empty() ? "" : " OR ") + s;
      rows.push_back(
          {gr.value("name", ""), gr.value("deploymentConfig", ""), sel, gr.value("id", "")});
    }
    std::cout << (rows.empty() ? "No deployment groups.\n"
                               : render_table({"NAME", "CONFIG", "TAGS", "ID"}, rows));
  });

  // config --------------------------------------------------------------------
  auto* config_cmd =
      app.add_subcommand("config", "Manage deployment configurations")->require_subcommand(1);
  std::string cfg_name, cfg_min;
  auto* config_create = config_cmd->add_subcommand(
      "create",
      "Create a deployment configuration: how many hosts must stay healthy.\n\n"
      "Examples:\n  meshdeploy config create TwoDown --min-healthy 3\n"
      "  meshdeploy config create Most --min-healthy 75%");
  config_create->add_option("NAME", cfg_name, "Configuration name")->required();
  config_create->add_option("--min-healthy", cfg_min, "Host count (3) or fleet percent (75%)")
      ->required();
  config_create->callback([&] {
    auto parsed = deploy::parse_min_healthy(cfg_name, cfg_min);
    if (!parsed) {
      print_error(parsed.error().message);
      code = exit_usage;
      return;
    }
    if (auto v = deploy::validate_custom_config_name(cfg_name); !v) {
      print_error(v.error().message);
      code = exit_usage;
      return;
    }
    records::config_payload cp;
    cp.name = cfg_name;
    cp.min_healthy_type = static_cast<std::uint8_t>(parsed.value().type);
    cp.value = parsed.value().value;
    auto r = submit_signed(c(), g, cp);
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Created deployment configuration %s\n", cfg_name.c_str());
  });
  auto* config_list = config_cmd->add_subcommand(
      "list",
      "List deployment configurations (built-ins included)\n\nExample:\n  meshdeploy config list");
  config_list->callback([&] {
    auto r = check_reply(c().call("GET", "/v1/configs"));
    if ((code = r.code) != exit_ok) return;
    if (g.json()) return print_json(r.body);
    std::vector<std::vector<std::string>> rows;
    for (const auto& cf : r.body.value("deploymentConfigs", json::array())) {
      const auto mh = cf.value("minimumHealthyHosts", json::object());
      std::string min = mh.value("type", "") == "FLEET_PERCENT"
                            ? fmt::format("{}%", mh.value("value", 0))
                            : fmt::format("{} host(s)", mh.value("value", 0));
      if (mh.value("type", "") == "ONE_AT_A_TIME") min = "all but one";
      rows.push_back(
          {cf.value("name", ""), min, cf.value("builtin", false) ? "built-in" : "custom"});
    }
    std::cout << render_table({"NAME", "MIN HEALTHY", "KIND"}, rows);
  });

  // validate ------------------------------------------------------------------
  std::string source;
  auto* validate_cmd = app.add_subcommand(
      "validate",
      "Check a revision (directory, zip, tar or tar.gz) without deploying it: appspec, every\n"
      "hook script present and executable, archive safety. Exit 0 if valid, 2 if not.\n\n"
      "Example:\n  meshdeploy validate ./examples/webapp");
  validate_cmd->add_option("PATH", source, "Revision directory or archive")->required();
  validate_cmd->callback([&] {
    json report;
    const bool valid = validate_local(source, g.json(), &report);
    if (g.json())
      print_json(report);
    else if (valid)
      std::printf("%s: valid\n", source.c_str());
    code = valid ? exit_ok : exit_usage;
  });

  // push ----------------------------------------------------------------------
  std::string push_app;
  auto* push_cmd = app.add_subcommand(
      "push",
      "Register a revision with the node; prints the revision id on the first line.\n\n"
      "Example:\n  meshdeploy push --app web --source ./build/web.zip");
  push_cmd->add_option("--app", push_app, "Application")->required();
  push_cmd->add_option("--source", source, "Revision directory or archive")->required();
  push_cmd->callback([&] {
    if (!validate_local(source, false, nullptr)) {
      code = exit_usage;
      return;
    }
    auto r = push_revision(c(), g, push_app, source);
    if ((code = r.code) != exit_ok) return;
    std::printf("%s\n", r.body.value("revisionId", "").c_str());
    if (g.json()) print_json(r.body);
  });

  // deploy --------------------------------------------------------------------
  std::string d_app, d_group, d_revision, d_config, d_fileexists;
  bool d_wait = false, d_ignore_stop = false, d_ignore_absent = false;
  std::uint32_t d_failure_budget = 0;
  auto* deploy_cmd = app.add_subcommand(
      "deploy",
      "Deploy a revision to a deployment group. Prints the deployment id on the first line of\n"
      "standard output; with --wait, follows it (progress on standard error) and exits 1 if it\n"
      "fails or is stopped.\n\n"
      "Examples:\n  meshdeploy deploy --app web --group prod --source ./web --wait\n"
      "  meshdeploy deploy --app web --group prod --revision 3f1c...e9 --config HalfAtATime");
  deploy_cmd->add_option("--app", d_app, "Application")->required();
  deploy_cmd->add_option("--group", d_group, "Deployment group")->required();
  auto* rev_opt = deploy_cmd->add_option("--revision", d_revision, "A pushed revision's id");
  auto* src_opt =
      deploy_cmd->add_option("--source", source, "Push this directory or archive first");
  rev_opt->excludes(src_opt);
  deploy_cmd->add_option("--config", d_config, "Deployment configuration (default: the group's)");
  deploy_cmd
      ->add_option("--file-exists-behavior", d_fileexists,
                   "Override the appspec's file_exists_behavior")
      ->check(CLI::IsMember({"DISALLOW", "OVERWRITE", "RETAIN"}));
  deploy_cmd->add_flag("--ignore-stop-failures", d_ignore_stop,
                       "Go on when ApplicationStop/BeforeBlockTraffic/AfterBlockTraffic fail");
  deploy_cmd
      ->add_option("--failure-budget", d_failure_budget,
                   "Failed hosts tolerated beyond the configuration's minimum-healthy rule before "
                   "the deployment fails (a failed host still holds its rollout token)")
      ->default_str("0");
  deploy_cmd->add_flag(
      "--ignore-absent-hosts", d_ignore_absent,
      "Plan without the hosts of the group's last deployment that the node cannot see now. By\n"
      "default they still count for admission (a majority of them and the targets must\n"
      "approve), so a node cut off from the mesh cannot start a deployment beside another one;\n"
      "use this only when they are gone for good");
  deploy_cmd->add_flag("--wait", d_wait, "Follow the deployment until it ends");
  // Plans, signs and submits a deployment of `revision` to d_app/d_group, then follows it
  // with --wait; returns the exit code. `rollback_of` names the deployment it rolls back.
  auto start_deployment = [&](const client& cl, const std::string& revision,
                              const std::string& rollback_of) -> int {
    // The node resolves the group into an ordered target list and K; the operator signs that
    // plan as the deployment intent.
    const std::string new_id = deploy::new_deployment_id();
    auto plan = check_reply(
        cl.call("GET", fmt::format("/v1/groups/{}/{}/plan?deployment={}&config={}{}",
                                   url_encode(d_app), url_encode(d_group), new_id,
                                   url_encode(d_config), d_ignore_absent ? "&absent=ignore" : "")));
    if (plan.code != exit_ok) return plan.code;
    records::intent_payload in;
    in.deployment_id = new_id;
    in.app = d_app;
    in.group = d_group;
    in.revision = revision;
    in.rollback_of = rollback_of;
    in.config = plan.body.value("deploymentConfig", "");
    in.targets = plan.body.value("targets", std::vector<std::string>{});
    in.electorate = plan.body.value("electorate", std::vector<std::string>{});
    for (const auto& h : plan.body.value("absentOutOfService", std::vector<std::string>{})) {
      std::fprintf(stderr,
                   "warning: %s is absent and may still be out of service from the group's last "
                   "deployment; it holds one of this deployment's rollout tokens until it is "
                   "healthy again (if it is gone for good, deploy with --ignore-absent-hosts)\n",
                   h.c_str());
    }
    in.max_out_of_service = plan.body.value("maxOutOfService", 0u);
    in.failure_budget = d_failure_budget;
    in.ignore_stop_failures = d_ignore_stop;
    in.file_exists_behavior = d_fileexists;
    if (const char* user = std::getenv("USER"); user && *user) in.creator = user;
    auto r = submit_signed(cl, g, in);
    if (r.code != exit_ok) return r.code;
    const std::string id = r.body.value("deploymentId", "");
    json final_doc = r.body;
    if (!g.json()) {
      std::printf("%s\n", id.c_str());
      std::fflush(stdout);
    }
    const std::string st = r.body.value("status", "");
    const bool already_over = st == "Failed" || st == "Stopped" || st == "Succeeded";
    if (d_wait && !already_over) {
      auto w = wait_for(cl, id, g.json());
      if (w.code != exit_ok) return w.code;
      final_doc = w.body;
    }
    if (g.json()) {
      print_json(d_wait || already_over ? final_doc : json{{"deploymentId", id}});
    } else if (d_wait || already_over) {
      std::cout << render_status(final_doc);
    }
    return d_wait || already_over ? final_code(final_doc) : exit_ok;
  };
  deploy_cmd->callback([&] {
    if (d_revision.empty() && source.empty()) {
      print_error("give --revision ID or --source PATH");
      code = exit_usage;
      return;
    }
    client cl = c();
    if (!source.empty()) {
      if (!validate_local(source, false, nullptr)) {
        code = exit_usage;
        return;
      }
      auto pushed = push_revision(cl, g, d_app, source);
      if ((code = pushed.code) != exit_ok) return;
      d_revision = pushed.body.value("revisionId", "");
    }
    code = start_deployment(cl, d_revision, "");
  });

  // rollback ------------------------------------------------------------------
  auto* rollback_cmd = app.add_subcommand(
      "rollback",
      "Deploy again the last revision that succeeded on a deployment group before its newest\n"
      "deployment (CodeDeploy's rollback): a new deployment that names the one it rolls back.\n\n"
      "Example:\n  meshdeploy rollback --app web --group prod --wait");
  rollback_cmd->add_option("--app", d_app, "Application")->required();
  rollback_cmd->add_option("--group", d_group, "Deployment group")->required();
  rollback_cmd->add_option("--config", d_config, "Deployment configuration (default: the group's)");
  rollback_cmd->add_flag("--ignore-absent-hosts", d_ignore_absent,
                         "Plan without the absent hosts of the group's last deployment (see "
                         "deploy --help)");
  rollback_cmd->add_flag("--wait", d_wait, "Follow the deployment until it ends");
  rollback_cmd->callback([&] {
    client cl = c();
    auto list = check_reply(cl.call("GET", fmt::format("/v1/deployments?app={}&group={}",
                                                       url_encode(d_app), url_encode(d_group))));
    if ((code = list.code) != exit_ok) return;
    const json deployments = list.body.value("deployments", json::array());  // newest first
    if (deployments.empty()) {
      print_error(fmt::format("deployment group '{}' of '{}' has no deployment to roll back",
                              d_group, d_app));
      code = exit_usage;
      return;
    }
    const json& current = deployments.front();
    std::string revision;
    for (std::size_t i = 1; i < deployments.size() && revision.empty(); ++i) {
      if (deployments[i].value("status", "") == "Succeeded" &&
          deployments[i].value("revision", "") != current.value("revision", "")) {
        revision = deployments[i].value("revision", "");
      }
    }
    if (revision.empty()) {
      print_error(
          fmt::format("no earlier successful deployment of another revision on '{}' to "
                      "roll back to",
                      d_group));
      code = exit_usage;
      return;
    }
    if (!g.json()) {
      std::fprintf(stderr, "rolling back %s to revision %s\n",
                   current.value("deploymentId", "").c_str(), revision.substr(0, 12).c_str());
    }
    code = start_deployment(cl, revision, current.value("deploymentId", ""));
  });

  // exclude -------------------------------------------------------------------
  std::string x_id, x_host;
  auto* exclude_cmd = app.add_subcommand(
      "exclude",
      "Fence a host off a running deployment: it no longer holds a rollout token (use it when\n"
      "a failed or unreachable host blocks the rollout and you accept running without it).\n\n"
      "Example:\n  meshdeploy exclude d-AB12CD34E --host web-7");
  exclude_cmd->add_option("DEPLOYMENT_ID", x_id, "Deployment id")->required();
  exclude_cmd->add_option("--host", x_host, "The host to fence off")->required();
  exclude_cmd->callback([&] {
    auto d = check_reply(c().call("GET", "/v1/deployments/" + url_encode(x_id)));
    if ((code = d.code) != exit_ok) return;
    // Excluding a host that is not a target fences nothing; excluding one that already resolved
    // would count it as failed and could turn a succeeded deployment into a failed one.
    std::optional<json> row;
    for (const auto& h : d.body.value("hosts", json::array())) {
      if (h.value("host", "") == x_host) row = h;
    }
    if (!row) {
      print_error(fmt::format("{} is not a target of {}", x_host, x_id));
      code = exit_usage;
      return;
    }
    if (row->value("status", "") == "Succeeded") {
      print_error(
          fmt::format("{} already succeeded in {}: it holds no token, and excluding it "
                      "would count it as failed",
                      x_host, x_id));
      code = exit_usage;
      return;
    }
    records::exclude_payload x;
    x.deployment_id = x_id;
    x.app = d.body.value("application", "");
    x.group = d.body.value("deploymentGroup", "");
    x.host = x_host;
    auto r = submit_signed(c(), g, x);
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Excluded %s from %s\n", x_host.c_str(), x_id.c_str());
  });

  // status --------------------------------------------------------------------
  std::string s_id, s_host;
  auto* status_cmd = app.add_subcommand(
      "status",
      "Show a deployment: overall, per host, per lifecycle event, with the failing event's log\n"
      "tail.\n\nExamples:\n  meshdeploy status d-AB12CD34E -o json\n"
      "  meshdeploy status d-AB12CD34E --watch");
  status_cmd->add_option("DEPLOYMENT_ID", s_id, "Deployment id")->required();
  status_cmd->add_option("--host", s_host, "Only this host");
  bool s_watch = false;
  status_cmd->add_flag("--watch", s_watch,
                       "Follow the deployment until it ends (live view on a terminal, one line "
                       "per change otherwise), then show it; exit 1 if it failed or was stopped");
  status_cmd->callback([&] {
    auto r = check_reply(c().call("GET", "/v1/deployments/" + url_encode(s_id)));
    if ((code = r.code) != exit_ok) return;
    if (s_watch) {
      const std::string st = r.body.value("status", "");
      if (st != "Succeeded" && st != "Failed" && st != "Stopped") {
        r = wait_for(c(), s_id, g.json());
        if ((code = r.code) != exit_ok) return;
      }
    }
    json d = r.body;
    if (!s_host.empty()) {
      json hosts = json::array();
      for (const auto& h : d.value("hosts", json::array())) {
        if (h.value("host", "") == s_host) hosts.push_back(h);
      }
      if (hosts.empty()) {
        print_error(fmt::format("host '{}' is not a target of {}", s_host, s_id));
        code = exit_usage;
        return;
      }
      d["hosts"] = hosts;
    }
    if (g.json())
      print_json(d);
    else
      std::cout << render_status(d);
    if (s_watch) code = final_code(r.body);
  });

  // deployments ---------------------------------------------------------------
  std::string l_app, l_group;
  auto* list_cmd = app.add_subcommand(
      "deployments",
      "List deployments, newest first\n\nExample:\n  meshdeploy deployments --app web");
  list_cmd->add_option("--app", l_app, "Only this application");
  list_cmd->add_option("--group", l_group, "Only this deployment group");
  list_cmd->callback([&] {
    auto r = check_reply(c().call("GET", fmt::format("/v1/deployments?app={}&group={}",
                                                     url_encode(l_app), url_encode(l_group))));
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::cout << render_deployments(r.body);
  });

  // stop ----------------------------------------------------------------------
  auto* stop_cmd = app.add_subcommand(
      "stop",
      "Stop a deployment: no further script starts\n\nExample:\n  meshdeploy stop d-AB12CD34E");
  stop_cmd->add_option("DEPLOYMENT_ID", s_id, "Deployment id")->required();
  stop_cmd->callback([&] {
    auto d = check_reply(c().call("GET", "/v1/deployments/" + url_encode(s_id)));
    if ((code = d.code) != exit_ok) return;
    records::stop_payload sp;
    sp.deployment_id = s_id;
    sp.app = d.body.value("application", "");
    sp.group = d.body.value("deploymentGroup", "");
    sp.reason = "stopped by the operator";
    auto r = submit_signed(c(), g, sp);
    if ((code = r.code) != exit_ok) return;
    if (g.json())
      print_json(r.body);
    else
      std::printf("Stop requested for %s (status %s)\n", s_id.c_str(),
                  r.body.value("status", "").c_str());
  });

  // logs ----------------------------------------------------------------------
  std::string lg_event;
  auto* logs_cmd = app.add_subcommand(
      "logs",
      "Print a host's script log for a deployment, optionally one lifecycle event's part.\n\n"
      "Works through any node: the node you talk to (--api) asks host H for its log over the\n"
      "encrypted mesh, and H has 5 s to answer. A log over 1 MiB shows its last 1 MiB (a note on\n"
      "standard error says so).\n\n"
      "Exit codes: 2 when the deployment or H is unknown, H is not one of the deployment's\n"
      "targets, or E is not a lifecycle event; 1 when H is down or did not answer in time;\n"
      "3 when no node answers at --api.\n\n"
      "Example:\n  meshdeploy logs d-AB12CD34E --host web-1 --event ValidateService");
  logs_cmd->add_option("DEPLOYMENT_ID", s_id, "Deployment id")->required();
  logs_cmd->add_option("--host", s_host, "Host whose log to read (default: the node you talk to)");
  logs_cmd->add_option("--event", lg_event, "Lifecycle event, e.g. ApplicationStart");
  logs_cmd->callback([&] {
    auto r =
        c().call("GET", fmt::format("/v1/deployments/{}/logs?host={}&event={}", url_encode(s_id),
                                    url_encode(s_host), url_encode(lg_event)));
    if (!r || r.value().status != 200) {
      code = check_reply(r).code;
      return;
    }
    const std::string& text = r.value().body;
    // Present when the host kept only the end of a longer log: the whole log's size.
    const std::string full = r.value().header("X-Meshdeploy-Log-Truncated");
    if (g.json()) {
      json j{{"deploymentId", s_id},
             {"host", s_host.empty() ? json(nullptr) : json(s_host)},
             {"event", lg_event.empty() ? json(nullptr) : json(lg_event)},
             {"log", text},
             {"truncated", !full.empty()}};
      if (!full.empty()) j["fullBytes"] = std::strtoull(full.c_str(), nullptr, 10);
      // Logs are script output, not always UTF-8.
      std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      return;
    }
    std::cout << text;
    if (!full.empty()) {
      std::fprintf(stderr, "note: truncated: showing the last %zu of %s bytes\n", text.size(),
                   full.c_str());
    }
  });

  // members --------------------------------------------------------------------
  auto* members_cmd = app.add_subcommand(
      "members",
      "List the cluster's members as this node sees them\n\nExample:\n  meshdeploy members");
  members_cmd->callback([&] {
    auto r = check_reply(c().call("GET", "/v1/members"));
    if ((code = r.code) != exit_ok) return;
    if (g.json()) return print_json(r.body);
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : r.body.value("members", json::array())) {
      std::string tags;
      const json tag_obj = m.value("tags", json::object());  // items() must not outlive it
      for (const auto& [k, v] : tag_obj.items()) {
        tags += (tags.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : "");
      }
      rows.push_back({m.value("name", ""),
                      m["address"].is_string() ? m["address"].get<std::string>() : "-",
                      m.value("status", ""), std::to_string(m.value("incarnation", 0)), tags});
    }
    std::cout << render_table({"NAME", "ADDRESS", "STATUS", "INCARNATION", "TAGS"}, rows);
    if (r.body.value("gossip", "") == "disabled") {
      std::cout << "(gossip is off on this node: start it with --keyring to form a cluster)\n";
    }
  });

  add_security_commands(app, g, code);
  add_aws_commands(app, g, code);

  // keygen -------------------------------------------------------------------
  auto* keygen_cmd = app.add_subcommand(
      "keygen",
      "Print a new random cluster key (base64); the line is a valid one-key keyring file.\n\n"
      "Example:\n  (umask 077; meshdeploy keygen > /etc/meshdeploy/keyring)");
  keygen_cmd->callback([&] { std::printf("%s\n", gossip::keygen().c_str()); });

  add_audit_commands(app, g.api, g.output, code);
  add_keys_commands(app, g.api, g.output, code);
  add_completion_command(app, code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  } catch (const nlohmann::json::exception& e) {
    // A reply whose fields have unexpected types: say so instead of aborting.
    print_error(fmt::format("unexpected reply from the node at {}: {}", g.api, e.what()));
    return exit_failed;
  }
  return code;
}

}  // namespace meshdeploy::cli
