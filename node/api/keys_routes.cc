#include "node/api/keys_routes.h"

#include "gossip/errc.h"
#include "node/deploy/errc.h"
#include "node/records/errc.h"
#include "node/security/key_auth.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

namespace meshdeploy::api {

namespace {

using nlohmann::json;
using clock = std::chrono::steady_clock;

api_response json_reply(unsigned status, const json& body) {
  api_response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

api_response refusal(const error& e) {
  const auto code =
      e.code == gossip::errc::invalid_key ? deploy::errc::invalid_argument : deploy::errc::conflict;
  return error_response(make_error(code, e.message));
}

struct pending {
  std::string wait_id;
  bool done = false;
  api_response res;
  clock::time_point finished{};
};

struct state {
  mesh::gossip_driver& driver;
  std::function<void(const std::string&)> notify;
  // In flight or finished-but-not-yet-answered operations, by request (method, path, body).
  std::map<std::string, std::shared_ptr<pending>> ops;
  std::uint64_t next = 0;
};

}  // namespace

json key_report_json(const mesh::key_report& r) {
  json failed = json::array();
  std::size_t ok_count = 0;
  struct tally {
    std::string id;
    std::size_t members = 0;
    std::size_t primary_on = 0;
  };
  std::map<std::string, tally> keys;
  for (const auto& m : r.replies) {
    if (m.ok) {
      ++ok_count;
    } else {
      failed.push_back({{"name", m.name}, {"error", m.error}});
    }
    for (std::size_t i = 0; i < m.keys.size(); ++i) {
      auto& t = keys[m.keys[i].fingerprint];
      t.id = m.keys[i].id;
      ++t.members;
      if (i == 0) ++t.primary_on;
    }
  }
  json key_arr = json::array();
  const auto& local = r.replies.empty() ? std::vector<mesh::key_info>{} : r.replies[0].keys;
  for (const auto& [fp, t] : keys) {
    bool is_local = false;
    for (const auto& k : local) is_local = is_local || k.fingerprint == fp;
    key_arr.push_back({{"id", t.id},
                       {"fingerprint", fp},
                       {"members", t.members},
                       {"primary_on", t.primary_on},
                       {"local", is_local},
                       {"local_primary", !local.empty() && local[0].fingerprint == fp}});
  }
  return {{"action", std::string(mesh::to_string(r.action))},
          {"ok", r.missing.empty() && ok_count == r.replies.size()},
          {"members", r.replies.size() + r.missing.size()},
          {"acknowledged", r.replies.size()},
          {"not_acknowledged", r.missing},
          {"failed", std::move(failed)},
          {"keys", std::move(key_arr)}};
}

router::route_handler keys_routes(mesh::gossip_driver& driver,
                                  std::function<void(const std::string&)> notify,
                                  records::public_key admin) {
  auto st = std::make_shared<state>(state{driver, std::move(notify), {}, 0});
  return [st, admin](const api_request& req) -> std::optional<api_response> {
    const auto t = parse_target(req.target);
    static const std::string prefix = "/v1/keys";
    if (t.path != prefix && t.path.rfind(prefix + "/", 0) != 0) return std::nullopt;
    const std::string action_text = t.path == prefix ? "" : t.path.substr(prefix.size() + 1);
    mesh::key_action action = mesh::key_action::list;
    if (action_text.empty()) {
      if (req.method != "GET")
        return json_reply(
            405, {{"error", {{"code", "MethodNotAllowed"}, {"message", "use GET /v1/keys"}}}});
    } else {
      if (action_text == "install") {
        action = mesh::key_action::install;
      } else if (action_text == "use") {
        action = mesh::key_action::use;
      } else if (action_text == "remove") {
        action = mesh::key_action::remove;
      } else {
        return error_response(
            make_error(deploy::errc::not_found,
                       fmt::format("{}: no such key operation (install, use, remove)", t.path)));
      }
      if (req.method != "POST") {
        return json_reply(
            405,
            {{"error",
              {{"code", "MethodNotAllowed"}, {"message", fmt::format("use POST {}", t.path)}}}});
      }
    }

    // Finished results are kept only briefly for the server's second call.
    const auto now = clock::now();
    std::erase_if(st->ops, [&](const auto& kv) {
      return kv.second->done && now - kv.second->finished > std::chrono::seconds(2);
    });
    const std::string req_key = req.method + " " + t.path + "\n" + req.body;
    auto wait_reply = [](const pending& p) {
      api_response r = json_reply(202, {{"status", "pending"}});
      r.wait_for_deployment = p.wait_id;
      r.wait_timeout = std::chrono::seconds(20);
      return r;
    };
    if (auto it = st->ops.find(req_key); it != st->ops.end()) {
      auto p = it->second;
      if (!p->done) return wait_reply(*p);
      st->ops.erase(it);
      return p->res;
    }

    std::string key;
    if (action != mesh::key_action::list) {
      const json body = json::parse(req.body, nullptr, false);
      if (!body.is_object() || !body.contains("key") || !body["key"].is_string()) {
        return error_response(
            make_error(deploy::errc::invalid_argument,
                       fmt::format("POST {}: body must be {{\"key\": \"<base64 key>\"}}", t.path)));
      }
      key = body["key"].get<std::string>();
      // Only the cluster admin may change what every member encrypts with.
      const auto time = body.find("time");
      const auto sig = body.find("signature");
      auto sig_bytes = (sig != body.end() && sig->is_string())
                           ? records::from_hex(sig->get<std::string>())
                           : result<std::vector<std::uint8_t>>(make_error(
                                 records::errc::bad_signature,
                                 fmt::format("key {}: the request is not signed by the cluster "
                                             "admin (meshdeploy keys {} KEY --admin-key FILE)",
                                             action_text, action_text)));
      if (!sig_bytes || sig_bytes.value().size() != records::signature_bytes ||
          time == body.end() || !time->is_number_integer()) {
        sodium_memzero(key.data(), key.size());
        return error_response(
            sig_bytes ? make_error(records::errc::bad_signature,
                                   fmt::format("key {}: fields 'time' (ms) and 'signature' (hex) "
                                               "are required",
                                               action_text))
                      : sig_bytes.error());
      }
      records::signature signature{};
      std::copy(sig_bytes.value().begin(), sig_bytes.value().end(), signature.begin());
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      if (auto ok = security::check_key_operation(admin, action_text, key,
                                                  time->get<std::int64_t>(), signature, now);
          !ok) {
        sodium_memzero(key.data(), key.size());
        return error_response(ok.error());
      }
    }
    auto p = std::make_shared<pending>();
    p->wait_id = fmt::format("keys-op-{}", st->next++);
    st->ops[req_key] = p;
    std::weak_ptr<state> weak = st;
    st->driver.run_key_operation(action, key, [p, weak](result<mesh::key_report> r) {
      p->res = r ? json_reply(200, key_report_json(r.value())) : refusal(r.error());
      p->done = true;
      p->finished = clock::now();
      if (auto s = weak.lock()) s->notify(p->wait_id);
    });
    if (!key.empty()) sodium_memzero(key.data(), key.size());
    if (p->done) {
      st->ops.erase(req_key);
      return p->res;
    }
    return wait_reply(*p);
  };
}

}  // namespace meshdeploy::api
