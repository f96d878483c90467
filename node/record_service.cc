#include "node/record_service.h"

#include "node/deploy/status.h"
#include "node/security/verifier.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace meshdeploy::node {

namespace {

records::replicator_config with_batching(records::replicator_config c, bool batch) {
  c.batch_forwarding = batch;
  return c;
}

bool operator_written(records::record_type t) {
  using records::record_type;
  switch (t) {
    case record_type::approval:
    case record_type::progress:
    case record_type::host:
      return false;
    default:
      return true;
  }
}

}  // namespace

record_service::record_service(records::store& st, security::audit_log& audit,
                               const security::identity& self, record_service_options options,
                               peers_fn peers, send_fn send)
    : store_(st),
      audit_(audit),
      self_(self),
      options_(std::move(options)),
      replicator_(st,
                  records::replicator_env{std::move(peers), std::move(send),
                                          [this](const records::record& r) -> result<void> {
                                            auto p = security::verify(r, store_, options_.admin);
                                            if (!p) return p.error();
                                            return ok();
                                          }},
                  with_batching(options_.replication, options_.defer != nullptr),
                  std::random_device{}()) {
  replicator_.set_on_stored([this](const records::record& r) { stored(r); });
}

void record_service::stored(const records::record& r) {
  if (operator_written(r.type)) {
    std::string writer = "admin";
    if (r.type != records::record_type::grant) {
      writer.clear();
      const auto history = store_.grant_history(r.writer);
      if (!history.empty()) {
        auto g = records::decode_payload(history.back().type, history.back().payload);
        if (g && std::holds_alternative<records::grant_payload>(g.value())) {
          writer = std::get<records::grant_payload>(g.value()).operator_name;
        }
      }
    }
    if (auto a = audit_.append(r, options_.node_name, deploy::now_ms(), writer); !a) {
      spdlog::error("audit: cannot append {} {}: {}", records::to_string(r.type), r.key,
                    a.error().message);
    }
  }
  if (on_stored_) on_stored_(r);
}

result<records::payload> record_service::check(const records::record& r) const {
  MESH_CHECK(security::check_submission(r, store_, options_.admin, deploy::now_ms()));
  return records::decode_payload(r.type, r.payload);
}

result<bool> record_service::publish(const records::record& r) {
  std::lock_guard lock(mu_);
  return replicator_.publish(r, records::clock::now());
}

result<bool> record_service::publish_own(const records::payload& p, bool durable,
                                         std::uint64_t version) {
  records::record r;
  r.type = records::type_of(p);
  r.key = records::expected_key(p);
  r.payload = records::encode_payload(p);
  r.time_ms = deploy::now_ms();
  // Read the version, sign and store under one lock: two threads publishing the same key would
  // otherwise both sign version n + 1, and the replicas would keep whichever arrived first.
  std::lock_guard lock(mu_);
  if (version != 0 && records::is_versioned(r.type)) {
    r.version = version;
  } else if (records::is_versioned(r.type)) {
    auto current = store_.get(r.type, r.key);
    if (!current) return current.error();
    if (current.value()) r.version = current.value()->version + 1;
  }
  security::sign(r, self_);
  return replicator_.publish(r, records::clock::now(), durable);
}

void record_service::on_message(const std::string& from, std::span<const std::byte> bytes) {
  std::lock_guard lock(mu_);
  replicator_.on_message(from, bytes, records::clock::now());
  schedule_forwarding();
}

void record_service::on_tick() {
  std::lock_guard lock(mu_);
  replicator_.on_tick(records::clock::now());
  schedule_forwarding();
}

void record_service::schedule_forwarding() {
  if (!options_.defer || forwarding_scheduled_ || !replicator_.forwarding_pending()) return;
  forwarding_scheduled_ = true;
  options_.defer([this] {
    std::lock_guard lock(mu_);
    forwarding_scheduled_ = false;
    replicator_.flush_forwarding();
  });
}

records::time_point record_service::next_deadline() const {
  std::lock_guard lock(mu_);
  return replicator_.next_deadline();
}

void record_service::set_on_stored(std::function<void(const records::record&)> fn) {
  std::lock_guard lock(mu_);
  on_stored_ = std::move(fn);
}

bool record_service::matched_a_peer() const {
  std::lock_guard lock(mu_);
  return replicator_.stats().syncs_equal > 0;
}

std::string record_service::prometheus_text() const {
  std::string out;
  out += "# HELP meshdeploy_records_stored Verified records held, by type.\n";
  out += "# TYPE meshdeploy_records_stored gauge\n";
  for (std::uint8_t t = 1; t <= records::max_record_type; ++t) {
    const auto type = static_cast<records::record_type>(t);
    auto n = store_.count(type);
    out += fmt::format("meshdeploy_records_stored{{type=\"{}\"}} {}\n", records::to_string(type),
                       n ? n.value() : 0);
  }
  std::lock_guard lock(mu_);
  const auto& s = replicator_.stats();
  out += "# HELP meshdeploy_records_rejected_total Records dropped, by reason.\n";
  out += "# TYPE meshdeploy_records_rejected_total counter\n";
  for (const auto& [reason, n] : s.rejected_by_reason) {
    out += fmt::format("meshdeploy_records_rejected_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  out +=
      "# HELP meshdeploy_records_received_total Records received from peers (before "
      "verification).\n";
  out += "# TYPE meshdeploy_records_received_total counter\n";
  out += fmt::format("meshdeploy_records_received_total {}\n", s.received);
  out +=
      "# HELP meshdeploy_records_accepted_total Records newly stored or replacing an older version "
      "(from peers and published here).\n";
  out += "# TYPE meshdeploy_records_accepted_total counter\n";
  out += fmt::format("meshdeploy_records_accepted_total {}\n", s.stored);
  out +=
      "# HELP meshdeploy_records_stale_total Records received that were already held, older, or "
      "tombstoned.\n";
  out += "# TYPE meshdeploy_records_stale_total counter\n";
  out += fmt::format("meshdeploy_records_stale_total {}\n", s.stale);
  out +=
      "# HELP meshdeploy_records_pending Records waiting for their writer's grant or host key.\n";
  out += "# TYPE meshdeploy_records_pending gauge\n";
  out += fmt::format("meshdeploy_records_pending {}\n", s.pending);
  out += "# HELP meshdeploy_records_sync_bytes_total Record replication bytes, by direction.\n";
  out += "# TYPE meshdeploy_records_sync_bytes_total counter\n";
  out += fmt::format("meshdeploy_records_sync_bytes_total{{direction=\"in\"}} {}\n", s.bytes_in);
  out += fmt::format("meshdeploy_records_sync_bytes_total{{direction=\"out\"}} {}\n", s.bytes_out);
  return out;
}

}  // namespace meshdeploy::node
