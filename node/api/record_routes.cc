#include "node/api/record_routes.h"

#include "node/deploy/deployment_config.h"
#include "node/deploy/errc.h"
#include "node/records/errc.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <variant>

namespace meshdeploy::api {

using nlohmann::json;
namespace rec = records;

namespace {

std::string hex_of(const rec::public_key& k) { return rec::to_hex(k); }

json payload_json(const rec::payload& p) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, rec::grant_payload>) {
          return {{"operatorName", v.operator_name},
                  {"operatorKey", hex_of(v.operator_key)},
                  {"allow", v.allow},
                  {"revoked", v.revoked}};
        } else if constexpr (std::is_same_v<T, rec::application_payload>) {
          return {{"name", v.name}, {"deleted", v.deleted}};
        } else if constexpr (std::is_same_v<T, rec::group_payload>) {
          return {{"application", v.app},
                  {"name", v.name},
                  {"tagSets", v.selector},
                  {"deploymentConfig", v.config},
                  {"autoRollback", v.auto_rollback},
                  {"deleted", v.deleted}};
        } else if constexpr (std::is_same_v<T, rec::config_payload>) {
          return {{"name", v.name},
                  {"minimumHealthyHosts",
                   {{"type", v.min_healthy_type == 1 ? "FLEET_PERCENT" : "HOST_COUNT"},
                    {"value", v.value}}},
                  {"deleted", v.deleted}};
        } else if constexpr (std::is_same_v<T, rec::revision_payload>) {
          return {{"application", v.app}, {"revisionId", v.id},     {"bundleType", v.format},
                  {"size", v.size},       {"manifest", v.manifest}, {"origin", v.origin}};
        } else if constexpr (std::is_same_v<T, rec::intent_payload>) {
          return {{"deploymentId", v.deployment_id},
                  {"application", v.app},
                  {"deploymentGroup", v.group},
                  {"revision", v.revision},
                  {"deploymentConfig", v.config},
                  {"targets", v.targets},
                  {"electorate", v.electorate},
                  {"maxOutOfService", v.max_out_of_service},
                  {"failureBudget", v.failure_budget},
                  {"rollbackOf", v.rollback_of},
                  {"ignoreApplicationStopFailures", v.ignore_stop_failures},
                  {"fileExistsBehavior", v.file_exists_behavior},
                  {"creator", v.creator}};
        } else if constexpr (std::is_same_v<T, rec::approval_payload>) {
          return {{"application", v.app},
                  {"deploymentGroup", v.group},
                  {"parent", v.parent},
                  {"child", v.child},
                  {"host", v.host}};
        } else if constexpr (std::is_same_v<T, rec::progress_payload>) {
          json events = json::array();
          for (const auto& e : v.events) {
            events.push_back({{"name", e.name},
                              {"status", e.status},
                              {"startMs", e.start_ms},
                              {"endMs", e.end_ms},
                              {"errorCode", e.error_code},
                              {"scriptName", e.script},
                              {"message", e.message},
                              {"logTail", e.log_tail}});
          }
          return {{"deploymentId", v.deployment_id},
                  {"host", v.host},
                  {"phase", v.phase},
                  {"events", std::move(events)}};
        } else if constexpr (std::is_same_v<T, rec::stop_payload>) {
          return {{"deploymentId", v.deployment_id},
                  {"application", v.app},
                  {"deploymentGroup", v.group},
                  {"reason", v.reason}};
        } else if constexpr (std::is_same_v<T, rec::exclude_payload>) {
          return {{"deploymentId", v.deployment_id},
                  {"application", v.app},
                  {"deploymentGroup", v.group},
                  {"host", v.host}};
        } else {
          static_assert(std::is_same_v<T, rec::host_payload>);
          return {{"name", v.name}, {"key", hex_of(v.key)}};
        }
      },
      p);
}

std::optional<rec::record_type> parse_type(std::string_view name) {
  for (std::uint8_t t = 1; t <= rec::max_record_type; ++t) {
    const auto type = static_cast<rec::record_type>(t);
    if (rec::to_string(type) == name) return type;
  }
  return std::nullopt;
}

result<rec::record> record_from_hex(std::string_view hex) {
  if (hex.empty()) {
    return make_error(deploy::errc::invalid_argument,
                      "the request carries no signed record (field 'record'); sign it with an "
                      "operator key: meshdeploy --identity FILE ...");
  }
  MESH_TRY(auto bytes, rec::from_hex(hex));
  return rec::decode(std::as_bytes(std::span(bytes)));
}

class record_routes {
 public:
  explicit record_routes(record_routes_context ctx) : ctx_(std::move(ctx)) {}

  std::optional<api_response> operator()(const api_request& req) const {
    const parsed_target t = parse_target(req.target);
    const std::vector<std::string> seg = path_segments(t.path);
    auto query = [&](const char* k) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string() : it->second;
    };
    if (seg.size() < 2 || seg[0] != "v1") return std::nullopt;
    const std::string& m = req.method;
    if (seg[1] == "records" && seg.size() == 2 && m == "POST") return submit_json(req);
    if (seg[1] == "records" && seg.size() >= 3 && m == "GET") return read(seg, query("prefix"));
    if (seg[1] == "revisions" && seg.size() == 2 && m == "POST") {
      return upload(req, query("app"), query("record"));
    }
    if (seg[1] == "groups" && seg.size() == 5 && seg[4] == "plan" && m == "GET") {
      const std::string absent = query("absent");
      if (!absent.empty() && absent != "count" && absent != "ignore") {
        return error_response(make_error(
            deploy::errc::invalid_argument,
            fmt::format("absent={} is not valid: use absent=count (the default) or absent=ignore",
                        absent)));
      }
      return plan(seg[2], seg[3], query("deployment"), query("config"), absent == "ignore");
    }
    return std::nullopt;
  }

 private:
  api_response submit_json(const api_request& req) const {
    auto body = parse_body(req);
    if (!body) return error_response(body.error());
    auto hex = str_field(body.value(), "record", false);
    if (!hex) return error_response(hex.error());
    auto r = record_from_hex(hex.value());
    if (!r) return error_response(r.error());
    auto p = ctx_.check(r.value());
    if (!p) return error_response(p.error());
    const auto replace = body.value().find("replace");
    if (replace != body.value().end() && !replace->is_boolean()) {
      return bad_request("field 'replace' must be true or false");
    }
    const auto change = replace != body.value().end() && replace->get<bool>()
                            ? deploy::registry::definition_change::replace
                            : deploy::registry::definition_change::create_or_delete;
    if (auto c = ctx_.reg.check_definition(p.value(), change); !c) {
      return error_response(c.error());
    }
    // A stop must name a deployment this node knows, and an intent a new one.
    if (const auto* s = std::get_if<rec::stop_payload>(&p.value())) {
      if (auto d = ctx_.reg.get_deployment(s->deployment_id); !d) return error_response(d.error());
    }
    if (const auto* in = std::get_if<rec::intent_payload>(&p.value())) {
      if (auto err = check_intent(*in)) return *err;
    }
    auto outcome = ctx_.publish(r.value());
    if (!outcome) return error_response(outcome.error());
    if (const auto* in = std::get_if<rec::intent_payload>(&p.value())) {
      auto d = ctx_.refreshed(in->deployment_id);
      if (!d) return error_response(d.error());
      return json_response(201, deploy::to_json(d.value()));
    }
    if (const auto* s = std::get_if<rec::stop_payload>(&p.value())) {
      auto d = ctx_.refreshed(s->deployment_id);
      if (!d) return error_response(d.error());
      return json_response(200, deploy::to_json(d.value()));
    }
    return json_response(outcome.value() ? 201 : 200, json{{"type", rec::to_string(r.value().type)},
                                                           {"key", r.value().key},
                                                           {"version", r.value().version},
                                                           {"stored", outcome.value()}});
  }

  // Checks what the node can check about an intent before it is published.
  std::optional<api_response> check_intent(const rec::intent_payload& in) const {
    if (auto d = ctx_.reg.get_deployment(in.deployment_id)) {
      return error_response(
          make_error(deploy::errc::already_exists,
                     fmt::format("deployment {} already exists", in.deployment_id)));
    }
    if (auto g = ctx_.reg.get_group(in.app, in.group); !g) return error_response(g.error());
    if (auto rv = ctx_.reg.get_revision(in.app, in.revision); !rv) {
      return error_response(rv.error());
    }
    if (auto c = ctx_.reg.get_config(in.config); !c) return error_response(c.error());
    return std::nullopt;
  }

  api_response upload(const api_request& req, const std::string& app,
                      const std::string& hex) const {
    if (req.body_file.empty()) return bad_request("the request body must be the bundle");
    auto r = record_from_hex(hex);
    if (!r) return error_response(r.error());
    if (r.value().type != rec::record_type::revision) {
      return bad_request(fmt::format("the record of an upload must be a revision record, not {}",
                                     rec::to_string(r.value().type)));
    }
    auto p = ctx_.check(r.value());
    if (!p) return error_response(p.error());
    const auto& rev = std::get<rec::revision_payload>(p.value());
    if (!app.empty() && app != rev.app) {
      return bad_request(
          fmt::format("query parameter app '{}' does not match the record's "
                      "application '{}'",
                      app, rev.app));
    }
    if (auto a = ctx_.reg.get_app(rev.app); !a) return error_response(a.error());
    if (auto m = ctx_.reg.check_manifest(rev, req.body_file); !m) {
      std::error_code ec;
      std::filesystem::remove(req.body_file, ec);
      return error_response(m.error());
    }
    if (auto s = ctx_.reg.store_bundle(rev, req.body_file); !s) return error_response(s.error());
    if (auto c = ctx_.reg.check_definition(p.value()); !c) return error_response(c.error());
    auto outcome = ctx_.publish(r.value());
    if (!outcome) return error_response(outcome.error());
    return json_response(201,
                         deploy::to_json(deploy::revision_from_payload(rev, r.value().time_ms)));
  }

  api_response read(const std::vector<std::string>& seg, const std::string& prefix) const {
    const auto type = parse_type(seg[2]);
    if (!type) {
      return json_response(
          404,
          json{{"error",
                {{"code", "NotFound"}, {"message", fmt::format("no record type '{}'", seg[2])}}}});
    }
    if (seg.size() == 3) {
      auto all = ctx_.store.scan(*type, prefix);
      if (!all) return error_response(all.error());
      json arr = json::array();
      for (const auto& r : all.value()) {
        auto p = rec::decode_payload(r.type, r.payload);
        if (p) arr.push_back(record_json(r, p.value()));
      }
      return json_response(200, json{{"records", std::move(arr)}});
    }
    std::string key = seg[3];
    for (std::size_t i = 4; i < seg.size(); ++i) key += "/" + seg[i];
    auto r = ctx_.store.get(*type, key);
    if (!r) return error_response(r.error());
    if (!r.value()) {
      return error_response(make_error(
          rec::errc::not_found, fmt::format("no {} record '{}'", rec::to_string(*type), key)));
    }
    auto p = rec::decode_payload(r.value()->type, r.value()->payload);
    if (!p) return error_response(p.error());
    return json_response(200, record_json(*r.value(), p.value()));
  }

  // `ignore_absent`: leave the previous deployment's absent hosts out of the electorate (the
  // operator says they are gone for good).
  api_response plan(const std::string& app, const std::string& group_name,
                    const std::string& deployment_id, const std::string& config_name,
                    bool ignore_absent) const {
    auto g = ctx_.reg.get_group(app, group_name);
    if (!g) return error_response(g.error());
    auto c = ctx_.reg.get_config(config_name.empty() ? g.value().config : config_name);
    if (!c) return error_response(c.error());
    std::vector<std::string> hosts;
    std::vector<std::string> dead;  // members SWIM still lists as dead
    for (const auto& h : ctx_.live_hosts()) {
      if (deploy::matches(g.value().tag_sets, h.tags)) (h.live ? hosts : dead).push_back(h.name);
    }
    // Hosts that may be out of service from the group's last deployment go first (CodeDeploy's
    // order), then by a hash of (deployment id, host): deploy::rollout::order_targets.
    const std::string id = deployment_id.empty() ? deploy::new_deployment_id() : deployment_id;
    std::sort(hosts.begin(), hosts.end());
    hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
    deploy::rollout::target_plan p = ctx_.plan(app, group_name, std::move(hosts), id);
    // Members of the group that this node lists as dead count too (the group's first
    // deployment has no previous one to take them from).
    for (auto& h : dead) {
      if (std::find(p.targets.begin(), p.targets.end(), h) == p.targets.end() &&
          std::find(p.electorate.begin(), p.electorate.end(), h) == p.electorate.end()) {
        p.electorate.push_back(std::move(h));
      }
    }
    std::sort(p.electorate.begin(), p.electorate.end());
    if (ignore_absent) p.electorate.clear();
    // A node that sees only a minority of the group's hosts is probably cut off from the mesh:
    // its plan would leave most hosts out and could not be admitted until it is back.
    const deploy::rollout::committee_reach reach = deploy::rollout::reach_of(app, group_name, p);
    if (!p.targets.empty() && !reach.majority()) {
      return error_response(make_error(
          deploy::errc::unavailable,
          fmt::format("this node sees only {} of the {} hosts whose approval the deployment "
                      "needs (absent: {}); it may be cut off from the mesh. Submit through "
                      "another node, wait until they are back, or, if they are gone for good, "
                      "plan without them (deploy --ignore-absent-hosts, API absent=ignore)",
                      reach.live, reach.committee, fmt::join(p.electorate, ", "))));
    }
    const auto n = static_cast<std::uint32_t>(p.targets.size());
    json j{{"deploymentId", id},
           {"application", app},
           {"deploymentGroup", group_name},
           {"deploymentConfig", c.value().name},
           {"targets", p.targets},
           {"electorate", p.electorate},
           {"absentOutOfService",
            ignore_absent ? std::vector<std::string>{} : p.absent_out_of_service},
           {"maxOutOfService", n == 0 ? 0 : deploy::max_out_of_service(c.value(), n)},
           {"minimumHealthyHosts", n == 0 ? 0 : deploy::min_healthy_hosts(c.value(), n)}};
    return json_response(200, j);
  }

  record_routes_context ctx_;
};

}  // namespace

json record_json(const rec::record& r, const rec::payload& p) {
  return {{"type", rec::to_string(r.type)},
          {"key", r.key},
          {"version", r.version},
          {"writer", hex_of(r.writer)},
          {"time", deploy::to_rfc3339(r.time_ms)},
          {"via", r.via},
          {"payload", payload_json(p)}};
}

router::route_handler make_record_routes(record_routes_context ctx) {
  return [routes = std::make_shared<record_routes>(std::move(ctx))](const api_request& req) {
    return (*routes)(req);
  };
}

}  // namespace meshdeploy::api
