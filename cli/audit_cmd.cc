#include "cli/audit_cmd.h"

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/common.h"
#include "cli/render.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

namespace meshdeploy::cli {
namespace {

using nlohmann::json;

// GETs `target`; on a 2xx reply returns its JSON body, otherwise prints the
// node's message and sets `code` (the same mapping as the other commands).
std::optional<json> get(const std::string& api, const std::string& target, int& code) {
  auto r = check_reply(client(api).call("GET", target));
  if (r.code != exit_ok || !r.body.is_object()) {
    code = r.code != exit_ok ? r.code : exit_failed;
    return std::nullopt;
  }
  return std::move(r.body);
}

std::string str_or(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return fallback;
  return it->get<std::string>();
}

}  // namespace

std::string render_audit(const json& page) {
  std::vector<std::vector<std::string>> rows;
  const json entries = page.value("entries", json::array());
  for (const auto& e : entries) {
    // Who: the operator's name when the node knew it, else the start of the key.
    std::string who = str_or(e, "writerName", "");
    if (who.empty()) who = str_or(e, "writer", "-").substr(0, 16);
    std::string action = str_or(e, "type", "?");
    if (e.contains("version") && e["version"].is_number_unsigned()) {
      action += fmt::format(" v{}", e["version"].get<std::uint64_t>());
    }
    rows.push_back({str_or(e, "time", "-"), who, action, str_or(e, "key", "-"),
                    str_or(e, "via", "-"), str_or(e, "acceptedBy", "-")});
  }
  std::string out = rows.empty()
                        ? std::string("No audit entries.\n")
                        : render_table({"TIME", "WHO", "ACTION", "RESOURCE", "VIA", "NODE"}, rows);
  if (page.value("truncated", false)) {
    out += fmt::format("(showing the newest {}; use --since or --limit for more)\n", rows.size());
  }
  if (const auto n = page.value("unreadable", std::uint64_t{0}); n > 0) {
    out += fmt::format("({} stored entries do not decode: run `meshdeploy audit verify`)\n", n);
  }
  return out;
}

void add_audit_commands(CLI::App& root, const std::string& api, const std::string& output,
                        int& exit_code) {
  // Owned by the command objects' callbacks (CLI11 keeps the lambdas alive with `root`).
  struct options {
    std::string since;
    std::size_t limit = 0;
  };
  auto opts = std::make_shared<options>();

  auto* audit = root.add_subcommand(
      "audit",
      "Show this node's audit log: who changed what, when, through which node.\n\n"
      "Examples:\n  meshdeploy audit --since 2026-01-02T00:00:00Z\n"
      "  meshdeploy audit --limit 20 --output json\n  meshdeploy audit verify");
  audit->require_subcommand(0, 1);
  audit->add_option("--since", opts->since,
                    "Only entries accepted at or after T (RFC 3339, or ms since the epoch)");
  audit->add_option("--limit", opts->limit, "Show at most N entries, the newest (default 100)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
  auto* verify = audit->add_subcommand(
      "verify",
      "Check the audit log's hash chain. Exit 0 when it verifies, 1 with the first broken\n"
      "link otherwise.\n\nExample:\n  meshdeploy audit verify");

  audit->callback([&api, &output, &exit_code, opts, verify] {
    if (verify->parsed()) return;
    std::string target = "/v1/audit";
    std::string sep = "?";
    if (!opts->since.empty()) {
      target += sep + "since=" + url_encode(opts->since);
      sep = "&";
    }
    if (opts->limit != 0) target += sep + fmt::format("limit={}", opts->limit);
    auto body = get(api, target, exit_code);
    if (!body) return;
    exit_code = exit_ok;
    if (output == "json") {
      std::cout << body->dump(2) << "\n";
    } else {
      std::cout << render_audit(*body);
    }
  });

  verify->callback([&api, &output, &exit_code] {
    auto body = get(api, "/v1/audit/verify", exit_code);
    if (!body) return;
    const json& v = *body;
    const bool ok = v.value("ok", false);
    exit_code = ok ? exit_ok : exit_failed;
    if (output == "json") {
      std::cout << v.dump(2) << "\n";
      return;
    }
    if (ok) {
      std::printf("Audit chain verifies: %llu entries, head %llu %s\n",
                  static_cast<unsigned long long>(v.value("entriesChecked", std::uint64_t{0})),
                  static_cast<unsigned long long>(v.value("headSeq", std::uint64_t{0})),
                  v.value("headHash", "").c_str());
    } else {
      std::printf("Audit chain BROKEN at entry %llu (%s): %s\n",
                  static_cast<unsigned long long>(v.value("firstBrokenSeq", std::uint64_t{0})),
                  v.value("break", "").c_str(), v.value("reason", "").c_str());
      std::printf("Entries before it verify (head %llu %s).\n",
                  static_cast<unsigned long long>(v.value("headSeq", std::uint64_t{0})),
                  v.value("headHash", "").c_str());
    }
  });
}

}  // namespace meshdeploy::cli
