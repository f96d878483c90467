#include "node/aws/codedeploy_api.h"

#include "node/aws/json_protocol.h"
#include "node/aws/paging.h"
#include "node/aws/revision_source.h"
#include "node/aws/sigv4.h"
#include "node/deploy/deployment_config.h"
#include "node/deploy/errc.h"
#include "node/deploy/local_deployer.h"
#include "node/records/errc.h"
#include "node/security/identity.h"
#include "node/security/verifier.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace meshdeploy::aws {

using nlohmann::json;
namespace fs = std::filesystem;
namespace rec = records;

namespace {

constexpr std::size_t max_list_items = 100;

// The bucket under which a node shows revisions it has no S3 location for (registered through
// another node or the native CLI): s3://meshdeploy-revisions/APP/REVISION_ID.FORMAT. Every node
// resolves such a location from the replicated revision record.
constexpr std::string_view mesh_revisions_bucket = "meshdeploy-revisions";

std::string find_header(const api::api_request& req, std::string_view name) {
  const std::string* v = api::find_header(req.headers, name);
  return v ? *v : std::string();
}

// Group `g`'s current settings as a record payload.
rec::group_payload group_payload_of(const deploy::deployment_group& g) {
  rec::group_payload p;
  p.app = g.application;
  p.name = g.name;
  for (const auto& set : g.tag_sets) {
    std::map<std::string, std::string> m;
    for (const auto& t : set) m[t.key] = t.value;
    p.selector.push_back(std::move(m));
  }
  p.config = g.config;
  p.auto_rollback = g.auto_rollback;
  return p;
}

// The record that deletes group `g`: its current settings with `deleted` set.
rec::group_payload group_tombstone(const deploy::deployment_group& g) {
  rec::group_payload p = group_payload_of(g);
  p.deleted = true;
  return p;
}

std::string aws_config_name(const std::string& name) {
  return deploy::find_builtin_config(name) ? "CodeDeployDefault." + name : name;
}

// The native API's error document {"error":{"code","message"}} as an AWS error; `not_found` is
// the operation's "does not exist" exception and `exists` its "already exists" one.
api_error from_native(const api::api_response& r, std::string_view not_found,
                      std::string_view exists) {
  const json j = json::parse(r.body, nullptr, false);
  std::string code;
  std::string message = r.body;
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    code = j["error"].value("code", "");
    message = j["error"].value("message", "");
  }
  if (code == "NotFound") return {400, std::string(not_found), message};
  if (code == "AlreadyExists") return {400, std::string(exists), message};
  if (code == "PermissionDenied") return {400, "AccessDeniedException", message};
  if (code == "Conflict") return {400, "DeploymentAlreadyStartedException", message};
  if (code == "NoInstances") return {400, "InvalidDeploymentGroupNameException", message};
  if (code == "InvalidRevision") return {400, "InvalidRevisionException", message};
  if (code == "HostUnavailable" || code == "HostTimedOut") {
    return {503, "ServiceUnavailableException", message};
  }
  if (r.status >= 500) return {500, "InternalFailure", message};
  return validation(message);
}

api_error from_error(const error& e, std::string_view not_found, std::string_view exists) {
  return from_native(api::error_response(e), not_found, exists);
}

class codedeploy_api : public std::enable_shared_from_this<codedeploy_api> {
 public:
  explicit codedeploy_api(codedeploy_context ctx) : ctx_(std::move(ctx)) {}

  std::optional<api::api_response> handle(const api::api_request& req, bool answer_all) const {
    const std::string target = find_header(req, "x-amz-target");
    if (target.empty()) {
      if (!answer_all) return std::nullopt;
      return json_error({400, "UnknownOperationException",
                         "requests need an X-Amz-Target: CodeDeploy_20141006.<Operation> header"});
    }
    if (req.method != "POST" || api::parse_target(req.target).path != "/") {
      return json_error({400, "UnknownOperationException", "CodeDeploy calls are POST /"});
    }
    if (!target.starts_with(codedeploy_target_prefix)) {
      return json_error(
          {400, "UnknownOperationException",
           fmt::format("X-Amz-Target '{}' is not a CodeDeploy operation", target.substr(0, 100))});
    }
    const std::string op = target.substr(codedeploy_target_prefix.size());
    auto key = authenticate(req);
    if (!key) return json_error(key.error());
    const json body = json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return json_error({400, "SerializationException", "the request body is not a JSON object"});
    }
    if (ctx_.offload && (op == "CreateDeployment" || op == "RegisterApplicationRevision") &&
        names_s3_object(body)) {
      return offloaded(op, body, *key.value());
    }
    auto r = dispatch(op, body, *key.value());
    if (!r) return json_error(r.error());
    return json_ok(r.value());
  }

 private:
  // Whether the request's revision is an S3 object of this node (bytes to copy and hash), as
  // far as its shape tells; a malformed one is left to the handler's own checks.
  static bool names_s3_object(const json& b) {
    const auto rv = b.find("revision");
    if (rv == b.end() || !rv->is_object()) return false;
    const auto type = rv->find("revisionType");
    const auto s3 = rv->find("s3Location");
    if (type == rv->end() || *type != "S3" || s3 == rv->end() || !s3->is_object()) return false;
    const auto bucket = s3->find("bucket");
    return bucket != s3->end() && bucket->is_string() && *bucket != mesh_revisions_bucket;
  }

  // CreateDeployment or RegisterApplicationRevision of an S3 object: the checks that need no
  // bytes here, on the io thread; copying and hashing the object and uploading the revision
  // (ensure_revision, which only uses thread-safe parts of the node) through ctx_.offload on a
  // pool thread; planning and submitting the deployment back on the io thread. The answer is
  // deferred until then (api_response::deferred).
  api::api_response offloaded(const std::string& op, const json& b, const access_key& k) const {
    std::optional<deployment_request> args;
    std::string app;
    if (op == "CreateDeployment") {
      auto a = deployment_request_of(b, k);
      if (!a) return json_error(a.error());
      app = a.value().app;
      args = std::move(a).value();
    } else {
      auto a = app_of(b, k, "define");
      if (!a) return json_error(a.error());
      app = a.value().name;
    }
    api::api_response res;
    res.wait_timeout = offload_timeout;
    res.timeout_answer = std::make_shared<const api::api_response>(json_error(
        {504, "RequestTimeoutException",
         fmt::format("turning the S3 object into a revision took more than {} minutes; it goes "
                     "on in the background and a retry of this call finds the revision once it "
                     "is registered",
                     offload_timeout.count())}));
    res.deferred = [self = shared_from_this(), b, key = &k, app,
                    args](api::api_response::reply_fn reply) {
      auto rev = std::make_shared<std::optional<api_result<std::string>>>();
      self->ctx_.offload([self, b, key, app, rev] { *rev = self->ensure_revision(*key, app, b); },
                         [self, key, args, rev, reply] {
                           if (!rev->value()) return reply(json_error(rev->value().error()));
                           if (!args) return reply(json_ok(json::object()));
                           auto r = self->start_deployment(*args, rev->value().value(), *key);
                           reply(r ? json_ok(r.value()) : json_error(r.error()));
                         });
    };
    return res;
  }

  api_result<const access_key*> authenticate(const api::api_request& req) const {
    const auto lookup = [this](const std::string& id) -> std::optional<std::string> {
      if (const access_key* k = ctx_.keys.find(id)) return k->secret;
      return std::nullopt;
    };
    auto v = verify({req.method, req.target, req.headers, req.body}, lookup, ctx_.now_ms() / 1000,
                    {uri_style::normalized, "codedeploy"});
    if (!v) return auth_error(v.error());
    return ctx_.keys.find(v.value().access_key_id);
  }

  using handler = api_result<json> (codedeploy_api::*)(const json&, const access_key&) const;

 public:
  // The operations answered, by name.
  static const std::map<std::string, handler, std::less<>>& operations() {
    static const std::map<std::string, handler, std::less<>> ops = {
        {"CreateApplication", &codedeploy_api::create_application},
        {"GetApplication", &codedeploy_api::get_application},
        {"BatchGetApplications", &codedeploy_api::batch_get_applications},
        {"ListApplications", &codedeploy_api::list_applications},
        {"DeleteApplication", &codedeploy_api::delete_application},
        {"CreateDeploymentGroup", &codedeploy_api::create_deployment_group},
        {"GetDeploymentGroup", &codedeploy_api::get_deployment_group},
        {"ListDeploymentGroups", &codedeploy_api::list_deployment_groups},
        {"UpdateDeploymentGroup", &codedeploy_api::update_deployment_group},
        {"DeleteDeploymentGroup", &codedeploy_api::delete_deployment_group},
        {"CreateDeploymentConfig", &codedeploy_api::create_deployment_config},
        {"GetDeploymentConfig", &codedeploy_api::get_deployment_config},
        {"ListDeploymentConfigs", &codedeploy_api::list_deployment_configs},
        {"DeleteDeploymentConfig", &codedeploy_api::delete_deployment_config},
        {"RegisterApplicationRevision", &codedeploy_api::register_application_revision},
        {"ListApplicationRevisions", &codedeploy_api::list_application_revisions},
        {"GetApplicationRevision", &codedeploy_api::get_application_revision},
        {"CreateDeployment", &codedeploy_api::create_deployment},
        {"GetDeployment", &codedeploy_api::get_deployment},
        {"BatchGetDeployments", &codedeploy_api::batch_get_deployments},
        {"ListDeployments", &codedeploy_api::list_deployments},
        {"StopDeployment", &codedeploy_api::stop_deployment},
        {"ListDeploymentInstances", &codedeploy_api::list_deployment_instances},
        {"GetDeploymentInstance", &codedeploy_api::get_deployment_instance},
        {"BatchGetDeploymentInstances", &codedeploy_api::batch_get_deployment_instances},
        {"ListDeploymentTargets", &codedeploy_api::list_deployment_targets},
        {"BatchGetDeploymentTargets", &codedeploy_api::batch_get_deployment_targets},
        {"GetDeploymentTarget", &codedeploy_api::get_deployment_target},
    };
    return ops;
  }

 private:
  api_result<json> dispatch(const std::string& op, const json& b, const access_key& k) const {
    const auto& ops = operations();
    auto it = ops.find(op);
    if (it == ops.end()) {
      return api_error{400, "UnsupportedActionException",
                       fmt::format("meshdeploy does not implement the CodeDeploy operation '{}' "
                                   "(see docs/aws-compatibility.md)",
                                   op.substr(0, 100))};
    }
    return (this->*(it->second))(b, k);
  }

  // ---- authorization -------------------------------------------------------------------------

  // True when the key's newest grant allows `action` on `resource` (security::grant_allows).
  bool allows(const access_key& k, const std::string& action, const std::string& resource) const {
    auto r = ctx_.store.get(rec::record_type::grant, rec::to_hex(k.identity.pub));
    if (!r || !r.value()) return false;
    auto p = rec::decode_payload(r.value()->type, r.value()->payload);
    if (!p) return false;
    const auto* g = std::get_if<rec::grant_payload>(&p.value());
    return g != nullptr && security::grant_allows(*g, security::permission{action, resource});
  }

  api_result<void> require(const access_key& k, const std::string& action,
                           const std::string& resource) const {
    if (allows(k, action, resource)) return outcome::success();
    return api_error{400, "AccessDeniedException",
                     fmt::format("access key {} (operator {}) lacks {}:{}", k.id, k.operator_name,
                                 action, resource)};
  }

  // ---- writes through the native routes -------------------------------------------------------

  rec::record sign_as(const access_key& k, const rec::payload& p) const {
    rec::record r;
    r.type = rec::type_of(p);
    r.key = rec::expected_key(p);
    r.payload = rec::encode_payload(p);
    r.time_ms = ctx_.now_ms();
    r.via = ctx_.node_name;
    if (rec::is_versioned(r.type)) {
      if (auto cur = ctx_.store.get(r.type, r.key); cur && cur.value()) {
        r.version = cur.value()->version + 1;
      }
    }
    security::sign(r, k.identity);
    return r;
  }

  static std::string record_hex(const rec::record& r) {
    const auto bytes = rec::encode(r);
    return rec::to_hex(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }

  // Signs `p` as the key and submits it (POST /v1/records). Returns the native answer's body.
  // With `replace`, a group's new settings (registry::definition_change::replace).
  api_result<json> submit(const access_key& k, const rec::payload& p, std::string_view not_found,
                          std::string_view exists, bool replace = false) const {
    if (auto perm = security::required_permission(p)) {
      if (auto a = require(k, perm->action, perm->resource); !a) return a.error();
    }
    api::api_request req;
    req.method = "POST";
    req.target = "/v1/records";
    json body{{"record", record_hex(sign_as(k, p))}};
    if (replace) body["replace"] = true;
    req.body = body.dump();
    const api::api_response r = ctx_.native(req);
    if (r.status >= 300) return from_native(r, not_found, exists);
    return json::parse(r.body, nullptr, false);
  }

  // `out` with `field` set to the page of `items` that the request's nextToken asks for, and a
  // nextToken when more follow (node/aws/paging.h).
  api_result<json> paged(std::string_view operation, const json& b, std::vector<page_item> items,
                         const char* field, json out = json::object()) const {
    auto p = paginate(operation, b, std::move(items), ctx_.page_size);
    if (!p) return p.error();
    out[field] = std::move(p.value().items);
    if (!p.value().next_token.empty()) out["nextToken"] = std::move(p.value().next_token);
    return out;
  }

  // ---- revisions ------------------------------------------------------------------------------

  fs::path location_file(const std::string& app, const std::string& id) const {
    return ctx_.work_dir / "revisions" /
           (rec::to_hex(std::span(reinterpret_cast<const std::uint8_t*>(app.data()), app.size())) +
            "-" + id + ".json");
  }

  void remember_location(const std::string& app, const std::string& id, const json& loc) const {
    std::error_code ec;
    fs::create_directories(ctx_.work_dir / "revisions", ec);
    std::ofstream(location_file(app, id)) << loc.dump();
  }

  // The RevisionLocation a revision was registered from on this node; a String location
  // naming the revision id otherwise (it came from the native CLI or another node).
  json location_of(const std::string& app, const std::string& id, const std::string& format) const {
    std::ifstream in(location_file(app, id));
    if (in) {
      std::ostringstream s;
      s << in.rdbuf();
      json j = json::parse(s.str(), nullptr, false);
      if (j.is_object()) return j;
    }
    return json{{"revisionType", "S3"},
                {"s3Location",
                 {{"bucket", mesh_revisions_bucket},
                  {"key", fmt::format("{}/{}.{}", app, id, format)},
                  {"bundleType", format == "tgz" ? "tgz" : format}}}};
  }

  // Reads a RevisionLocation and makes sure the mesh holds it as a revision of `app`, signing
  // and uploading it when it is new. Returns the revision id.
  api_result<std::string> ensure_revision(const access_key& k, const std::string& app,
                                          const json& b) const {
    auto rv = get_object(b, "revision");
    if (!rv) return rv.error();
    if (rv.value() == nullptr) return validation("revision is required");
    const json& loc = *rv.value();
    auto type = get_string(loc, "revisionType", true, 32);
    if (!type) return type.error();
    result<prepared_revision> prepared = make_error(deploy::errc::internal, "unset");
    const fs::path work = ctx_.work_dir / "tmp";
    std::error_code ec;
    fs::create_directories(work, ec);
    if (type.value() == "S3") {
      auto s3 = get_object(loc, "s3Location");
      if (!s3) return s3.error();
      if (s3.value() == nullptr) return validation("revision.s3Location is required");
      auto bucket = get_string(*s3.value(), "bucket", true, 63);
      if (!bucket) return bucket.error();
      auto key = get_string(*s3.value(), "key", true, max_key_bytes);
      if (!key) return key.error();
      auto bundle = get_string(*s3.value(), "bundleType", false, 16);
      if (!bundle) return bundle.error();
      if (!bundle.value().empty() && bundle.value() != "zip" && bundle.value() != "tar" &&
          bundle.value() != "tgz") {
        return api_error{400, "InvalidBundleTypeException",
                         fmt::format("bundleType '{}' is not zip, tar or tgz", bundle.value())};
      }
      if (auto v = get_string(*s3.value(), "version", false, 1024); v && !v.value().empty()) {
        return validation("revision.s3Location.version: object versions are not supported");
      }
      if (bucket.value() == mesh_revisions_bucket) {
        return registered_revision(app, key.value(), bundle.value());
      }
      if (ctx_.objects == nullptr) {
        return api_error{400, "InvalidRevisionException",
                         "this node serves no S3 API (--s3-api), so it holds no S3 objects"};
      }
      prepared = prepare_from_object(*ctx_.objects, bucket.value(), key.value(), app, work);
      if (!prepared && prepared.error().code == deploy::errc::not_found) {
        return api_error{
            400, "RevisionDoesNotExistException",
            fmt::format("s3://{}/{} is not an object of node {}: S3 objects stay on the node "
                        "whose --s3-api received them. Send this request to that node, or name a "
                        "revision the mesh already holds as s3://{}/{}/REVISION_ID.FORMAT "
                        "(list-application-revisions on any node shows them)",
                        bucket.value(), key.value(), ctx_.node_name, mesh_revisions_bucket, app)};
      }
      if (prepared && !bundle.value().empty() &&
          prepared.value().payload.format != bundle.value()) {
        const std::string got = prepared.value().payload.format;
        fs::remove_all(prepared.value().file.parent_path(), ec);
        return api_error{400, "InvalidBundleTypeException",
                         fmt::format("s3://{}/{} is a {} bundle, not {}", bucket.value(),
                                     key.value(), got, bundle.value())};
      }
    } else if (type.value() == "String" || type.value() == "AppSpecContent") {
      const char* field = type.value() == "String" ? "string" : "appSpecContent";
      auto content = get_object(loc, field);
      if (!content) return content.error();
      if (content.value() == nullptr)
        return validation(fmt::format("revision.{} is required", field));
      auto text = get_string(*content.value(), "content", true, 1 << 20);
      if (!text) return text.error();
      auto sha = get_string(*content.value(), "sha256", false, 64);
      if (!sha) return sha.error();
      if (!sha.value().empty() && sha.value() != sha256_hex(text.value())) {
        return api_error{
            400, "InvalidRevisionException",
            fmt::format("revision.{}.sha256 is not the SHA-256 of the content", field)};
      }
      prepared = prepare_from_appspec(text.value(), app, work);
    } else {
      return api_error{400, "InvalidRevisionException",
                       fmt::format("revisionType '{}' is not supported (S3, String or "
                                   "AppSpecContent; GitHub is not)",
                                   type.value())};
    }
    if (!prepared) {
      return from_error(prepared.error(), "RevisionDoesNotExistException",
                        "RevisionAlreadyExistsException");
    }
    rec::revision_payload rev = prepared.value().payload;
    const fs::path tmp_dir = prepared.value().file.parent_path();
    rev.origin = ctx_.node_name;
    if (auto known = ctx_.reg.get_revision(app, rev.id);
        known && ctx_.reg.has_bundle(known.value())) {
      fs::remove_all(tmp_dir, ec);
      return rev.id;
    }
    if (auto a = require(k, "define", "app/" + app); !a) {
      fs::remove_all(tmp_dir, ec);
      return a.error();
    }
    api::api_request up;
    up.method = "POST";
    up.target = fmt::format("/v1/revisions?app={}&record={}", uri_encode(app, false),
                            record_hex(sign_as(k, rev)));
    up.body_file = prepared.value().file;
    const api::api_response r = ctx_.native(up);
    fs::remove_all(tmp_dir, ec);
    if (r.status >= 300) {
      return from_native(r, "ApplicationDoesNotExistException", "RevisionAlreadyExistsException");
    }
    remember_location(app, rev.id, loc);
    return rev.id;
  }

  // A revision the mesh holds, named s3://meshdeploy-revisions/APP/REVISION_ID.FORMAT (as
  // location_of shows it): answered from the replicated revision record on any node, without
  // the bytes (hosts fetch the bundle from the swarm). Returns the revision id.
  api_result<std::string> registered_revision(const std::string& app, const std::string& key,
                                              const std::string& bundle) const {
    const std::string prefix = app + "/";
    const auto dot = key.rfind('.');
    const std::string id =
        key.starts_with(prefix) && dot != std::string::npos && dot > prefix.size()
            ? key.substr(prefix.size(), dot - prefix.size())
            : std::string();
    const bool hex_id = id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
                          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                        });
    if (!hex_id) {
      return api_error{400, "InvalidRevisionException",
                       fmt::format("s3://{}/{}: keys in this bucket are {}REVISION_ID.FORMAT "
                                   "(a 64-digit hex revision id of this application)",
                                   mesh_revisions_bucket, key, prefix)};
    }
    const std::string format = key.substr(dot + 1);
    auto info = ctx_.reg.get_revision(app, id);
    if (!info || info.value().format != format) {
      return api_error{400, "RevisionDoesNotExistException",
                       fmt::format("no {} revision {} of application '{}' is registered in the "
                                   "mesh",
                                   format, id, app)};
    }
    if (!bundle.empty() && bundle != format) {
      return api_error{400, "InvalidBundleTypeException",
                       fmt::format("revision {} is a {} bundle, not {}", id, format, bundle)};
    }
    return id;
  }

  // ---- shapes ---------------------------------------------------------------------------------

  static json tag_filter(const std::string& k, const std::string& v) {
    return {{"Key", k}, {"Value", v}, {"Type", "KEY_AND_VALUE"}};
  }

  json group_info(const deploy::deployment_group& g) const {
    json info{{"applicationName", g.application},
              {"deploymentGroupId", g.id},
              {"deploymentGroupName", g.name},
              {"deploymentConfigName", aws_config_name(g.config)},
              {"computePlatform", "Server"},
              {"deploymentStyle",
               {{"deploymentType", "IN_PLACE"}, {"deploymentOption", "WITHOUT_TRAFFIC_CONTROL"}}},
              {"autoRollbackConfiguration",
               {{"enabled", g.auto_rollback},
                {"events", g.auto_rollback ? json::array({"DEPLOYMENT_FAILURE"}) : json::array()}}},
              {"serviceRoleArn", ""}};
    const bool single = std::all_of(g.tag_sets.begin(), g.tag_sets.end(),
                                    [](const deploy::tag_set& s) { return s.size() == 1; });
    if (single) {
      json filters = json::array();
      for (const auto& s : g.tag_sets) filters.push_back(tag_filter(s[0].key, s[0].value));
      info["onPremisesInstanceTagFilters"] = filters;
    } else {
      // One AND-set is expressible as a tag set of one-filter groups; several OR'ed AND-sets
      // are listed in meshdeploy's own field (docs/aws-compatibility.md).
      json sets = json::array();
      for (const auto& s : g.tag_sets) {
        json set = json::array();
        for (const auto& t : s) set.push_back(tag_filter(t.key, t.value));
        sets.push_back(set);
      }
      info["meshdeployTagSets"] = sets;
      if (g.tag_sets.size() == 1) {
        json groups = json::array();
        for (const auto& t : g.tag_sets[0])
          groups.push_back(json::array({tag_filter(t.key, t.value)}));
        info["onPremisesTagSet"] = {{"onPremisesTagSetList", groups}};
      }
    }
    return info;
  }

  static json config_info(const deploy::deployment_config& c) {
    json j{{"deploymentConfigId", deploy::group_id("config", c.name)},
           {"deploymentConfigName", aws_config_name(c.name)},
           {"computePlatform", "Server"},
           {"createTime", 0}};
    if (c.type == deploy::min_healthy_type::one_at_a_time) {
      j["minimumHealthyHosts"] = {{"type", "HOST_COUNT"}, {"value", 0}};
    } else {
      j["minimumHealthyHosts"] = {
          {"type",
           c.type == deploy::min_healthy_type::fleet_percent ? "FLEET_PERCENT" : "HOST_COUNT"},
          {"value", c.value}};
    }
    return j;
  }

  static json lifecycle_events(const deploy::host_progress& h) {
    json events = json::array();
    for (const auto& e : h.events) {
      json ev{{"lifecycleEventName", e.name}, {"status", std::string(deploy::to_string(e.status))}};
      if (e.start_time) ev["startTime"] = epoch_seconds(e.start_time);
      if (e.end_time) ev["endTime"] = epoch_seconds(e.end_time);
      if (e.diag) {
        ev["diagnostics"] = {{"errorCode", e.diag->error_code},
                             {"scriptName", e.diag->script_name},
                             {"message", e.diag->message},
                             {"logTail", e.diag->log_tail}};
      }
      events.push_back(std::move(ev));
    }
    return events;
  }

  static std::int64_t last_updated(const deploy::host_progress& h) {
    std::int64_t t = 0;
    for (const auto& e : h.events) t = std::max({t, e.start_time, e.end_time});
    return t;
  }

  json deployment_info(const deploy::deployment_record& d) const {
    const auto o = deploy::compute_overview(d);
    json j{{"applicationName", d.application},
           {"deploymentGroupName", d.group},
           {"deploymentConfigName", aws_config_name(d.config)},
           {"deploymentId", d.id},
           {"revision", location_of(d.application, d.revision, d.bundle_format)},
           {"status", std::string(deploy::to_string(d.status))},
           {"createTime", epoch_seconds(d.create_time)},
           {"creator", d.deployment_creator},
           {"ignoreApplicationStopFailures", d.ignore_stop_failures},
           {"fileExistsBehavior",
            d.file_exists_behavior.empty() ? std::string("DISALLOW") : d.file_exists_behavior},
           {"computePlatform", "Server"},
           {"deploymentStyle",
            {{"deploymentType", "IN_PLACE"}, {"deploymentOption", "WITHOUT_TRAFFIC_CONTROL"}}},
           {"deploymentOverview",
            {{"Pending", o.pending},
             {"InProgress", o.in_progress},
             {"Succeeded", o.succeeded},
             {"Failed", o.failed},
             {"Skipped", o.skipped},
             {"Ready", 0}}}};
    if (d.complete_time) j["completeTime"] = epoch_seconds(d.complete_time);
    if (d.error) j["errorInformation"] = {{"code", d.error->code}, {"message", d.error->message}};
    if (!d.rollback_of.empty() || !d.rolled_back_by.empty()) {
      json ri = json::object();
      if (!d.rollback_of.empty()) ri["rollbackTriggeringDeploymentId"] = d.rollback_of;
      if (!d.rolled_back_by.empty()) ri["rollbackDeploymentId"] = d.rolled_back_by;
      j["rollbackInfo"] = ri;
    }
    if (auto g = ctx_.reg.get_group(d.application, d.group)) {
      j["autoRollbackConfiguration"] = {
          {"enabled", g.value().auto_rollback},
          {"events",
           g.value().auto_rollback ? json::array({"DEPLOYMENT_FAILURE"}) : json::array()}};
    }
    return j;
  }

  static json instance_summary(const deploy::deployment_record& d, const deploy::host_progress& h) {
    json j{{"deploymentId", d.id},
           {"instanceId", h.host},
           {"status", std::string(deploy::to_string(h.status))},
           {"lifecycleEvents", lifecycle_events(h)},
           {"instanceType", "Blue"}};
    if (auto t = last_updated(h)) j["lastUpdatedAt"] = epoch_seconds(t);
    return j;
  }

  static json instance_target(const deploy::deployment_record& d, const deploy::host_progress& h) {
    json t{{"deploymentId", d.id},
           {"targetId", h.host},
           {"targetArn", h.host},
           {"status", std::string(deploy::to_string(h.status))},
           {"lifecycleEvents", lifecycle_events(h)},
           {"instanceLabel", "Blue"}};
    if (auto u = last_updated(h)) t["lastUpdatedAt"] = epoch_seconds(u);
    return {{"deploymentTargetType", "InstanceTarget"}, {"instanceTarget", t}};
  }

  // ---- lookups with AWS's exceptions ----------------------------------------------------------

  api_result<deploy::application> app_of(const json& b, const access_key& k,
                                         const char* action = "read") const {
    auto name = get_string(b, "applicationName", true, 100);
    if (!name) return name.error();
    if (auto a = require(k, action, "app/" + name.value()); !a) return a.error();
    auto app = ctx_.reg.get_app(name.value());
    if (!app) {
      return api_error{400, "ApplicationDoesNotExistException",
                       fmt::format("No application found for name: {}", name.value())};
    }
    return app.value();
  }

  api_result<deploy::deployment_record> deployment_of(const std::string& id,
                                                      const access_key& k) const {
    auto d = ctx_.reg.get_deployment(id);
    if (!d) {
      return api_error{400, "DeploymentDoesNotExistException",
                       fmt::format("The deployment {} could not be found", id)};
    }
    if (auto a = require(k, "read", "app/" + d.value().application + "/" + d.value().group); !a) {
      return a.error();
    }
    return d.value();
  }

  api_result<deploy::deployment_record> deployment_arg(const json& b, const access_key& k) const {
    auto id = get_string(b, "deploymentId", true, 64);
    if (!id) return id.error();
    return deployment_of(id.value(), k);
  }

  // ---- applications ---------------------------------------------------------------------------

  api_result<json> create_application(const json& b, const access_key& k) const {
    auto name = get_string(b, "applicationName", true, 100);
    if (!name) return name.error();
    auto platform = get_string(b, "computePlatform", false, 32);
    if (!platform) return platform.error();
    if (!platform.value().empty() && platform.value() != "Server") {
      return api_error{
          400, "InvalidComputePlatformException",
          fmt::format("computePlatform '{}' is not supported: only Server", platform.value())};
    }
    auto r = submit(k, rec::application_payload{name.value(), false},
                    "ApplicationDoesNotExistException", "ApplicationAlreadyExistsException");
    if (!r) return r.error();
    return json{{"applicationId", deploy::group_id("application", name.value())}};
  }

  json application_info(const deploy::application& a) const {
    return {{"applicationId", deploy::group_id("application", a.name)},
            {"applicationName", a.name},
            {"createTime", epoch_seconds(a.create_time)},
            {"linkedToGitHub", false},
            {"computePlatform", "Server"}};
  }

  api_result<json> get_application(const json& b, const access_key& k) const {
    auto a = app_of(b, k);
    if (!a) return a.error();
    return json{{"application", application_info(a.value())}};
  }

  api_result<json> batch_get_applications(const json& b, const access_key& k) const {
    auto names = get_strings(b, "applicationNames", true, max_list_items);
    if (!names) return names.error();
    json out = json::array();
    for (const auto& n : names.value()) {
      auto a = app_of(json{{"applicationName", n}}, k);
      if (!a) return a.error();
      out.push_back(application_info(a.value()));
    }
    return json{{"applicationsInfo", out}};
  }

  api_result<json> list_applications(const json& b, const access_key& k) const {
    auto apps = ctx_.reg.list_apps();
    if (!apps) return from_error(apps.error(), "ApplicationDoesNotExistException", "");
    std::vector<page_item> names;
    for (const auto& a : apps.value()) {
      if (allows(k, "read", "app/" + a.name)) names.push_back({a.name, a.name});
    }
    return paged("ListApplications", b, std::move(names), "applications");
  }

  api_result<json> delete_application(const json& b, const access_key& k) const {
    auto name = get_string(b, "applicationName", true, 100);
    if (!name) return name.error();
    if (!ctx_.reg.get_app(name.value())) return json::object();  // AWS: deleting nothing succeeds
    auto r = submit(k, rec::application_payload{name.value(), true},
                    "ApplicationDoesNotExistException", "ApplicationAlreadyExistsException");
    if (!r) return r.error();
    return json::object();
  }

  // ---- deployment groups ----------------------------------------------------------------------

  // One tag filter {Key, Value, Type}: only KEY_AND_VALUE maps onto node tags.
  static api_result<std::pair<std::string, std::string>> read_filter(const json& f,
                                                                     const std::string& where) {
    if (!f.is_object()) return validation(where + " must be an object");
    auto key = get_string(f, "Key", true, 128);
    if (!key) return validation(where + ".Key is required");
    auto value = get_string(f, "Value", false, 256);
    if (!value) return validation(where + ".Value must be a string");
    auto type = get_string(f, "Type", false, 32);
    if (!type) return validation(where + ".Type must be a string");
    if (!type.value().empty() && type.value() != "KEY_AND_VALUE") {
      return api_error{400, "InvalidTagException",
                       fmt::format("{}.Type {} is not supported: node tags are matched by key and "
                                   "value (KEY_AND_VALUE)",
                                   where, type.value())};
    }
    return std::make_pair(key.value(), value.value());
  }

  // The group's selector from ec2TagFilters / onPremisesInstanceTagFilters (OR of single tags)
  // and ec2TagSet / onPremisesTagSet (AND of OR-groups, expanded into OR of AND-sets).
  // nullopt when the request names none of them.
  static api_result<std::optional<rec::tag_selector>> read_selector(const json& b) {
    rec::tag_selector sel;
    bool any = false;
    for (const char* field : {"ec2TagFilters", "onPremisesInstanceTagFilters"}) {
      auto arr = get_array(b, field, max_list_items);
      if (!arr) return arr.error();
      if (arr.value() == nullptr) continue;
      any = true;
      std::size_t i = 0;
      for (const auto& f : *arr.value()) {
        auto t = read_filter(f, fmt::format("{}[{}]", field, i++));
        if (!t) return t.error();
        sel.push_back({{t.value().first, t.value().second}});
      }
    }
    for (const auto& [field, list] : {std::pair{"ec2TagSet", "ec2TagSetList"},
                                      std::pair{"onPremisesTagSet", "onPremisesTagSetList"}}) {
      auto obj = get_object(b, field);
      if (!obj) return obj.error();
      if (obj.value() == nullptr) continue;
      auto groups = get_array(*obj.value(), list, 3);
      if (!groups) return groups.error();
      if (groups.value() == nullptr) continue;
      any = true;
      rec::tag_selector product = {{}};
      std::size_t gi = 0;
      for (const auto& group : *groups.value()) {
        const std::string where = fmt::format("{}.{}[{}]", field, list, gi++);
        if (!group.is_array() || group.empty() || group.size() > max_list_items) {
          return validation(where + " must be a non-empty list of tag filters");
        }
        rec::tag_selector next;
        std::size_t fi = 0;
        for (const auto& f : group) {
          auto t = read_filter(f, fmt::format("{}[{}]", where, fi++));
          if (!t) return t.error();
          for (const auto& set : product) {
            auto it = set.find(t.value().first);
            if (it != set.end() && it->second != t.value().second) continue;  // never matches
            auto s = set;
            s[t.value().first] = t.value().second;
            next.push_back(std::move(s));
          }
          if (next.size() > 256) {
            return validation(where + ": the tag set expands to more than 256 tag combinations");
          }
        }
        product = std::move(next);
      }
      for (auto& s : product) {
        if (!s.empty()) sel.push_back(std::move(s));
      }
    }
    if (!any) return std::optional<rec::tag_selector>();
    std::sort(sel.begin(), sel.end());
    sel.erase(std::unique(sel.begin(), sel.end()), sel.end());
    return std::optional<rec::tag_selector>(std::move(sel));
  }

  static api_result<std::optional<bool>> read_auto_rollback(const json& b) {
    auto arc = get_object(b, "autoRollbackConfiguration");
    if (!arc) return arc.error();
    if (arc.value() == nullptr) return std::optional<bool>();
    auto enabled = get_bool(*arc.value(), "enabled");
    if (!enabled) return enabled.error();
    auto events = get_strings(*arc.value(), "events", false, 3);
    if (!events) return events.error();
    for (const auto& e : events.value()) {
      if (e != "DEPLOYMENT_FAILURE") {
        return api_error{400, "InvalidAutoRollbackConfigException",
                         fmt::format("autoRollbackConfiguration event {} is not supported (only "
                                     "DEPLOYMENT_FAILURE)",
                                     e)};
      }
    }
    return std::optional<bool>(enabled.value().value_or(false));
  }

  api_result<std::string> read_config_name(const json& b) const {
    auto c = get_string(b, "deploymentConfigName", false, 100);
    if (!c) return c.error();
    if (c.value().empty()) return std::string();
    auto cfg = ctx_.reg.get_config(c.value());
    if (!cfg) {
      return api_error{400, "DeploymentConfigDoesNotExistException",
                       fmt::format("No deployment configuration found for name: {}", c.value())};
    }
    return cfg.value().name;
  }

  api_result<json> create_deployment_group(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", true, 100);
    if (!app) return app.error();
    auto name = get_string(b, "deploymentGroupName", true, 100);
    if (!name) return name.error();
    if (!ctx_.reg.get_app(app.value())) {
      return api_error{400, "ApplicationDoesNotExistException",
                       fmt::format("No application found for name: {}", app.value())};
    }
    auto config = read_config_name(b);
    if (!config) return config.error();
    auto sel = read_selector(b);
    if (!sel) return sel.error();
    if (!sel.value() || sel.value()->empty()) {
      return api_error{400, "InvalidTagException",
                       "a deployment group needs ec2TagFilters, onPremisesInstanceTagFilters, "
                       "ec2TagSet or onPremisesTagSet naming node tags"};
    }
    auto rollback = read_auto_rollback(b);
    if (!rollback) return rollback.error();
    for (const char* unsupported :
         {"autoScalingGroups", "loadBalancerInfo", "blueGreenDeploymentConfiguration",
          "ecsServices", "triggerConfigurations", "alarmConfiguration"}) {
      if (auto it = b.find(unsupported);
          it != b.end() && !it->is_null() && !(it->is_array() && it->empty())) {
        return validation(fmt::format("{} is not supported by meshdeploy", unsupported));
      }
    }
    if (auto style = get_object(b, "deploymentStyle"); !style) {
      return style.error();
    } else if (style.value()) {
      auto type = get_string(*style.value(), "deploymentType", false, 32);
      if (!type) return type.error();
      if (!type.value().empty() && type.value() != "IN_PLACE") {
        return api_error{400, "InvalidDeploymentStyleException", "only IN_PLACE deployments"};
      }
    }
    rec::group_payload g;
    g.app = app.value();
    g.name = name.value();
    g.selector = std::move(*sel.value());
    g.config = config.value().empty() ? std::string("OneAtATime") : config.value();
    g.auto_rollback = rollback.value().value_or(false);
    auto r = submit(k, g, "DeploymentGroupDoesNotExistException",
                    "DeploymentGroupAlreadyExistsException");
    if (!r) return r.error();
    return json{{"deploymentGroupId", deploy::group_id(g.app, g.name)}};
  }

  api_result<deploy::deployment_group> group_of(const std::string& app, const std::string& name,
                                                const access_key& k) const {
    if (auto a = require(k, "read", "app/" + app + "/" + name); !a) return a.error();
    if (!ctx_.reg.get_app(app)) {
      return api_error{400, "ApplicationDoesNotExistException",
                       fmt::format("No application found for name: {}", app)};
    }
    auto g = ctx_.reg.get_group(app, name);
    if (!g) {
      return api_error{400, "DeploymentGroupDoesNotExistException",
                       fmt::format("No Deployment Group found for name: {}", name)};
    }
    return g.value();
  }

  api_result<json> get_deployment_group(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", true, 100);
    if (!app) return app.error();
    auto name = get_string(b, "deploymentGroupName", true, 100);
    if (!name) return name.error();
    auto g = group_of(app.value(), name.value(), k);
    if (!g) return g.error();
    return json{{"deploymentGroupInfo", group_info(g.value())}};
  }

  api_result<json> list_deployment_groups(const json& b, const access_key& k) const {
    auto app = app_of(b, k);
    if (!app) return app.error();
    auto groups = ctx_.reg.list_groups(app.value().name);
    if (!groups) return from_error(groups.error(), "ApplicationDoesNotExistException", "");
    std::vector<page_item> names;
    for (const auto& g : groups.value()) names.push_back({g.name, g.name});
    return paged("ListDeploymentGroups", b, std::move(names), "deploymentGroups",
                 json{{"applicationName", app.value().name}});
  }

  api_result<json> update_deployment_group(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", true, 100);
    if (!app) return app.error();
    auto name = get_string(b, "currentDeploymentGroupName", true, 100);
    if (!name) return name.error();
    auto g = group_of(app.value(), name.value(), k);
    if (!g) return g.error();
    auto new_name = get_string(b, "newDeploymentGroupName", false, 100);
    if (!new_name) return new_name.error();
    if (!new_name.value().empty() && new_name.value() != name.value()) {
      return validation("newDeploymentGroupName: renaming a deployment group is not supported");
    }
    auto config = read_config_name(b);
    if (!config) return config.error();
    auto sel = read_selector(b);
    if (!sel) return sel.error();
    auto rollback = read_auto_rollback(b);
    if (!rollback) return rollback.error();
    rec::group_payload p = group_payload_of(g.value());
    if (sel.value()) {
      if (sel.value()->empty()) {
        return api_error{400, "InvalidTagException", "the tag filters select no tags"};
      }
      p.selector = std::move(*sel.value());
    }
    p.config = config.value().empty() ? g.value().config : config.value();
    p.auto_rollback = rollback.value().value_or(g.value().auto_rollback);
    // One record: the next version of the group's key with the new settings, which replaces
    // the old definition on every node (docs/aws-compatibility.md, "Concurrent updates").
    auto r = submit(k, p, "DeploymentGroupDoesNotExistException",
                    "DeploymentGroupAlreadyExistsException", /*replace=*/true);
    if (!r) return r.error();
    return json{{"hooksNotCleanedUp", json::array()}};
  }

  api_result<json> delete_deployment_group(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", true, 100);
    if (!app) return app.error();
    auto name = get_string(b, "deploymentGroupName", true, 100);
    if (!name) return name.error();
    auto g = group_of(app.value(), name.value(), k);
    if (!g) return g.error();
    auto r = submit(k, group_tombstone(g.value()), "DeploymentGroupDoesNotExistException",
                    "DeploymentGroupAlreadyExistsException");
    if (!r) return r.error();
    return json{{"hooksNotCleanedUp", json::array()}};
  }

  // ---- deployment configs ---------------------------------------------------------------------

  api_result<json> create_deployment_config(const json& b, const access_key& k) const {
    auto name = get_string(b, "deploymentConfigName", true, 100);
    if (!name) return name.error();
    if (auto v = deploy::validate_custom_config_name(name.value()); !v) {
      return api_error{400, "InvalidDeploymentConfigNameException", v.error().message};
    }
    auto mh = get_object(b, "minimumHealthyHosts");
    if (!mh) return mh.error();
    if (mh.value() == nullptr) {
      return api_error{400, "InvalidMinimumHealthyHostValueException",
                       "minimumHealthyHosts is required"};
    }
    auto type = get_string(*mh.value(), "type", true, 32);
    if (!type) return type.error();
    auto value = get_int(*mh.value(), "value", 0, 1'000'000);
    if (!value) return value.error();
    if (!value.value()) return validation("minimumHealthyHosts.value is required");
    rec::config_payload p;
    p.name = name.value();
    p.value = static_cast<std::uint32_t>(*value.value());
    if (type.value() == "HOST_COUNT") {
      p.min_healthy_type = 0;
    } else if (type.value() == "FLEET_PERCENT") {
      if (p.value > 100) {
        return api_error{400, "InvalidMinimumHealthyHostValueException",
                         "a FLEET_PERCENT value must be 0-100"};
      }
      p.min_healthy_type = 1;
    } else {
      return api_error{400, "InvalidMinimumHealthyHostValueException",
                       fmt::format("minimumHealthyHosts.type '{}' is not HOST_COUNT or "
                                   "FLEET_PERCENT",
                                   type.value())};
    }
    if (b.contains("trafficRoutingConfig") || b.contains("zonalConfig")) {
      return validation("trafficRoutingConfig and zonalConfig are not supported");
    }
    auto r = submit(k, p, "DeploymentConfigDoesNotExistException",
                    "DeploymentConfigAlreadyExistsException");
    if (!r) return r.error();
    return json{{"deploymentConfigId", deploy::group_id("config", p.name)}};
  }

  api_result<json> get_deployment_config(const json& b, const access_key& k) const {
    auto name = get_string(b, "deploymentConfigName", true, 100);
    if (!name) return name.error();
    auto c = ctx_.reg.get_config(name.value());
    if (!c) {
      return api_error{400, "DeploymentConfigDoesNotExistException",
                       fmt::format("No deployment configuration found for name: {}", name.value())};
    }
    if (!c.value().builtin) {
      if (auto a = require(k, "read", "config/" + c.value().name); !a) return a.error();
    }
    return json{{"deploymentConfigInfo", config_info(c.value())}};
  }

  api_result<json> list_deployment_configs(const json& b, const access_key& k) const {
    auto all = ctx_.reg.list_configs();
    if (!all) return from_error(all.error(), "DeploymentConfigDoesNotExistException", "");
    std::vector<page_item> names;
    for (const auto& c : all.value()) {
      if (c.builtin || allows(k, "read", "config/" + c.name)) {
        names.push_back({aws_config_name(c.name), aws_config_name(c.name)});
      }
    }
    return paged("ListDeploymentConfigs", b, std::move(names), "deploymentConfigsList");
  }

  api_result<json> delete_deployment_config(const json& b, const access_key& k) const {
    auto name = get_string(b, "deploymentConfigName", true, 100);
    if (!name) return name.error();
    auto c = ctx_.reg.get_config(name.value());
    if (!c) return json::object();
    if (c.value().builtin) {
      return api_error{400, "InvalidOperationException",
                       "built-in deployment configurations cannot be deleted"};
    }
    rec::config_payload p;
    p.name = c.value().name;
    p.min_healthy_type = c.value().type == deploy::min_healthy_type::fleet_percent ? 1 : 0;
    p.value = c.value().value;
    p.deleted = true;
    auto r = submit(k, p, "DeploymentConfigDoesNotExistException",
                    "DeploymentConfigAlreadyExistsException");
    if (!r) return r.error();
    return json::object();
  }

  // ---- revisions ------------------------------------------------------------------------------

  api_result<json> register_application_revision(const json& b, const access_key& k) const {
    auto app = app_of(b, k, "define");
    if (!app) return app.error();
    auto id = ensure_revision(k, app.value().name, b);
    if (!id) return id.error();
    return json::object();
  }

  api_result<json> list_application_revisions(const json& b, const access_key& k) const {
    auto app = app_of(b, k);
    if (!app) return app.error();
    auto revs = ctx_.reg.list_revisions(app.value().name);
    if (!revs) return from_error(revs.error(), "ApplicationDoesNotExistException", "");
    std::vector<page_item> out;
    for (const auto& r : revs.value()) {
      out.push_back(
          {newest_first_key(r.register_time, r.id), location_of(r.application, r.id, r.format)});
    }
    return paged("ListApplicationRevisions", b, std::move(out), "revisions");
  }

  api_result<json> get_application_revision(const json& b, const access_key& k) const {
    auto app = app_of(b, k);
    if (!app) return app.error();
    // The revision is identified by its content: hash the location's bytes (without
    // registering), then look the id up.
    auto rv = get_object(b, "revision");
    if (!rv) return rv.error();
    if (rv.value() == nullptr) return validation("revision is required");
    std::string id;
    auto revs = ctx_.reg.list_revisions(app.value().name);
    if (!revs) return from_error(revs.error(), "ApplicationDoesNotExistException", "");
    for (const auto& r : revs.value()) {
      if (location_of(r.application, r.id, r.format) == *rv.value()) id = r.id;
    }
    if (id.empty()) {  // s3://meshdeploy-revisions/APP/ID.FORMAT names it on any node
      auto s3 = get_object(*rv.value(), "s3Location");
      if (!s3) return s3.error();
      auto bucket = s3.value() ? get_string(*s3.value(), "bucket", false, 63)
                               : api_result<std::string>(std::string());
      if (!bucket) return bucket.error();
      if (bucket.value() == mesh_revisions_bucket) {
        auto key = get_string(*s3.value(), "key", true, max_key_bytes);
        if (!key) return key.error();
        auto bundle = get_string(*s3.value(), "bundleType", false, 16);
        if (!bundle) return bundle.error();
        auto known = registered_revision(app.value().name, key.value(), bundle.value());
        if (!known) return known.error();
        id = known.value();
      }
    }
    if (id.empty()) {
      return api_error{400, "RevisionDoesNotExistException",
                       "no revision of this application was registered from that location"};
    }
    auto info = ctx_.reg.get_revision(app.value().name, id);
    if (!info) return from_error(info.error(), "RevisionDoesNotExistException", "");
    json groups = json::array();
    if (auto ds = ctx_.reg.list_deployments(app.value().name, "")) {
      std::set<std::string> names;
      for (const auto& d : ds.value()) {
        if (d.revision == id) names.insert(d.group);
      }
      for (const auto& n : names) groups.push_back(n);
    }
    return json{{"applicationName", app.value().name},
                {"revision", *rv.value()},
                {"revisionInfo",
                 {{"description", fmt::format("meshdeploy revision {}", id)},
                  {"deploymentGroups", groups},
                  {"registerTime", epoch_seconds(info.value().register_time)},
                  {"firstUsedTime", epoch_seconds(info.value().register_time)},
                  {"lastUsedTime", epoch_seconds(info.value().register_time)}}}};
  }

  // ---- deployments ----------------------------------------------------------------------------

  // What CreateDeployment asks for, checked, before its revision is resolved.
  struct deployment_request {
    std::string app;
    std::string group;
    std::string config;  // "" = the group's
    bool ignore_stop_failures = false;
    std::string file_exists_behavior;
  };

  api_result<json> create_deployment(const json& b, const access_key& k) const {
    auto args = deployment_request_of(b, k);
    if (!args) return args.error();
    auto rev = ensure_revision(k, args.value().app, b);
    if (!rev) return rev.error();
    return start_deployment(args.value(), rev.value(), k);
  }

  api_result<deployment_request> deployment_request_of(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", true, 100);
    if (!app) return app.error();
    auto group = get_string(b, "deploymentGroupName", true, 100);
    if (!group) return group.error();
    auto g = group_of(app.value(), group.value(), k);
    if (!g) return g.error();
    if (auto a = require(k, "deploy", "app/" + app.value() + "/" + group.value()); !a) {
      return a.error();
    }
    auto config = read_config_name(b);
    if (!config) return config.error();
    auto ignore = get_bool(b, "ignoreApplicationStopFailures");
    if (!ignore) return ignore.error();
    auto fe = get_string(b, "fileExistsBehavior", false, 16);
    if (!fe) return fe.error();
    if (!fe.value().empty() && fe.value() != "DISALLOW" && fe.value() != "OVERWRITE" &&
        fe.value() != "RETAIN") {
      return api_error{
          400, "InvalidFileExistsBehaviorException",
          fmt::format("fileExistsBehavior '{}' is not DISALLOW, OVERWRITE or RETAIN", fe.value())};
    }
    if (auto desc = get_string(b, "description", false, 1024); !desc) return desc.error();
    if (auto t = get_object(b, "targetInstances"); !t || t.value()) {
      if (!t) return t.error();
      return validation("targetInstances is not supported: the group's tags choose the hosts");
    }
    if (auto arc = get_object(b, "autoRollbackConfiguration"); !arc || arc.value()) {
      if (!arc) return arc.error();
      return validation(
          "autoRollbackConfiguration per deployment is not supported: set it on the deployment "
          "group");
    }
    return deployment_request{app.value(), group.value(), config.value(),
                              ignore.value().value_or(false), fe.value()};
  }

  // Plans and submits the intent of a checked request for revision `rev` (on the io thread).
  api_result<json> start_deployment(const deployment_request& args, const std::string& rev,
                                    const access_key& k) const {
    const std::string id = deploy::new_deployment_id();
    api::api_request plan_req;
    plan_req.method = "GET";
    plan_req.target =
        fmt::format("/v1/groups/{}/{}/plan?deployment={}&config={}", uri_encode(args.app, false),
                    uri_encode(args.group, false), id, uri_encode(args.config, false));
    const api::api_response plan = ctx_.native(plan_req);
    if (plan.status != 200) {
      return from_native(plan, "DeploymentGroupDoesNotExistException", "");
    }
    const json pj = json::parse(plan.body, nullptr, false);
    rec::intent_payload in;
    in.deployment_id = id;
    in.app = args.app;
    in.group = args.group;
    in.revision = rev;
    in.config = pj.value("deploymentConfig", "");
    in.targets = pj.value("targets", std::vector<std::string>{});
    in.electorate = pj.value("electorate", std::vector<std::string>{});
    in.max_out_of_service = pj.value("maxOutOfService", 0u);
    in.ignore_stop_failures = args.ignore_stop_failures;
    in.file_exists_behavior = args.file_exists_behavior;
    in.creator = k.operator_name;
    auto r =
        submit(k, in, "DeploymentGroupDoesNotExistException", "DeploymentAlreadyStartedException");
    if (!r) return r.error();
    return json{{"deploymentId", id}};
  }

  api_result<json> get_deployment(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    return json{{"deploymentInfo", deployment_info(d.value())}};
  }

  api_result<json> batch_get_deployments(const json& b, const access_key& k) const {
    auto ids = get_strings(b, "deploymentIds", true, 25);
    if (!ids) return ids.error();
    json out = json::array();
    for (const auto& id : ids.value()) {
      // AWS leaves unknown ids out of the answer.
      auto d = ctx_.reg.get_deployment(id);
      if (!d) continue;
      auto checked = deployment_of(id, k);
      if (!checked) return checked.error();
      out.push_back(deployment_info(d.value()));
    }
    return json{{"deploymentsInfo", out}};
  }

  api_result<json> list_deployments(const json& b, const access_key& k) const {
    auto app = get_string(b, "applicationName", false, 100);
    if (!app) return app.error();
    auto group = get_string(b, "deploymentGroupName", false, 100);
    if (!group) return group.error();
    if (!group.value().empty() && app.value().empty()) {
      return api_error{400, "ApplicationNameRequiredException",
                       "deploymentGroupName needs applicationName"};
    }
    if (!group.value().empty()) {
      if (auto g = group_of(app.value(), group.value(), k); !g) return g.error();
    } else if (!app.value().empty()) {
      if (auto a = app_of(b, k); !a) return a.error();
    }
    auto statuses = get_strings(b, "includeOnlyStatuses", false, 10);
    if (!statuses) return statuses.error();
    for (const auto& s : statuses.value()) {
      if (!deploy::parse_deployment_status(s)) {
        return api_error{400, "InvalidDeploymentStatusException",
                         fmt::format("'{}' is not a deployment status", s)};
      }
    }
    std::int64_t start = 0, end = 0;
    if (auto range = get_object(b, "createTimeRange"); !range) {
      return range.error();
    } else if (range.value()) {
      for (auto [field, out] : {std::pair{"start", &start}, std::pair{"end", &end}}) {
        auto it = range.value()->find(field);
        if (it == range.value()->end() || it->is_null()) continue;
        if (!it->is_number())
          return validation(fmt::format("createTimeRange.{} must be a number", field));
        *out = static_cast<std::int64_t>(it->get<double>() * 1000);
      }
    }
    auto list = ctx_.reg.list_deployments(app.value(), group.value());
    if (!list) return from_error(list.error(), "DeploymentDoesNotExistException", "");
    std::vector<page_item> ids;
    for (const auto& d : list.value()) {
      if (!allows(k, "read", "app/" + d.application + "/" + d.group)) continue;
      const std::string st(deploy::to_string(d.status));
      if (!statuses.value().empty() && std::find(statuses.value().begin(), statuses.value().end(),
                                                 st) == statuses.value().end()) {
        continue;
      }
      if ((start && d.create_time < start) || (end && d.create_time > end)) continue;
      ids.push_back({newest_first_key(d.create_time, d.id), d.id});
    }
    return paged("ListDeployments", b, std::move(ids), "deployments");
  }

  api_result<json> stop_deployment(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto rollback = get_bool(b, "autoRollbackEnabled");
    if (!rollback) return rollback.error();
    if (rollback.value().value_or(false)) {
      return validation(
          "autoRollbackEnabled: a stopped deployment is not rolled back by meshdeploy");
    }
    if (deploy::is_terminal(d.value().status)) {
      return api_error{400, "DeploymentAlreadyCompletedException",
                       fmt::format("Deployment {} has already completed", d.value().id)};
    }
    rec::stop_payload p{d.value().id, d.value().application, d.value().group,
                        fmt::format("stopped through the AWS API by {}", k.operator_name)};
    auto r = submit(k, p, "DeploymentDoesNotExistException", "DeploymentAlreadyCompletedException");
    if (!r) return r.error();
    return json{{"status", "Pending"}, {"statusMessage", "Stop requested"}};
  }

  api_result<json> list_deployment_instances(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto filter = get_strings(b, "instanceStatusFilter", false, 10);
    if (!filter) return filter.error();
    // Keyed by the position in the target list, which a deployment never changes.
    std::vector<page_item> out;
    for (std::size_t i = 0; i < d.value().hosts.size(); ++i) {
      const auto& h = d.value().hosts[i];
      const std::string st(deploy::to_string(h.status));
      if (!filter.value().empty() &&
          std::find(filter.value().begin(), filter.value().end(), st) == filter.value().end()) {
        continue;
      }
      out.push_back({fmt::format("{:08}", i), h.host});
    }
    return paged("ListDeploymentInstances", b, std::move(out), "instancesList");
  }

  api_result<const deploy::host_progress*> host_of(const deploy::deployment_record& d,
                                                   const std::string& host) const {
    for (const auto& h : d.hosts) {
      if (h.host == host) return &h;
    }
    return api_error{400, "InstanceDoesNotExistException",
                     fmt::format("instance {} is not a target of deployment {}", host, d.id)};
  }

  api_result<json> get_deployment_instance(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto host = get_string(b, "instanceId", true, 255);
    if (!host) return host.error();
    auto h = host_of(d.value(), host.value());
    if (!h) return h.error();
    return json{{"instanceSummary", instance_summary(d.value(), *h.value())}};
  }

  api_result<json> batch_get_deployment_instances(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto hosts = get_strings(b, "instanceIds", true, 100);
    if (!hosts) return hosts.error();
    json out = json::array();
    std::string missing;
    for (const auto& name : hosts.value()) {
      auto h = host_of(d.value(), name);
      if (!h) {
        missing += (missing.empty() ? "" : ", ") + name;
        continue;
      }
      out.push_back(instance_summary(d.value(), *h.value()));
    }
    json j{{"instancesSummary", out}};
    if (!missing.empty()) j["errorMessage"] = "instances not in the deployment: " + missing;
    return j;
  }

  api_result<json> list_deployment_targets(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    std::vector<page_item> out;
    for (std::size_t i = 0; i < d.value().hosts.size(); ++i) {
      out.push_back({fmt::format("{:08}", i), d.value().hosts[i].host});
    }
    return paged("ListDeploymentTargets", b, std::move(out), "targetIds");
  }

  api_result<json> batch_get_deployment_targets(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto ids = get_strings(b, "targetIds", true, 25);
    if (!ids) return ids.error();
    json out = json::array();
    for (const auto& id : ids.value()) {
      auto h = host_of(d.value(), id);
      if (!h) {
        return api_error{400, "DeploymentTargetDoesNotExistException", h.error().message};
      }
      out.push_back(instance_target(d.value(), *h.value()));
    }
    return json{{"deploymentTargets", out}};
  }

  api_result<json> get_deployment_target(const json& b, const access_key& k) const {
    auto d = deployment_arg(b, k);
    if (!d) return d.error();
    auto id = get_string(b, "targetId", true, 255);
    if (!id) return id.error();
    auto h = host_of(d.value(), id.value());
    if (!h) return api_error{400, "DeploymentTargetDoesNotExistException", h.error().message};
    return json{{"deploymentTarget", instance_target(d.value(), *h.value())}};
  }

  codedeploy_context ctx_;
};

}  // namespace

std::string codedeploy_route(const api::api_request& req) {
  const std::string target = find_header(req, "x-amz-target");
  if (target.empty()) return {};
  const std::string_view op = std::string_view(target).starts_with(codedeploy_target_prefix)
                                  ? std::string_view(target).substr(codedeploy_target_prefix.size())
                                  : std::string_view();
  const auto& ops = codedeploy_api::operations();
  return ops.contains(op) ? "CodeDeploy:" + std::string(op) : "CodeDeploy:other";
}

api::router::route_handler make_codedeploy_routes(codedeploy_context ctx, bool answer_all) {
  auto api = std::make_shared<codedeploy_api>(std::move(ctx));
  return [api, answer_all](const api::api_request& req) { return api->handle(req, answer_all); };
}

}  // namespace meshdeploy::aws
