#include "node/agent/host_state.h"

#include "node/agent/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace meshdeploy::agent {

result<group_host_state> host_state_store::load(const std::string& group_id) const {
  group_host_state s;
  s.group_id = group_id;
  MESH_TRY(auto bytes, db_.get(column_family, group_id));
  if (!bytes) return s;
  auto j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return make_error(errc::io_error, fmt::format("host state of group {} is corrupt", group_id));
  }
  try {
    s.last_successful_deployment = j.value("lastSuccessfulDeployment", "");
    s.last_successful_revision = j.value("lastSuccessfulRevision", "");
    s.last_deployment = j.value("lastDeployment", "");
    s.last_failed = j.value("lastFailed", false);
    for (const auto& e : j.value("installed", nlohmann::json::array())) {
      s.installed.push_back(
          installed_entry{e.at("path").get<std::string>(), e.value("dir", false)});
    }
    for (const auto& id : j.value("history", nlohmann::json::array())) {
      s.history.push_back(id.get<std::string>());
    }
  } catch (const nlohmann::json::exception& ex) {
    return make_error(errc::io_error,
                      fmt::format("host state of group {} is corrupt: {}", group_id, ex.what()));
  }
  return s;
}

result<void> host_state_store::save(const group_host_state& s) {
  nlohmann::json installed = nlohmann::json::array();
  for (const auto& e : s.installed) installed.push_back({{"path", e.path}, {"dir", e.directory}});
  const nlohmann::json j = {{"lastSuccessfulDeployment", s.last_successful_deployment},
                            {"lastSuccessfulRevision", s.last_successful_revision},
                            {"lastDeployment", s.last_deployment},
                            {"lastFailed", s.last_failed},
                            {"installed", std::move(installed)},
                            {"history", s.history}};
  return db_.put(column_family, s.group_id, j.dump(), storage::durability::synced);
}

}  // namespace meshdeploy::agent
