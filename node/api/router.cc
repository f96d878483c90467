#include "node/api/router.h"

#include "node/agent/errc.h"
#include "node/deploy/errc.h"
#include "node/records/errc.h"
#include "storage/errc.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace meshdeploy::api {

using nlohmann::json;

api_response json_response(unsigned status, const json& j) {
  api_response r;
  r.status = status;
  r.body = j.dump();
  return r;
}

api_response bad_request(std::string message) {
  return error_response(make_error(deploy::errc::invalid_argument, std::move(message)));
}

namespace {

template <class T>
json list_json(const char* key, const std::vector<T>& items) {
  json arr = json::array();
  for (const auto& i : items) arr.push_back(deploy::to_json(i));
  return json{{key, std::move(arr)}};
}

}  // namespace

api_response error_response(const error& e) {
  unsigned status = 500;
  std::string code = "InternalError";
  if (e.code.category() == deploy::deploy_category()) {
    switch (static_cast<deploy::errc>(e.code.value())) {
      case deploy::errc::invalid_argument:
        status = 400;
        code = "InvalidArgument";
        break;
      case deploy::errc::not_found:
        status = 404;
        code = "NotFound";
        break;
      case deploy::errc::already_exists:
        status = 409;
        code = "AlreadyExists";
        break;
      case deploy::errc::conflict:
        status = 409;
        code = "Conflict";
        break;
      case deploy::errc::no_targets:
        status = 400;
        code = "NoInstances";
        break;
      case deploy::errc::unavailable:
        status = 503;
        code = "HostUnavailable";
        break;
      case deploy::errc::timed_out:
        status = 504;
        code = "HostTimedOut";
        break;
      default:
        break;
    }
  } else if (e.code.category() == records::records_category()) {
    switch (static_cast<records::errc>(e.code.value())) {
      case records::errc::bad_signature:
      case records::errc::unknown_writer:
      case records::errc::permission_denied:
        status = 403;
        code = "PermissionDenied";
        break;
      case records::errc::malformed:
      case records::errc::too_large:
      case records::errc::version_unsupported:
      case records::errc::schema:
        status = 400;
        code = "InvalidRecord";
        break;
      case records::errc::stale:
        status = 409;
        code = "StaleRecord";
        break;
      case records::errc::conflict:
      case records::errc::exists:
        status = 409;
        code = "Conflict";
        break;
      case records::errc::not_found:
        status = 404;
        code = "NotFound";
        break;
      default:
        break;
    }
  } else if (e.code.category() == agent::agent_category()) {
    switch (static_cast<agent::errc>(e.code.value())) {
      case agent::errc::io_error:
      case agent::errc::interrupted:
        break;
      default:
        status = 400;
        code = "InvalidRevision";
        break;
    }
  }
  return json_response(status, json{{"error", {{"code", code}, {"message", e.message}}}});
}

api_response log_response(deploy::log_text t) {
  api_response r;
  r.content_type = "text/plain; charset=utf-8";
  if (t.truncated)
    r.headers.emplace_back("X-Meshdeploy-Log-Truncated", std::to_string(t.full_bytes));
  r.body = std::move(t.text);
  return r;
}

router::router(deploy::registry& reg, deploy::local_deployer& deployer, node_info info)
    : reg_(reg), deployer_(deployer), info_(std::move(info)) {}

void router::set_members_provider(std::function<json()> provider) {
  members_ = std::move(provider);
}

void router::set_metrics_provider(std::function<std::string()> provider) {
  metrics_ = std::move(provider);
}

void router::set_remote_log_reader(remote_log_fn reader) { remote_logs_ = std::move(reader); }

void router::add_route_handler(route_handler h) { extra_routes_.push_back(std::move(h)); }

api_response router::handle(const api_request& req) {
  for (const auto& h : extra_routes_) {
    if (auto r = h(req)) return std::move(*r);
  }
  const parsed_target t = parse_target(req.target);
  const std::vector<std::string> seg = path_segments(t.path);
  auto query = [&](const char* k) {
    auto it = t.query.find(k);
    return it == t.query.end() ? std::string() : it->second;
  };
  auto respond = [](auto&& r, unsigned status = 200) {
    if (!r) return error_response(r.error());
    return json_response(status, deploy::to_json(r.value()));
  };
  const std::string& m = req.method;

  if (t.path == "/metrics" && m == "GET") {
    api_response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_ ? metrics_() : std::string("# no metrics provider\n");
    return r;
  }
  if (seg.size() < 2 || seg[0] != "v1") {
    return json_response(
        404,
        json{{"error",
              {{"code", "NotFound"}, {"message", fmt::format("no API route {} {}", m, t.path)}}}});
  }
  const std::string& res = seg[1];

  if (res == "health" && m == "GET" && seg.size() == 2) {
    json tags = json::object();
    for (const auto& tg : info_.tags) tags[tg.key] = tg.value;
    return json_response(200, json{{"name", info_.name},
                                   {"version", info_.version},
                                   {"tags", tags},
                                   {"installRoot", info_.install_root},
                                   {"status", "ok"}});
  }

  if (res == "members" && m == "GET" && seg.size() == 2) {
    if (members_) return json_response(200, members_());
    json tags = json::object();
    for (const auto& tg : info_.tags) tags[tg.key] = tg.value;
    return json_response(200, json{{"gossip", "disabled"},
                                   {"members", json::array({json{{"name", info_.name},
                                                                 {"address", nullptr},
                                                                 {"status", "alive"},
                                                                 {"incarnation", 0},
                                                                 {"tags", tags}}})}});
  }

  if (res == "apps") {
    if (m == "GET" && seg.size() == 2) {
      auto apps = reg_.list_apps();
      if (!apps) return error_response(apps.error());
      return json_response(200, list_json("applications", apps.value()));
    }
    if (m == "GET" && seg.size() == 3) return respond(reg_.get_app(seg[2]));
  }

  if (res == "groups") {
    if (m == "GET" && seg.size() == 2) {
      const std::string app = query("app");
      if (app.empty()) return bad_request("query parameter 'app' is required");
      if (auto a = reg_.get_app(app); !a) return error_response(a.error());
      auto groups = reg_.list_groups(app);
      if (!groups) return error_response(groups.error());
      return json_response(200, list_json("deploymentGroups", groups.value()));
    }
    if (m == "GET" && seg.size() == 4) return respond(reg_.get_group(seg[2], seg[3]));
  }

  if (res == "configs") {
    if (m == "GET" && seg.size() == 2) {
      auto configs = reg_.list_configs();
      if (!configs) return error_response(configs.error());
      return json_response(200, list_json("deploymentConfigs", configs.value()));
    }
    if (m == "GET" && seg.size() == 3) return respond(reg_.get_config(seg[2]));
  }

  if (res == "revisions") {
    const std::string app = query("app");
    if (m == "GET" && seg.size() == 2) {
      if (app.empty()) return bad_request("query parameter 'app' is required");
      if (auto a = reg_.get_app(app); !a) return error_response(a.error());
      auto revs = reg_.list_revisions(app);
      if (!revs) return error_response(revs.error());
      return json_response(200, list_json("revisions", revs.value()));
    }
  }

  if (res == "deployments") {
    if (m == "GET" && seg.size() == 2) {
      auto list = reg_.list_deployments(query("app"), query("group"));
      if (!list) return error_response(list.error());
      json arr = json::array();
      for (const auto& d : list.value()) arr.push_back(deploy::to_json(d));
      return json_response(200, json{{"deployments", std::move(arr)}});
    }
    if (seg.size() >= 3) {
      const std::string& id = seg[2];
      if (m == "GET" && seg.size() == 3) {
        auto d = reg_.get_deployment(id);
        if (!d) return error_response(d.error());
        // ?waitVersion=N&timeoutMs=T: answer when the version exceeds N (also after the
        // deployment ended: host rows may still settle).
        const std::string wv = query("waitVersion");
        if (!wv.empty()) {
          std::uint64_t v = 0;
          try {
            v = std::stoull(wv);
          } catch (...) {
            return bad_request(fmt::format("waitVersion '{}' is not a number", wv));
          }
          if (d.value().version <= v) {
            long timeout = 10000;
            if (const std::string tm = query("timeoutMs"); !tm.empty()) {
              try {
                timeout = std::clamp(std::stol(tm), 0L, 60000L);
              } catch (...) {
                return bad_request(fmt::format("timeoutMs '{}' is not a number", tm));
              }
            }
            api_response r;
            r.wait_for_deployment = id;
            r.wait_timeout = std::chrono::milliseconds(timeout);
            r.body = deploy::to_json(d.value()).dump();
            return r;
          }
        }
        return json_response(200, deploy::to_json(d.value()));
      }
      if (m == "GET" && seg.size() == 4 && seg[3] == "logs") {
        const std::string host = query("host");
        const std::string event = query("event");
        if (host.empty() || host == info_.name || !remote_logs_) {
          auto log = deployer_.read_log(id, host, event, deploy::max_log_text_bytes);
          if (!log) return error_response(log.error());
          return log_response(std::move(log).value());
        }
        // A deployment this node knows names its targets: a host outside them has no log of it.
        if (auto d = reg_.get_deployment(id); d && !d.value().hosts.empty()) {
          const auto& hosts = d.value().hosts;
          if (std::none_of(hosts.begin(), hosts.end(),
                           [&](const deploy::host_progress& h) { return h.host == host; })) {
            std::string names;
            for (const auto& h : hosts) names += (names.empty() ? "" : ", ") + h.host;
            return error_response(make_error(
                deploy::errc::not_found,
                fmt::format("host '{}' is not a target of {} (its hosts: {})", host, id, names)));
          }
        }
        api_response r;
        r.wait_timeout = std::chrono::seconds(30);
        r.deferred = [reader = remote_logs_, host, id, event](api_response::reply_fn reply) {
          reader(host, id, event, [reply = std::move(reply)](result<deploy::log_text> t) {
            reply(t ? log_response(std::move(t).value()) : error_response(t.error()));
          });
        };
        return r;
      }
    }
  }
  return json_response(
      404,
      json{{"error",
            {{"code", "NotFound"}, {"message", fmt::format("no API route {} {}", m, t.path)}}}});
}

}  // namespace meshdeploy::api
