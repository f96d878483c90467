#include "node/deploy/journal_store.h"

#include "node/deploy/errc.h"
#include "node/records/record.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace meshdeploy::deploy {

namespace {

using json = nlohmann::json;

std::string payload_hex(const records::payload& p) {
  const std::vector<std::byte> bytes = records::encode_payload(p);
  return records::to_hex(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

template <class P>
result<P> payload_from_hex(records::record_type t, const json& j, const char* what) {
  if (!j.is_string())
    return make_error(errc::invalid_argument, std::string(what) + ": not a string");
  MESH_TRY(auto raw, records::from_hex(j.get<std::string>()));
  std::vector<std::byte> bytes(raw.size());
  if (!raw.empty()) std::memcpy(bytes.data(), raw.data(), raw.size());
  MESH_TRY(auto p, records::decode_payload(t, bytes));
  if (!std::holds_alternative<P>(p)) {
    return make_error(errc::invalid_argument, std::string(what) + ": wrong payload type");
  }
  return std::get<P>(std::move(p));
}

std::string key_of(const std::string& app, const std::string& group) { return app + "/" + group; }

}  // namespace

std::string encode_journal(const rollout::host_journal& j) {
  json doc = json::object();
  doc["approved"] = j.approved;
  json intents = json::object();
  for (const auto& [id, stored] : j.approved_intents) {
    intents[id] = {{"intent", payload_hex(stored.first)}, {"created", stored.second}};
  }
  doc["approvedIntents"] = std::move(intents);
  doc["entered"] = j.entered;
  json finished = json::object();
  for (const auto& [id, p] : j.finished) finished[id] = payload_hex(p);
  doc["finished"] = std::move(finished);
  return doc.dump();
}

result<rollout::host_journal> decode_journal(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [](const std::string& why) {
    return make_error(errc::invalid_argument, "rollout journal: " + why);
  };
  if (!doc.is_object()) return bad("not a JSON object");
  rollout::host_journal j;
  for (const char* field : {"approved", "approvedIntents", "finished"}) {
    if (!doc.contains(field) || !doc[field].is_object()) {
      return bad(std::string(field) + ": missing or not an object");
    }
  }
  if (!doc.contains("entered") || !doc["entered"].is_array()) {
    return bad("entered: missing or not an array");
  }
  for (const auto& [parent, child] : doc["approved"].items()) {
    if (!child.is_string()) return bad("approved." + parent + ": not a string");
    j.approved[parent] = child.get<std::string>();
  }
  for (const auto& [id, v] : doc["approvedIntents"].items()) {
    if (!v.is_object() || !v.contains("intent") || !v.contains("created") ||
        !v["created"].is_number_integer()) {
      return bad("approvedIntents." + id + ": expected {intent, created}");
    }
    auto p = payload_from_hex<records::intent_payload>(records::record_type::intent, v["intent"],
                                                       "intent");
    if (!p) return bad("approvedIntents." + id + ": " + p.error().message);
    j.approved_intents[id] = {std::move(p).value(), v["created"].get<unix_ms>()};
  }
  for (const auto& e : doc["entered"]) {
    if (!e.is_string()) return bad("entered: not a string");
    j.entered.insert(e.get<std::string>());
  }
  for (const auto& [id, v] : doc["finished"].items()) {
    auto p =
        payload_from_hex<records::progress_payload>(records::record_type::progress, v, "progress");
    if (!p) return bad("finished." + id + ": " + p.error().message);
    j.finished[id] = std::move(p).value();
  }
  return j;
}

result<rollout::host_journal> journal_store::load(const std::string& app,
                                                  const std::string& group) const {
  MESH_TRY(auto text, db_.get(column_family, key_of(app, group)));
  if (!text) return rollout::host_journal{};
  auto j = decode_journal(*text);
  if (!j) return j.error().with_context("group " + key_of(app, group));
  return j;
}

result<void> journal_store::save(const std::string& app, const std::string& group,
                                 const rollout::host_journal& j, bool synced) {
  return db_.put(column_family, key_of(app, group), encode_journal(j),
                 synced ? storage::durability::synced : storage::durability::buffered);
}

}  // namespace meshdeploy::deploy
