// The API routes that take signed records (docs/api.md "Signed requests"):
//
//   POST /v1/records                      {"record": HEX}  any operator or admin record;
//                                         {"record": HEX, "replace": true}: a group's new
//                                         settings (registry::definition_change::replace)
//   POST /v1/revisions?app=A&record=HEX   body = the bundle; HEX = its signed revision record
//   GET  /v1/records/TYPE[?prefix=P]      the verified records of a type, payloads decoded
//   GET  /v1/records/TYPE/KEY...          one record (404 when absent)
//   GET  /v1/groups/APP/GROUP/plan?deployment=ID[&config=C]
//                                         the target list and K an intent should carry
//
// Every mutating call is a record signed by an operator (or, for grants, the admin): the node
// checks it (signature, the writer's newest grant, freshness, schema) and CodeDeploy's create
// rules (registry::check_definition) before storing and spreading it. A new intent or stop is
// answered with the deployment's status document as the mesh deployer computes it.
#pragma once

#include "node/api/router.h"
#include "node/deploy/registry.h"
#include "node/deploy/rollout/planning.h"
#include "node/records/payloads.h"
#include "node/records/store.h"

#include <functional>
#include <string>
#include <vector>

namespace meshdeploy::api {

// A member this node knows: alive or suspect (`live`), or dead and not yet forgotten.
struct live_host {
  std::string name;
  std::vector<deploy::tag> tags;
  bool live = true;
};

struct record_routes_context {
  deploy::registry& reg;
  const records::store& store;
  // The current status document of a deployment after its intent or stop was published
  // (deploy::mesh_deployer::refresh_now). Called on the io thread.
  std::function<result<deploy::deployment_record>(const std::string& id)> refreshed;
  // Verifies a record an operator submits through this node (records::check_submission)
  // and returns its payload. Thread-safe.
  std::function<result<records::payload>(const records::record&)> check;
  // Stores and spreads a checked record: true when it was new (or replaced an older version),
  // false when it was already held. Thread-safe.
  std::function<result<bool>(const records::record&)> publish;
  // The members this node knows (itself included, members that left excluded), for plans: live
  // ones become targets, dead ones join the electorate. Thread-safe.
  std::function<std::vector<live_host>()> live_hosts;
  // The targets in rollout order and the electorate of a new intent of APP/GROUP over the live
  // `hosts` (deploy::mesh_deployer::plan). Called on the io thread.
  std::function<deploy::rollout::target_plan(const std::string& app, const std::string& group,
                                             std::vector<std::string> hosts,
                                             const std::string& deployment_id)>
      plan;
};

// The handler to pass to router::add_route_handler. The context's references must outlive it.
router::route_handler make_record_routes(record_routes_context ctx);

// A record as JSON: {type, key, version, writer, time, via, payload:{...}} (docs/api.md).
nlohmann::json record_json(const records::record& r, const records::payload& p);

}  // namespace meshdeploy::api
