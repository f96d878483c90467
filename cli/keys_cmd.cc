#include "cli/keys_cmd.h"

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/common.h"
#include "cli/render.h"
#include "node/security/identity.h"
#include "node/security/key_auth.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

namespace meshdeploy::cli {

namespace {

using nlohmann::json;

// Calls the node and returns the answer document, or sets `code` and returns nullopt.
std::optional<json> call(const std::string& api, const std::string& method,
                         const std::string& target, const std::string& body, int& code) {
  auto r = check_reply(client(api).call(method, target, body, std::chrono::seconds(60)));
  if (r.code != exit_ok || !r.body.is_object()) {
    code = r.code != exit_ok ? r.code : exit_failed;
    return std::nullopt;
  }
  return std::move(r.body);
}

std::string names(const json& arr) {
  std::string out;
  for (const auto& n : arr) out += (out.empty() ? "" : ", ") + n.get<std::string>();
  return out;
}

}  // namespace

std::string render_keys(const json& doc) {
  std::string out;
  const std::string action = doc.value("action", "");
  const auto members = doc.value("members", 0);
  const auto acked = doc.value("acknowledged", 0);
  if (action == "list") {
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : doc.value("keys", json::array())) {
      rows.push_back({k.value("id", ""), k.value("fingerprint", ""),
                      fmt::format("{}/{}", k.value("members", 0), acked),
                      std::to_string(k.value("primary_on", 0)),
                      k.value("local_primary", false) ? "primary"
                      : k.value("local", false)       ? "yes"
                                                      : "no"});
    }
    out += render_table({"ID", "FINGERPRINT", "INSTALLED ON", "PRIMARY ON", "THIS NODE"}, rows);
    out += fmt::format("{} of {} members answered\n", acked, members);
  } else {
    out += fmt::format("key {}: {} of {} members acknowledged\n", action, acked, members);
  }
  for (const auto& f : doc.value("failed", json::array())) {
    out += fmt::format("  failed on {}: {}\n", f.value("name", ""), f.value("error", ""));
  }
  const auto missing = doc.value("not_acknowledged", json::array());
  if (!missing.empty()) out += fmt::format("  no answer from: {}\n", names(missing));
  return out;
}

void add_keys_commands(CLI::App& root, const std::string& api, const std::string& output,
                       int& exit_code) {
  auto* keys = root.add_subcommand(
      "keys",
      "Rotate the cluster's gossip keys at runtime, on every member, through this node.\n\n"
      "Changes need the cluster admin's key (--admin-key).\n\n"
      "Rotation:\n  meshdeploy keys install NEW --admin-key admin.key && meshdeploy keys use NEW "
      "--admin-key admin.key && meshdeploy keys remove OLD --admin-key admin.key");
  keys->require_subcommand(1);
  auto run = [&api, &output, &exit_code](const std::string& method, const std::string& target,
                                         const std::string& body) {
    auto doc = call(api, method, target, body, exit_code);
    if (!doc) return;
    if (output == "json") {
      std::cout << doc->dump(2) << "\n";
    } else {
      std::cout << render_keys(*doc);
    }
    exit_code = doc->value("ok", false) ? exit_ok : exit_failed;
  };
  auto* list = keys->add_subcommand(
      "list", "List the keys of every live member, with how many hold and use each");
  list->callback([run] { run("GET", "/v1/keys", ""); });
  struct op {
    const char* name;
    const char* help;
  };
  static const op ops[] = {
      {"install", "Install KEY (base64, from `meshdeploy keygen`) on every member"},
      {"use", "Make KEY the primary on every member (it must be installed on all of them)"},
      {"remove", "Remove KEY from every member (refused while it is the primary)"}};
  for (const auto& o : ops) {
    auto key = std::make_shared<std::string>();
    auto admin_key = std::make_shared<std::string>();
    auto* cmd = keys->add_subcommand(o.name, o.help);
    cmd->add_option("KEY", *key, "The key, base64")->required();
    cmd->add_option("--admin-key", *admin_key,
                    "The cluster admin's secret key file: key operations must be signed by it")
        ->required();
    const std::string name = o.name;
    cmd->callback([run, key, admin_key, name, &exit_code] {
      auto admin = security::load_identity(*admin_key);
      if (!admin) {
        print_error(admin.error().message);
        exit_code = exit_usage;
        return;
      }
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const auto sig = security::sign_key_operation(admin.value(), name, *key, now);
      run("POST", "/v1/keys/" + name,
          json{{"key", *key}, {"time", now}, {"signature", records::to_hex(sig)}}.dump());
    });
  }
}

}  // namespace meshdeploy::cli
