#include "node/swarm/swarm.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

namespace meshdeploy::swarm {

namespace fs = std::filesystem;

namespace {

// A full table, or a manifest request left unanswered, is asked again later than a peer that
// had nothing yet.
constexpr int full_table_backoff = 10;
// While a download runs, on_tick comes at least this often (timeouts, re-dials).
constexpr auto download_tick = std::chrono::seconds(1);

std::string short_id(const std::string& id) { return id.substr(0, 12); }

std::uint64_t mix(std::uint64_t seed, const std::string& id) {
  std::uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
  for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

}  // namespace

swarm::swarm(swarm_config cfg, swarm_env env, piece_store& store)
    : cfg_(cfg),
      env_(std::move(env)),
      store_(store),
      // A tenth of a second's worth may go at once after a pause; debt covers a larger piece.
      up_(cfg.max_upload_rate, std::max<std::uint64_t>(cfg.max_upload_rate / 10, 1)),
      down_(cfg.max_download_rate, std::max<std::uint64_t>(cfg.max_download_rate / 10, 1)),
      rng_(cfg.seed) {}

void swarm::send(const std::string& peer, const swarm_message& m) {
  env_.send(peer, gossip::frame_buffer::copy_of(encode_swarm_message(m)));
}

swarm::bundle* swarm::find(const std::string& id) {
  auto it = bundles_.find(id);
  return it == bundles_.end() ? nullptr : &it->second;
}

swarm::bundle* swarm::seeding_entry(const std::string& app, const std::string& id, time_point now) {
  if (auto* b = find(id)) return b;
  auto seed = store_.seed(app, id);
  if (!seed) return nullptr;
  auto m = decode_manifest(seed->manifest);
  if (!m) {
    spdlog::warn("swarm: the stored manifest of bundle {} is unreadable: {}", short_id(id),
                 m.error().message);
    return nullptr;
  }
  bundle b;
  b.ref.app = app;
  b.ref.id = id;
  b.ref.size = m.value().size;
  b.origin = seed->origin;
  b.uploaded_at.assign(m.value().piece_count(), time_point{});
  b.m = std::move(m).value();
  b.manifest_bytes = std::move(seed->manifest);
  b.last_activity = now;
  return &bundles_.emplace(id, std::move(b)).first->second;
}

void swarm::fetch(const bundle_ref& ref, std::vector<std::string> candidates, done_fn done,
                  time_point now) {
  now_ = now;
  if (auto* b = find(ref.id); b != nullptr && !b->downloading) {
    // Seeded after a download whose file the caller could not keep: fetch it again.
    bundles_.erase(ref.id);
  }
  if (auto* b = find(ref.id)) {
    b->done.push_back(std::move(done));
    for (auto& c : candidates) {
      if (std::find(b->candidates.begin(), b->candidates.end(), c) == b->candidates.end()) {
        b->candidates.push_back(std::move(c));
      }
    }
    dial(*b, now);
    return;
  }
  bundle b;
  b.ref = ref;
  b.downloading = true;
  b.last_progress = b.last_activity = now;
  b.done.push_back(std::move(done));
  // The origin first (it holds the bundle from the start), then the others in random order so
  // that a fleet does not dial the same few peers.
  std::vector<std::string> rest;
  for (auto& c : candidates) {
    if (std::find(b.candidates.begin(), b.candidates.end(), c) != b.candidates.end() ||
        std::find(rest.begin(), rest.end(), c) != rest.end()) {
      continue;
    }
    if (c == ref.origin) {
      b.candidates.push_back(std::move(c));
    } else {
      rest.push_back(std::move(c));
    }
  }
  std::shuffle(rest.begin(), rest.end(), rng_);
  for (auto& c : rest) b.candidates.push_back(std::move(c));
  auto& entry = bundles_.emplace(ref.id, std::move(b)).first->second;
  if (ref.size == 0) {
    finish(ref.id, make_error(deploy::errc::invalid_argument,
                              fmt::format("bundle {} of '{}' has size 0", ref.id, ref.app)));
    return;
  }
  if (entry.candidates.empty()) {
    finish(ref.id, make_error(deploy::errc::not_found,
                              fmt::format("bundle {} of '{}': no other node to fetch it from",
                                          ref.id, ref.app)));
    return;
  }
  ask_manifest(entry, now);
}

void swarm::ask_manifest(bundle& b, time_point now) {
  const std::size_t n = b.candidates.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::string& c = b.candidates[b.manifest_turn++ % n];
    if (b.banned.count(c) != 0) continue;
    if (auto r = b.refused.find(c); r != b.refused.end() && r->second > now) continue;
    b.manifest_from = c;
    b.manifest_asked = now;
    send(c, manifest_request_msg{b.ref.app, b.ref.id});
    return;
  }
  // Nobody to ask right now: on_tick asks again once a refusal expires.
  b.manifest_from.clear();
  b.manifest_asked = now;
}

void swarm::set_manifest(bundle& b, manifest m, std::vector<std::byte> bytes, time_point now) {
  auto held = store_.open_download(b.ref, m, bytes);
  if (!held) {
    finish(b.ref.id, held.error());
    return;
  }
  b.picker = std::make_unique<piece_picker>(m.piece_count(), mix(cfg_.seed, b.ref.id));
  b.held_bytes = 0;
  for (std::size_t i = 0; i < held.value().size() && i < m.piece_count(); ++i) {
    if (held.value()[i]) {
      b.picker->set_held(i);
      b.held_bytes += m.piece_length(i);
    }
  }
  b.uploaded_at.assign(m.piece_count(), time_point{});
  b.m = std::move(m);
  b.manifest_bytes = std::move(bytes);
  b.last_progress = now;
  if (b.held_bytes > 0) {
    spdlog::info("swarm: bundle {}: resuming with {} of {} pieces", short_id(b.ref.id),
                 b.picker->held_count(), b.m->piece_count());
  }
  if (env_.progress) env_.progress(b.ref.id, b.held_bytes, b.m->size);
  if (b.picker->held_count() == b.m->piece_count()) {
    const std::string id = b.ref.id;
    auto r = store_.finish_download(b.ref);
    finish(id, std::move(r));
    return;
  }
  for (auto& [name, p] : b.peers) {
    if (p.known && !p.early_bits.empty()) {
      set_peer_bits(b, p, p.early_bits);
      p.early_bits.clear();
    }
  }
  dial(b, now);
  schedule(b, now);
}

std::vector<bool> swarm::held_of(const bundle& b) const {
  if (!b.m) return {};
  if (!b.downloading) return std::vector<bool>(b.m->piece_count(), true);
  std::vector<bool> out(b.m->piece_count());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = b.picker->held(i);
  return out;
}

void swarm::set_peer_bits(bundle& b, peer_state& p, std::span<const std::byte> bits) {
  const std::size_t n = b.m->piece_count();
  if (!bits.empty() && bits.size() != (n + 7) / 8) {
    ++stats_.rejected_messages;
    return;
  }
  std::vector<bool> has(n);
  for (std::size_t i = 0; i < n; ++i) has[i] = bits_get(bits, i);
  if (b.picker) {
    b.picker->remove_peer(p.has);
    b.picker->add_peer(has);
  }
  p.has = std::move(has);
}

void swarm::dial(bundle& b, time_point now) {
  if (!b.downloading || !b.m) return;
  const std::size_t n = b.candidates.size();
  const auto bits = make_bits(held_of(b));
  auto refused = [&](const std::string& c) {
    auto r = b.refused.find(c);
    return r != b.refused.end() && r->second > now;
  };
  // The origin holds every piece from the start: it is dialled whenever it is not in the table
  // (beyond dial_peers if need be), else a table of downloaders that hold nothing yet could
  // wait on each other forever.
  const std::string& origin = b.ref.origin;
  if (!origin.empty() && b.peers.count(origin) == 0 && b.banned.count(origin) == 0 &&
      !refused(origin) &&
      std::find(b.candidates.begin(), b.candidates.end(), origin) != b.candidates.end()) {
    peer_state p;
    p.hello_sent = now;
    b.peers.emplace(origin, std::move(p));
    send(origin, hello_msg{b.ref.app, b.ref.id, bits, false});
  }
  for (std::size_t k = 0; k < n && b.peers.size() < cfg_.dial_peers; ++k) {
    const std::string& c = b.candidates[b.dial_turn++ % n];
    if (b.peers.count(c) != 0 || b.banned.count(c) != 0 || refused(c)) continue;
    peer_state p;
    p.hello_sent = now;
    b.peers.emplace(c, std::move(p));
    send(c, hello_msg{b.ref.app, b.ref.id, bits, false});
  }
}

void swarm::on_message(const std::string& from, std::span<const std::byte> bytes, time_point now) {
  now_ = now;
  auto m = decode_swarm_view(bytes);  // a piece's data stays a view into `bytes`
  if (!m) {
    ++stats_.rejected_messages;
    spdlog::debug("swarm: from {}: {}", from, m.error().message);
    return;
  }
  std::visit([&](auto&& v) { handle(from, std::move(v), now); }, std::move(m).value());
  pump_uploads(now);
}

void swarm::handle(const std::string& from, const manifest_request_msg& m, time_point now) {
  bundle* b = seeding_entry(m.app, m.id, now);  // the running entry, or one for a held bundle
  if (b == nullptr || !b->m || b->ref.app != m.app) {
    send(from, none_msg{m.id});
    return;
  }
  b->last_activity = now;
  send(from, manifest_msg{m.id, b->manifest_bytes});
}

void swarm::handle(const std::string& from, const manifest_msg& m, time_point now) {
  bundle* b = find(m.id);
  if (b == nullptr || !b->downloading || b->m) return;  // late: another peer answered first
  auto reject = [&](const std::string& why) {
    spdlog::warn("swarm: bundle {}: dropping {}: its manifest {}", short_id(m.id), from, why);
    ++stats_.peers_dropped;
    b->banned.insert(from);
    ask_manifest(*b, now);
  };
  if (!b->ref.manifest.empty() && manifest_id(m.bytes) != b->ref.manifest) {
    reject("does not hash to the name in the signed revision record");
    return;
  }
  auto decoded = decode_manifest(m.bytes);
  if (!decoded) {
    reject(decoded.error().message);
    return;
  }
  if (decoded.value().size != b->ref.size) {
    reject(fmt::format("describes {} bytes, the revision {}", decoded.value().size, b->ref.size));
    return;
  }
  b->refused.erase(from);  // it answered after all (a slow origin): dial it
  set_manifest(*b, std::move(decoded).value(), m.bytes, now);
}

void swarm::handle(const std::string& from, hello_msg m, time_point now) {
  bundle* b = find(m.id);
  if (b == nullptr) b = seeding_entry(m.app, m.id, now);
  if (b == nullptr || b->ref.app != m.app) {
    if (!m.reply) send(from, none_msg{m.id});
    return;
  }
  b->last_activity = now;
  auto it = b->peers.find(from);
  if (it == b->peers.end()) {
    if (b->banned.count(from) != 0 || b->peers.size() >= cfg_.max_peers) {
      if (!m.reply) send(from, busy_msg{m.id, busy_hello});
      return;
    }
    it = b->peers.emplace(from, peer_state{}).first;
  }
  peer_state& p = it->second;
  p.known = true;
  b->refused.erase(from);
  if (b->m) {
    set_peer_bits(*b, p, m.bits);
  } else {
    p.early_bits = std::move(m.bits);
  }
  if (!m.reply) send(from, hello_msg{b->ref.app, b->ref.id, make_bits(held_of(*b)), true});
  schedule(*b, now);
}

void swarm::handle(const std::string& from, const have_msg& m, time_point now) {
  // It also acknowledges a piece this node sent: the upload slot is free again.
  std::erase_if(sending_, [&](const upload& u) {
    return u.peer == from && u.index == m.index && u.id == m.id;
  });
  bundle* b = find(m.id);
  if (b == nullptr || !b->m) return;
  auto it = b->peers.find(from);
  if (it == b->peers.end() || m.index >= b->m->piece_count()) return;
  peer_state& p = it->second;
  if (p.has.empty()) p.has.assign(b->m->piece_count(), false);
  if (p.has[m.index]) return;
  p.has[m.index] = true;
  if (b->picker) b->picker->add_peer_piece(m.index);
  schedule(*b, now);
}

void swarm::handle(const std::string& from, const request_msg& m, time_point now) {
  bundle* b = find(m.id);
  auto decline = [&] {
    ++stats_.requests_declined;
    send(from, busy_msg{m.id, m.index});
  };
  if (b == nullptr || !b->m || m.index >= b->m->piece_count()) {
    decline();
    return;
  }
  b->last_activity = now;
  auto it = b->peers.find(from);
  if (it == b->peers.end()) {
    // A peer that never said hello (or that this node forgot): served only with room for it.
    if (b->peers.size() >= cfg_.max_peers || b->banned.count(from) != 0) {
      decline();
      return;
    }
    it = b->peers.emplace(from, peer_state{}).first;
    it->second.known = true;
  }
  const bool held = !b->downloading || (b->picker && b->picker->held(m.index));
  if (!held) {
    decline();
    return;
  }
  if (b->origin) {
    // Seed each piece once: decline it while another holder serves it (unless the asker knows
    // none that does: it may have dropped them), or while the copy just sent may still be on
    // its way.
    bool elsewhere = false;
    for (const auto& [name, p] : b->peers) {
      if (name != from && m.index < p.has.size() && p.has[m.index]) elsewhere = true;
    }
    const time_point last = b->uploaded_at[m.index];
    if ((elsewhere && !m.only_you) || (last != time_point{} && now - last < cfg_.reseed_after)) {
      decline();
      return;
    }
  }
  if (uploads_.size() >= cfg_.max_peers * cfg_.requests_per_peer * 2) {
    decline();
    return;
  }
  b->uploaded_at[m.index] = now;
  uploads_.push_back(upload{from, m.id, m.index});
}

void swarm::pump_uploads(time_point now) {
  while (!uploads_.empty() && sending_.size() < cfg_.upload_slots && up_.ready_at(now) <= now) {
    // The rarest piece asked for goes first (as this node sees its peers), so the last copies
    // of a piece are not stuck behind pieces that many hold.
    auto next = uploads_.begin();
    std::size_t rarest = std::numeric_limits<std::size_t>::max();
    for (auto it = uploads_.begin(); it != uploads_.end(); ++it) {
      const std::size_t a = copies(it->id, it->index);
      if (a < rarest) {
        rarest = a;
        next = it;
      }
    }
    upload u = std::move(*next);
    uploads_.erase(next);
    bundle* b = find(u.id);
    if (b == nullptr || !b->m) continue;
    // One pread straight into the buffer the piece is sent from; the message's header goes in
    // front of it and the layers below seal it in place (docs/swarm.md "CPU per byte").
    const std::size_t len = u.index < b->m->piece_count() ? b->m->piece_length(u.index) : 0;
    gossip::frame_buffer buf =
        env_.buffer ? env_.buffer(len)
                    : gossip::frame_buffer(gossip::frame_headroom, len, gossip::frame_tailroom);
    auto read = b->downloading ? store_.read_piece(u.id, u.index, buf.bytes())
                               : store_.read_seed(b->ref.app, u.id, *b->m, u.index, buf.bytes());
    if (!read) {
      spdlog::warn("swarm: cannot serve piece {} of bundle {}: {}", u.index, short_id(u.id),
                   read.error().message);
      ++stats_.requests_declined;
      send(u.peer, busy_msg{u.id, static_cast<std::uint32_t>(u.index)});
      continue;
    }
    up_.take(len, now);
    stats_.upload_bytes += len;
    prepend_piece_header(buf, u.id, static_cast<std::uint32_t>(u.index));
    env_.send(u.peer, std::move(buf));
    u.sent = now;
    sending_.push_back(std::move(u));
  }
}

std::size_t swarm::copies(const std::string& id, std::size_t index) {
  const bundle* b = find(id);
  if (b == nullptr) return 0;
  if (b->picker) return b->picker->availability(index);
  std::size_t n = 0;
  for (const auto& [name, p] : b->peers) n += index < p.has.size() && p.has[index];
  return n;
}

void swarm::handle(const std::string& from, const piece_view& m, time_point now) {
  bundle* b = find(m.id);
  if (b == nullptr || !b->m || !b->downloading) {
    // An endgame copy that arrived after the download completed (or failed): acknowledged, so
    // the sender's upload slot is free at once.
    ++stats_.duplicate_pieces;
    send(from, have_msg{m.id, m.index});
    return;
  }
  if (b->banned.count(from) != 0) {
    ++stats_.rejected_messages;  // the rest of what a dropped peer was asked for
    return;
  }
  const manifest& man = *b->m;
  if (m.index >= man.piece_count() || m.data.size() != man.piece_length(m.index) ||
      hash_piece(m.data) != man.pieces[m.index]) {
    ++stats_.pieces_rejected;
    ++stats_.peers_dropped;
    spdlog::warn(
        "swarm: bundle {}: {} sent a piece {} that does not match the manifest; "
        "dropping it",
        short_id(m.id), from, m.index);
    drop_peer(*b, from, true);
    schedule(*b, now);
    return;
  }
  // Every request for this piece is settled by this copy.
  clear_requests(*b, "", m.index);
  if (b->picker->held(m.index)) {
    ++stats_.duplicate_pieces;
    send(from, have_msg{m.id, m.index});  // frees the sender's upload slot
    schedule(*b, now);
    return;
  }
  if (auto w = store_.write_piece(m.id, m.index, m.data); !w) {
    finish(m.id, make_error(deploy::errc::internal,
                            fmt::format("bundle {}: cannot store piece {}: {}", short_id(m.id),
                                        m.index, w.error().message)));
    return;
  }
  b->picker->set_held(m.index);
  b->held_bytes += m.data.size();
  b->last_progress = now;
  ++stats_.pieces_verified;
  stats_.download_bytes += m.data.size();
  for (auto& [name, p] : b->peers) {
    // A peer holding the piece needs no have, except the origin: it seeds each piece once and
    // must know who else serves it.
    if (!p.known ||
        (m.index < p.has.size() && p.has[m.index] && name != b->ref.origin && name != from)) {
      continue;
    }
    send(name, have_msg{m.id, m.index});
  }
  if (b->peers.count(from) == 0) send(from, have_msg{m.id, m.index});  // the acknowledgement
  if (env_.progress) env_.progress(m.id, b->held_bytes, man.size);
  if (b->picker->held_count() == man.piece_count()) {
    auto r = store_.finish_download(b->ref);
    finish(m.id, std::move(r));
    return;
  }
  schedule(*b, now);
}

void swarm::handle(const std::string& from, const none_msg& m, time_point now) {
  bundle* b = find(m.id);
  if (b == nullptr || !b->downloading) return;
  drop_peer(*b, from, false);
  b->refused[from] = now + cfg_.retry_after;
  // The next candidate is asked at the next tick (about a second), not at once: in a large
  // fleet most peers lack the manifest at first, and asking them back to back floods the mesh.
  if (!b->m && b->manifest_from == from) b->manifest_from.clear();
  dial(*b, now);
}

void swarm::handle(const std::string& from, const busy_msg& m, time_point now) {
  bundle* b = find(m.id);
  if (b == nullptr || !b->downloading) return;
  if (m.index == busy_hello) {
    drop_peer(*b, from, false);
    b->refused[from] = now + full_table_backoff * cfg_.retry_after;
    dial(*b, now);
    return;
  }
  auto it = b->peers.find(from);
  if (it == b->peers.end()) return;
  clear_requests(*b, from, m.index);
  it->second.declined[m.index] = now + cfg_.reseed_after;
  schedule(*b, now);
}

void swarm::clear_requests(bundle& b, const std::string& peer, std::optional<std::size_t> index) {
  for (auto it = b.in_flight.begin(); it != b.in_flight.end();) {
    const bool match = (peer.empty() || it->second.peer == peer) && (!index || it->first == *index);
    if (!match) {
      ++it;
      continue;
    }
    if (auto p = b.peers.find(it->second.peer); p != b.peers.end() && p->second.outstanding > 0) {
      --p->second.outstanding;
    }
    if (b.picker) b.picker->unrequested(it->first);
    it = b.in_flight.erase(it);
  }
}

void swarm::drop_peer(bundle& b, const std::string& peer, bool ban) {
  clear_requests(b, peer, std::nullopt);
  if (auto it = b.peers.find(peer); it != b.peers.end()) {
    if (b.picker) b.picker->remove_peer(it->second.has);
    b.peers.erase(it);
  }
  if (ban) b.banned.insert(peer);
  auto theirs = [&](const upload& u) { return u.peer == peer && u.id == b.ref.id; };
  std::erase_if(uploads_, theirs);
  std::erase_if(sending_, theirs);
}

void swarm::schedule(bundle& b, time_point now) {
  if (!b.downloading || !b.picker || !b.m) return;
  std::vector<std::pair<const std::string*, peer_state*>> ready;
  for (auto& [name, p] : b.peers) {
    if (p.known && !p.has.empty() && p.busy_until <= now) ready.emplace_back(&name, &p);
  }
  std::shuffle(ready.begin(), ready.end(), rng_);
  const std::size_t per_peer = std::clamp<std::size_t>(
      (cfg_.requests_in_flight + ready.size() - 1) / std::max<std::size_t>(ready.size(), 1), 1,
      cfg_.requests_per_peer);
  // One request per peer per round, so the pieces asked for spread over the peers.
  for (bool asked = true; asked;) {
    asked = false;
    for (auto [name, p] : ready) {
      if (p->outstanding >= per_peer) continue;
      if (down_.ready_at(now) > now) return;  // on_tick resumes
      const std::string& peer = *name;
      auto pick = b.picker->pick(p->has, true, [&](std::size_t i) {
        if (auto d = p->declined.find(i); d != p->declined.end()) {
          if (d->second > now) return true;
          p->declined.erase(d);
        }
        auto [lo, hi] = b.in_flight.equal_range(i);
        for (auto r = lo; r != hi; ++r) {
          if (r->second.peer == peer) return true;
        }
        return false;
      });
      if (!pick) continue;
      bool only_you = true;
      for (const auto& [other, q] : b.peers) {
        if (other != peer && *pick < q.has.size() && q.has[*pick]) only_you = false;
      }
      b.in_flight.emplace(*pick, request{peer, now});
      b.picker->requested(*pick);
      ++p->outstanding;
      down_.take(b.m->piece_length(*pick), now);
      send(peer, request_msg{b.ref.id, static_cast<std::uint32_t>(*pick), only_you});
      asked = true;
    }
  }
}

void swarm::finish(const std::string& id, result<fs::path> r) {
  auto it = bundles_.find(id);
  if (it == bundles_.end()) return;
  bundle& b = it->second;
  auto done = std::move(b.done);
  b.done.clear();
  if (r) {
    ++stats_.downloads_completed;
    // Seed it from now on: the store serves it from its final place.
    clear_requests(b, "", std::nullopt);
    b.downloading = false;
    b.picker.reset();
    b.candidates.clear();
    b.refused.clear();
    b.last_activity = now_;
  } else {
    ++stats_.downloads_failed;
    store_.close_download(id, false);
    std::erase_if(uploads_, [&](const upload& u) { return u.id == id; });
    std::erase_if(sending_, [&](const upload& u) { return u.id == id; });
    bundles_.erase(it);
  }
  for (auto& fn : done) fn(r);
}

void swarm::on_peer_down(const std::string& peer, time_point now) {
  now_ = now;
  std::erase_if(uploads_, [&](const upload& u) { return u.peer == peer; });
  std::erase_if(sending_, [&](const upload& u) { return u.peer == peer; });
  std::vector<std::string> ids;
  for (auto& [id, b] : bundles_) ids.push_back(id);
  for (const auto& id : ids) {
    bundle* b = find(id);
    if (b == nullptr || b->peers.count(peer) == 0) continue;
    drop_peer(*b, peer, false);
    if (b->downloading) {
      b->refused[peer] = now + cfg_.retry_after;
      if (!b->m && b->manifest_from == peer) ask_manifest(*b, now);
      dial(*b, now);
      schedule(*b, now);
    }
  }
}

void swarm::on_tick(time_point now) {
  now_ = now;
  std::erase_if(sending_, [&](const upload& u) { return now - u.sent >= cfg_.upload_ack_timeout; });
  pump_uploads(now);
  std::vector<std::string> ids;
  for (auto& [id, b] : bundles_) ids.push_back(id);
  for (const auto& id : ids) {
    bundle* b = find(id);
    if (b == nullptr) continue;
    if (!b->downloading) {
      if (now - b->last_activity >= cfg_.idle_forget) bundles_.erase(id);
      continue;
    }
    if (now - b->last_progress >= cfg_.stall_timeout) {
      std::string asked;
      for (const auto& c : b->candidates) asked += (asked.empty() ? "" : ", ") + c;
      finish(id, make_error(deploy::errc::timed_out,
                            fmt::format("bundle {} of '{}': nothing arrived for {} s{} (peers: {})",
                                        b->ref.id, b->ref.app, cfg_.stall_timeout.count(),
                                        b->m ? "" : " (not even its manifest)", asked)));
      continue;
    }
    if (!b->m) {
      if (b->manifest_from.empty() || now - b->manifest_asked >= cfg_.hello_timeout) {
        // Slow is not gone: a busy origin may still answer (any answer is taken), so it is
        // not asked again for a while (each ask would queue another copy on its link).
        if (!b->manifest_from.empty()) {
          b->refused[b->manifest_from] = now + full_table_backoff * cfg_.retry_after;
        }
        ask_manifest(*b, now);
      }
      continue;
    }
    std::vector<std::string> silent;
    for (const auto& [name, p] : b->peers) {
      if (!p.known && now - p.hello_sent >= cfg_.hello_timeout) silent.push_back(name);
    }
    for (const auto& name : silent) {
      drop_peer(*b, name, false);
      b->refused[name] = now + cfg_.retry_after;
    }
    std::vector<std::pair<std::size_t, std::string>> late;
    for (const auto& [index, r] : b->in_flight) {
      if (now - r.sent >= cfg_.request_timeout) late.emplace_back(index, r.peer);
    }
    for (const auto& [index, peer] : late) {
      clear_requests(*b, peer, index);
      if (auto p = b->peers.find(peer); p != b->peers.end()) {
        p->second.busy_until = now + cfg_.retry_after;
      }
    }
    dial(*b, now);
    schedule(*b, now);
  }
}

time_point swarm::next_deadline() const {
  time_point next = time_point::max();
  if (!uploads_.empty() && sending_.size() < cfg_.upload_slots) {
    next = std::min(next, up_.ready_at(now_));
  }
  for (const auto& u : sending_) next = std::min(next, u.sent + cfg_.upload_ack_timeout);
  for (const auto& [id, b] : bundles_) {
    if (b.downloading) {
      next = std::min(next, now_ + download_tick);
      if (const auto ready = down_.ready_at(now_); ready > now_) next = std::min(next, ready);
    } else {
      next = std::min(next, b.last_activity + cfg_.idle_forget);
    }
  }
  return next;
}

std::size_t swarm::connected_peers() const {
  std::set<std::string> names;
  for (const auto& [id, b] : bundles_) {
    for (const auto& [name, p] : b.peers) {
      if (p.known) names.insert(name);
    }
  }
  return names.size();
}

std::optional<std::uint64_t> swarm::held_bytes(const std::string& id) const {
  auto it = bundles_.find(id);
  if (it == bundles_.end() || !it->second.downloading) return std::nullopt;
  return it->second.held_bytes;
}

}  // namespace meshdeploy::swarm
