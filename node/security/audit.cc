#include "node/security/audit.h"

#include "node/deploy/status.h"
#include "node/records/errc.h"
#include "storage/key.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace meshdeploy::security {
namespace {

constexpr std::string_view hash_domain{"meshdeploy/audit/v1\0", 20};
constexpr std::size_t seq_key_bytes = 8;

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_str(std::vector<std::uint8_t>& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}
template <std::size_t N>
void put_fixed(std::vector<std::uint8_t>& out, const std::array<std::uint8_t, N>& a) {
  out.insert(out.end(), a.begin(), a.end());
}

error malformed(std::string what) {
  return make_error(records::errc::malformed, "audit entry: " + std::move(what));
}

// A bounds-checked cursor over untrusted bytes.
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}

  result<std::uint64_t> u64(const char* field) {
    if (bytes_.size() - pos_ < 8) return truncated(field);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes_[pos_ + i]);
    pos_ += 8;
    return v;
  }
  result<std::uint8_t> u8(const char* field) {
    if (bytes_.size() - pos_ < 1) return truncated(field);
    return static_cast<std::uint8_t>(bytes_[pos_++]);
  }
  result<std::string> str(const char* field) {
    if (bytes_.size() - pos_ < 4) return truncated(field);
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<std::uint8_t>(bytes_[pos_ + i]);
    if (bytes_.size() - pos_ - 4 < n) {
      return malformed(fmt::format("field {} claims {} bytes but only {} remain", field, n,
                                   bytes_.size() - pos_ - 4));
    }
    std::string s(bytes_.substr(pos_ + 4, n));
    pos_ += 4 + n;
    return s;
  }
  template <std::size_t N>
  result<std::array<std::uint8_t, N>> fixed(const char* field) {
    if (bytes_.size() - pos_ < N) return truncated(field);
    std::array<std::uint8_t, N> a{};
    std::memcpy(a.data(), bytes_.data() + pos_, N);
    pos_ += N;
    return a;
  }
  [[nodiscard]] std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  error truncated(const char* field) const {
    return malformed(fmt::format("value ends at byte {} inside field {}", pos_, field));
  }
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

std::uint64_t seq_of_key(std::string_view key) {
  std::uint64_t v = 0;
  for (char c : key) v = (v << 8) | static_cast<std::uint8_t>(c);
  return v;
}

std::string hex(std::span<const std::uint8_t> b) { return records::to_hex(b); }

std::string short_hex(const audit_hash& h) { return hex(h).substr(0, 16); }

}  // namespace

const char* audit_log::column_family = "audit";

std::vector<std::uint8_t> canonical_bytes(const audit_entry& e) {
  std::vector<std::uint8_t> out;
  out.reserve(160 + e.key.size() + e.writer_name.size() + e.via.size() + e.accepted_by.size());
  out.push_back(audit_format);
  put_u64(out, e.seq);
  put_u64(out, static_cast<std::uint64_t>(e.time_ms));
  out.push_back(static_cast<std::uint8_t>(e.type));
  put_str(out, e.key);
  put_u64(out, e.version);
  put_fixed(out, e.writer);
  put_str(out, e.writer_name);
  put_str(out, e.via);
  put_str(out, e.accepted_by);
  put_fixed(out, e.record_hash);
  put_fixed(out, e.prev);
  return out;
}

audit_hash compute_hash(const audit_entry& e) {
  const std::vector<std::uint8_t> body = canonical_bytes(e);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof(audit_hash));
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(hash_domain.data()),
                            hash_domain.size());
  crypto_generichash_update(&st, body.data(), body.size());
  audit_hash h{};
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

std::string encode_entry(const audit_entry& e) {
  std::vector<std::uint8_t> body = canonical_bytes(e);
  put_fixed(body, e.hash);
  return std::string(body.begin(), body.end());
}

result<audit_entry> decode_entry(std::string_view value) {
  reader rd(value);
  audit_entry e;
  MESH_TRY(const std::uint8_t format, rd.u8("format"));
  if (format != audit_format) {
    return make_error(records::errc::version_unsupported,
                      fmt::format("audit entry: format {} is not {}", format, audit_format));
  }
  MESH_TRY(e.seq, rd.u64("seq"));
  MESH_TRY(const std::uint64_t time, rd.u64("time_ms"));
  e.time_ms = static_cast<std::int64_t>(time);
  MESH_TRY(const std::uint8_t type, rd.u8("type"));
  if (type == 0 || type > records::max_record_type) {
    return malformed(fmt::format("field type has unknown record type {}", type));
  }
  e.type = static_cast<records::record_type>(type);
  MESH_TRY(e.key, rd.str("key"));
  MESH_TRY(e.version, rd.u64("version"));
  MESH_TRY(e.writer, rd.fixed<records::public_key_bytes>("writer"));
  MESH_TRY(e.writer_name, rd.str("writer_name"));
  MESH_TRY(e.via, rd.str("via"));
  MESH_TRY(e.accepted_by, rd.str("accepted_by"));
  MESH_TRY(e.record_hash, rd.fixed<32>("record_hash"));
  MESH_TRY(e.prev, rd.fixed<32>("prev"));
  MESH_TRY(e.hash, rd.fixed<32>("hash"));
  if (rd.remaining() != 0) {
    return malformed(fmt::format("{} trailing bytes after the hash", rd.remaining()));
  }
  return e;
}

nlohmann::json to_json(const audit_entry& e) {
  return nlohmann::json{{"seq", e.seq},
                        {"time", deploy::to_rfc3339(e.time_ms)},
                        {"timeMs", e.time_ms},
                        {"type", std::string(records::to_string(e.type))},
                        {"key", e.key},
                        {"version", e.version},
                        {"writer", hex(e.writer)},
                        {"writerName", e.writer_name},
                        {"via", e.via},
                        {"acceptedBy", e.accepted_by},
                        {"recordHash", hex(e.record_hash)},
                        {"prev", hex(e.prev)},
                        {"hash", hex(e.hash)}};
}

std::string_view to_string(audit_break b) {
  switch (b) {
    case audit_break::none:
      return "none";
    case audit_break::malformed:
      return "malformed entry";
    case audit_break::seq_gap:
      return "gap in seq";
    case audit_break::seq_mismatch:
      return "seq mismatch";
    case audit_break::hash_mismatch:
      return "hash mismatch";
    case audit_break::prev_mismatch:
      return "prev mismatch";
    case audit_break::truncated:
      return "truncated";
  }
  return "unknown";
}

nlohmann::json to_json(const audit_verification& v) {
  nlohmann::json j{{"ok", v.ok},
                   {"entriesChecked", v.entries_checked},
                   {"headSeq", v.head_seq},
                   {"headHash", hex(v.head_hash)}};
  if (!v.ok) {
    j["firstBrokenSeq"] = v.first_broken_seq;
    j["break"] = std::string(to_string(v.broken));
    j["reason"] = v.reason;
  }
  return j;
}

audit_log::audit_log(passkey, storage::db& db, std::uint64_t last_seq, audit_hash last_hash)
    : db_(db), last_seq_(last_seq), last_hash_(last_hash) {}

result<std::unique_ptr<audit_log>> audit_log::open(storage::db& db) {
  const auto families = db.column_families();
  if (std::find(families.begin(), families.end(), column_family) == families.end()) {
    return make_error(records::errc::io,
                      fmt::format("audit log: column family '{}' is not open in {}", column_family,
                                  db.dir().string()));
  }
  // The newest entry is the largest 8-byte key; other keys are not ours (verify reports them).
  std::uint64_t last_seq = 0;
  audit_hash last_hash{};
  auto scanned = db.scan_reverse(column_family, {}, [&](std::string_view k, std::string_view v) {
    if (k.size() != seq_key_bytes) return true;
    last_seq = seq_of_key(k);
    if (auto e = decode_entry(v)) {
      last_hash = e.value().hash;
    } else if (v.size() >= last_hash.size()) {
      std::memcpy(last_hash.data(), v.data() + v.size() - last_hash.size(), last_hash.size());
    }
    return false;
  });
  if (!scanned) {
    return make_error(records::errc::io,
                      "audit log: reading the last entry: " + scanned.error().message);
  }
  return std::make_unique<audit_log>(passkey{}, db, last_seq, last_hash);
}

result<audit_entry> audit_log::append(const records::record& r, std::string_view accepted_by_node,
                                      std::int64_t now_ms, std::string_view writer_name) {
  audit_entry e;
  e.time_ms = now_ms;
  e.type = r.type;
  e.key = r.key;
  e.version = r.version;
  e.writer = r.writer;
  e.writer_name = std::string(writer_name);
  e.via = r.via;
  e.accepted_by = std::string(accepted_by_node);
  e.record_hash = records::hash_of(r);

  std::lock_guard lock(mu_);
  e.seq = last_seq_ + 1;
  e.prev = last_hash_;
  e.hash = compute_hash(e);
  auto put = db_.put(column_family, storage::key().u64(e.seq), encode_entry(e),
                     storage::durability::synced);
  if (!put) {
    return make_error(records::errc::io,
                      fmt::format("audit log: appending entry {} for {} '{}': {}", e.seq,
                                  records::to_string(r.type), r.key, put.error().message));
  }
  last_seq_ = e.seq;
  last_hash_ = e.hash;
  return e;
}

result<audit_page> audit_log::list(std::int64_t since_ms, std::size_t limit) const {
  audit_page page;
  // Newest first, so a limit keeps the newest entries; time is not assumed monotonic
  // (the wall clock may step back), so older entries are still looked at.
  auto scanned = db_.scan_reverse(column_family, {}, [&](std::string_view k, std::string_view v) {
    if (k.size() != seq_key_bytes) {
      ++page.unreadable;
      return true;
    }
    auto e = decode_entry(v);
    if (!e) {
      ++page.unreadable;
      return true;
    }
    if (e.value().time_ms < since_ms) return true;
    if (page.entries.size() >= limit) {
      page.truncated = true;
      return false;
    }
    page.entries.push_back(std::move(e).value());
    return true;
  });
  if (!scanned) {
    return make_error(records::errc::io, "audit log: listing: " + scanned.error().message);
  }
  std::reverse(page.entries.begin(), page.entries.end());
  return page;
}

result<audit_verification> audit_log::verify() const {
  // Read the head first: every entry up to it was written (synced) before the lock was
  // released, so the scan's snapshot, taken afterwards, must contain all of them.
  std::uint64_t known_seq = 0;
  audit_hash known_hash{};
  {
    std::lock_guard lock(mu_);
    known_seq = last_seq_;
    known_hash = last_hash_;
  }
  audit_verification v;
  std::uint64_t expected = 1;
  audit_hash prev{};
  auto fail = [&](audit_break b, std::uint64_t seq, std::string reason) {
    v.ok = false;
    v.broken = b;
    v.first_broken_seq = seq;
    v.reason = std::move(reason);
    return false;
  };
  auto scanned = db_.scan(column_family, {}, [&](std::string_view k, std::string_view value) {
    ++v.entries_checked;
    if (k.size() != seq_key_bytes) {
      return fail(
          audit_break::malformed, expected,
          fmt::format("a key of {} bytes ({}) is not an entry number; expected entry {}", k.size(),
                      hex({reinterpret_cast<const std::uint8_t*>(k.data()), k.size()}), expected));
    }
    const std::uint64_t seq = seq_of_key(k);
    if (seq != expected) {
      return fail(audit_break::seq_gap, expected,
                  fmt::format("entry {} is missing: the next stored entry is {}", expected, seq));
    }
    auto decoded = decode_entry(value);
    if (!decoded) {
      return fail(audit_break::malformed, seq,
                  fmt::format("entry {} does not decode: {}", seq, decoded.error().message));
    }
    const audit_entry& e = decoded.value();
    if (e.seq != seq) {
      return fail(audit_break::seq_mismatch, seq,
                  fmt::format("the entry stored as {} says it is entry {} (moved or reordered)",
                              seq, e.seq));
    }
    if (const audit_hash h = compute_hash(e); h != e.hash) {
      return fail(audit_break::hash_mismatch, seq,
                  fmt::format("entry {} was modified: stored hash {}, contents hash to {}", seq,
                              short_hex(e.hash), short_hex(h)));
    }
    if (e.prev != prev) {
      return fail(audit_break::prev_mismatch, seq,
                  fmt::format("entry {} does not follow entry {}: its prev is {}, entry {} "
                              "hashes to {}",
                              seq, seq - 1, short_hex(e.prev), seq - 1, short_hex(prev)));
    }
    if (seq == known_seq && e.hash != known_hash) {
      return fail(audit_break::hash_mismatch, seq,
                  fmt::format("entry {} was rewritten: this node appended it with hash {}, the "
                              "stored chain ends in {}",
                              seq, short_hex(known_hash), short_hex(e.hash)));
    }
    prev = e.hash;
    v.head_seq = seq;
    v.head_hash = e.hash;
    ++expected;
    return true;
  });
  if (!scanned) {
    return make_error(records::errc::io, "audit log: verifying: " + scanned.error().message);
  }
  if (v.ok && v.head_seq < known_seq) {
    fail(audit_break::truncated, v.head_seq + 1,
         fmt::format("entries {} to {} are missing from the end of the log", v.head_seq + 1,
                     known_seq));
  }
  return v;
}

std::uint64_t audit_log::last_seq() const {
  std::lock_guard lock(mu_);
  return last_seq_;
}

audit_hash audit_log::last_hash() const {
  std::lock_guard lock(mu_);
  return last_hash_;
}

}  // namespace meshdeploy::security
