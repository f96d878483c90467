#include "node/agent/journal.h"

#include "node/agent/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::agent {
namespace {

std::optional<journal_phase> parse_phase(std::string_view s) {
  if (s == "prepared") return journal_phase::prepared;
  if (s == "entered") return journal_phase::entered;
  if (s == "finished") return journal_phase::finished;
  return std::nullopt;
}

result<journal_entry> decode(std::string_view key, std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  journal_entry e;
  std::optional<journal_phase> phase;
  if (j.is_object()) {
    e.deployment_id = j.value("deploymentId", "");
    e.group_id = j.value("groupId", "");
    phase = parse_phase(j.value("phase", ""));
    e.event = j.value("event", "");
    e.script = j.value("script", "");
    e.hook_token = j.value("hookToken", "");
    e.result = j.value("result", "");
  }
  if (!phase || e.deployment_id.empty()) {
    return make_error(errc::io_error, fmt::format("journal entry '{}' is corrupt", key));
  }
  e.phase = *phase;
  return e;
}

}  // namespace

std::string_view to_string(journal_phase p) {
  switch (p) {
    case journal_phase::prepared:
      return "prepared";
    case journal_phase::entered:
      return "entered";
    case journal_phase::finished:
      return "finished";
  }
  return "prepared";
}

result<void> journal::record(const journal_entry& e, storage::durability durability) {
  const nlohmann::json j = {{"deploymentId", e.deployment_id},
                            {"groupId", e.group_id},
                            {"phase", to_string(e.phase)},
                            {"event", e.event},
                            {"script", e.script},
                            {"hookToken", e.hook_token},
                            {"result", e.result}};
  return db_.put(column_family, e.deployment_id, j.dump(), durability);
}

result<std::optional<journal_entry>> journal::get(const std::string& deployment_id) const {
  MESH_TRY(auto bytes, db_.get(column_family, deployment_id));
  if (!bytes) return std::optional<journal_entry>{};
  MESH_TRY(auto e, decode(deployment_id, *bytes));
  return std::optional<journal_entry>{std::move(e)};
}

result<std::vector<journal_entry>> journal::unfinished() const {
  std::vector<journal_entry> out;
  std::optional<error> bad;
  MESH_CHECK(db_.scan(column_family, "", [&](std::string_view key, std::string_view value) {
    auto e = decode(key, value);
    if (!e) {
      bad = e.error();
      return false;
    }
    if (e.value().phase != journal_phase::finished) out.push_back(std::move(e).value());
    return true;
  }));
  if (bad) return *bad;
  return out;
}

result<void> journal::forget(const std::string& deployment_id) {
  return db_.erase(column_family, deployment_id, storage::durability::synced);
}

}  // namespace meshdeploy::agent
