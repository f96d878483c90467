#include "node/mesh/gossip_driver.h"

#include "gossip/errc.h"
#include "gossip/membership.h"
#include "gossip/packet_crypto.h"
#include "node/api/server.h"
#include "node/deploy/errc.h"
#include "node/mesh/connection_table.h"
#include "node/mesh/envelope.h"
#include "node/mesh/keyring_store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <map>
#include <set>

namespace meshdeploy::mesh {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

// One sealed stream frame: a whole core stream message (up to gossip::max_stream_bytes) plus the
// secure envelope (<= 274 bytes) and the seal's header and tag.
constexpr std::size_t max_frame_bytes = gossip::max_stream_bytes + 4096;
// Deadline of one connect or one frame write.
constexpr auto stream_deadline = std::chrono::seconds(10);

std::optional<key_action> parse_action(std::string_view s) {
  for (auto a : {key_action::list, key_action::install, key_action::use, key_action::remove}) {
    if (to_string(a) == s) return a;
  }
  return std::nullopt;
}

std::vector<key_info> describe(const gossip::keyring& ring) {
  std::vector<key_info> out;
  for (const auto& k : ring.list()) out.push_back({key_id_hex(k), key_fingerprint(k)});
  return out;
}

nlohmann::json to_json(const std::vector<key_info>& keys) {
  auto arr = nlohmann::json::array();
  for (const auto& k : keys) arr.push_back({k.id, k.fingerprint});
  return arr;
}

std::vector<key_info> keys_from_json(const nlohmann::json& arr) {
  std::vector<key_info> out;
  if (!arr.is_array()) return out;
  for (const auto& k : arr) {
    if (k.is_array() && k.size() == 2 && k[0].is_string() && k[1].is_string()) {
      out.push_back({k[0].get<std::string>(), k[1].get<std::string>()});
    }
  }
  return out;
}

std::vector<std::byte> to_bytes(const nlohmann::json& j) {
  const std::string s = j.dump();
  const auto* b = reinterpret_cast<const std::byte*>(s.data());
  return {b, b + s.size()};
}

// Rejoining peers are sent our keyring at most this often.
constexpr auto sync_interval = std::chrono::seconds(5);
constexpr std::size_t max_removed_remembered = 64;

}  // namespace

std::string_view to_string(key_action a) {
  switch (a) {
    case key_action::list:
      return "list";
    case key_action::install:
      return "install";
    case key_action::use:
      return "use";
    case key_action::remove:
      return "remove";
  }
  return "list";
}

struct gossip_driver::impl : std::enable_shared_from_this<impl>, gossip::transport {
  impl(asio::io_context& io_, gossip::keyring ring_, gossip::node_meta self, gossip_options o)
      : io(io_),
        ring(std::move(ring_)),
        options(std::move(o)),
        udp_socket(io_),
        acceptor(io_),
        timer(io_),
        conn_timer(io_),
        self_meta(std::move(self)),
        out_table({options.max_outbound_streams, options.outbound_idle, options.outbound_idle}),
        in_table({options.max_inbound_streams, options.inbound_idle, stream_deadline}) {
    // The boot epoch must grow across restarts (receivers reject an older
    // epoch as a replay): microseconds of wall-clock time at start.
    epoch = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  }

  asio::io_context& io;
  gossip::keyring ring;
  gossip_options options;
  udp::socket udp_socket;
  tcp::acceptor acceptor;
  asio::steady_timer timer;
  asio::steady_timer conn_timer;  // idle expiry of both connection tables
  clock::time_point conn_timer_at = clock::time_point::max();
  gossip::node_meta self_meta;
  std::unique_ptr<gossip::membership> core;
  gossip::replay_guard replays;
  driver_counters counters;
  std::uint64_t epoch = 0;
  std::uint64_t next_seq = 1;
  std::array<std::byte, 65536> rx{};
  udp::endpoint rx_from;
  std::vector<gossip::address> seeds;
  int join_attempts = 0;
  clock::time_point next_join{};
  bool stopped = false;
  gossip_driver::user_handler user_fn;
  std::function<void(const gossip::member_event&)> event_fn;
  // While a stream's bytes are in the core: the authenticated sender name of that stream.
  const std::string* stream_sender = nullptr;

  // Long-lived streams (docs/gossip.md "Running it"). Outgoing: one per peer address, fed by a
  // queue of sealed frames, one write in flight; it closes after outbound_idle without frames,
  // when the peer closes it, on any error, or when evicted for a newer one. Incoming: one
  // session per accepted connection, closed after inbound_idle without a frame (stream_deadline
  // before its first), or when evicted. inbound_idle > outbound_idle, so the sender closes an
  // idle stream before the receiver would (no frame is lost to that race).
  struct out_stream {
    out_stream(asio::io_context& io, const gossip::associated_context& c)
        : sock(io), sealer(c), wake(io), deadline(io) {}
    tcp::socket sock;
    gossip::stream_sealer sealer;
    // Sealed frames, each written as its 4-byte big-endian length then its bytes (one gathered
    // write: the sealed bytes are not copied behind the prefix).
    struct frame {
      std::array<std::byte, 4> length{};
      gossip::frame_buffer sealed;  // back to tx_pool once written
    };
    std::deque<std::shared_ptr<frame>> queue;
    asio::steady_timer wake;      // cancelled to wake the idle writer
    asio::steady_timer deadline;  // closes the socket when a connect or write overruns
    std::uint64_t op = 0;         // current deadline's generation
    connection_table::id id = 0;
    gossip::address to;
    bool closed = false;
  };
  connection_table out_table;
  std::map<connection_table::id, std::shared_ptr<out_stream>> out_streams;
  connection_table in_table;
  std::map<connection_table::id, std::shared_ptr<tcp::socket>> in_sockets;
  std::uint64_t next_in_key = 0;

  // Key rotation state ----------------------------------------------------
  struct pending_op {
    std::uint64_t id = 0;
    key_action action = key_action::list;
    std::string key;  // base64, empty for list
    std::set<std::string> asked;
    std::map<std::string, key_member_reply> replies;
    key_member_reply self_reply;
    std::unique_ptr<asio::steady_timer> timer;
    clock::time_point deadline{};
    bool resent = false;
    std::function<void(result<key_report>)> done;
  };
  std::uint64_t key_generation = 0;
  std::vector<std::string> removed_keys;
  std::map<std::uint64_t, std::shared_ptr<pending_op>> key_ops;
  std::uint64_t next_op_id = 0;
  // Peers whose last sealed input used one of our non-primary keys: we answer them with that key
  // (so a member that missed a rotation still hears us) and send them our keyring.
  std::map<gossip::address, gossip::key_id> peer_keys;
  std::map<gossip::address, clock::time_point> last_sync;

  // The key to seal for `to`: the peer's own key while it lags behind, else our primary.
  const gossip::secret_key* lagging_key_for(const gossip::address& to) const {
    auto it = peer_keys.find(to);
    if (it == peer_keys.end() || it->second == ring.primary().id()) return nullptr;
    return ring.find(it->second);
  }

  void note_peer_key(const gossip::address& from, gossip::key_id id) {
    if (id == ring.primary().id()) {
      peer_keys.erase(from);
      return;
    }
    peer_keys[from] = id;
    const auto now = clock::now();
    auto [it, fresh] = last_sync.try_emplace(from, now);
    if (!fresh && now - it->second < sync_interval) return;
    it->second = now;
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& k : ring.list()) keys.push_back(k.to_base64());
    nlohmann::json msg = {{"t", "sync"}, {"g", key_generation}, {"keys", std::move(keys)}};
    spdlog::info("gossip: {} still seals with key {:02x}; sending it our keyring (generation {})",
                 from.to_string(), static_cast<unsigned>(id), key_generation);
    (void)core->send_user(from, user_type_keys, to_bytes(msg));
  }

  void persist_keys() {
    if (options.keyring_file.empty()) return;
    auto r =
        save_keyring_state(options.keyring_file, keyring_state{ring, key_generation, removed_keys});
    if (!r) spdlog::error("gossip: {}", r.error().message);
  }

  // Applies one key operation to our own keyring and says how it went.
  key_member_reply apply_key_op(key_action a, const std::string& key_text, std::uint64_t gen) {
    key_member_reply rep;
    rep.name = self_meta.name;
    rep.ok = true;
    if (a != key_action::list) {
      auto k = gossip::secret_key::from_base64(key_text);
      result<void> r = ok();
      if (!k) {
        r = k.error();
      } else if (a == key_action::install) {
        r = ring.install(k.value());
        if (r) std::erase(removed_keys, key_fingerprint(k.value()));
      } else if (a == key_action::use) {
        r = ring.use(k.value());
      } else {
        r = ring.remove(k.value());
        if (!r && r.error().code == gossip::errc::key_not_found) r = ok();  // already gone
        if (r) {
          const auto fp = key_fingerprint(k.value());
          if (std::find(removed_keys.begin(), removed_keys.end(), fp) == removed_keys.end()) {
            removed_keys.push_back(fp);
          }
          if (removed_keys.size() > max_removed_remembered)
            removed_keys.erase(removed_keys.begin());
        }
      }
      if (!r) {
        rep.ok = false;
        rep.error = r.error().message;
      } else {
        key_generation = std::max(key_generation, gen);
        persist_keys();
        spdlog::info("gossip: key {} {} (keyring generation {})", to_string(a),
                     k ? key_fingerprint(k.value()) : "", key_generation);
      }
    }
    rep.keys = describe(ring);
    return rep;
  }

  void on_key_message(std::span<const std::byte> payload, const std::string& from) {
    const auto j = nlohmann::json::parse(
        std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), nullptr,
        false);
    if (!j.is_object() || !j.contains("t") || !j["t"].is_string()) {
      spdlog::warn("gossip: malformed key message from {}", from);
      return;
    }
    const std::string t = j["t"].get<std::string>();
    if (t == "req") {
      const auto a = parse_action(j.value("a", ""));
      if (!a || !j.value("op", nlohmann::json()).is_number_unsigned()) return;
      const auto gen = j.value("g", std::uint64_t{0});
      auto rep = apply_key_op(*a, j.value("k", ""), gen);
      nlohmann::json ack = {{"t", "ack"},
                            {"op", j["op"]},
                            {"ok", rep.ok},
                            {"e", rep.error},
                            {"keys", to_json(rep.keys)}};
      if (from != self_meta.name) {
        auto r = send_user_to(from, user_type_keys, to_bytes(ack));
        if (!r) spdlog::warn("gossip: cannot answer key operation: {}", r.error().message);
      }
    } else if (t == "ack") {
      if (!j.value("op", nlohmann::json()).is_number_unsigned()) return;
      auto it = key_ops.find(j["op"].get<std::uint64_t>());
      if (it == key_ops.end()) return;
      auto op = it->second;
      if (!op->asked.contains(from)) return;
      key_member_reply rep;
      rep.name = from;
      rep.ok = j.value("ok", false);
      rep.error = j.value("e", "");
      rep.keys = keys_from_json(j.value("keys", nlohmann::json()));
      op->replies[from] = std::move(rep);
      if (op->replies.size() == op->asked.size()) finish_op(op->id);
    } else if (t == "sync") {
      const auto gen = j.value("g", std::uint64_t{0});
      if (gen <= key_generation || !j.contains("keys") || !j["keys"].is_array() ||
          j["keys"].empty()) {
        return;
      }
      std::vector<gossip::secret_key> keys;
      for (const auto& x : j["keys"]) {
        if (!x.is_string()) return;
        auto k = gossip::secret_key::from_base64(x.get<std::string>());
        if (!k) return;
        keys.push_back(k.value());
      }
      for (const auto& k : keys) {
        if (auto r = ring.install(k); r) std::erase(removed_keys, key_fingerprint(k));
      }
      if (auto r = ring.use(keys.front()); !r) {
        spdlog::warn("gossip: keyring sync from {}: {}", from, r.error().message);
        return;
      }
      key_generation = gen;
      persist_keys();
      spdlog::info("gossip: keyring synced from {} (generation {}, primary {})", from, gen,
                   key_fingerprint(keys.front()));
    }
  }

  template <class Payload>  // std::vector<std::byte> or gossip::frame_buffer
  result<void> send_user_to(const std::string& name, std::uint8_t type, Payload payload) {
    if (!core || stopped) {
      return make_error(gossip::errc::unknown_member,
                        fmt::format("direct message to {}: gossip is not running", name));
    }
    auto m = core->find(name);
    if (!m) {
      return make_error(gossip::errc::unknown_member,
                        fmt::format("direct message to {}: no such member", name));
    }
    if (m->state == gossip::member_state::dead || m->state == gossip::member_state::left) {
      return make_error(
          gossip::errc::unknown_member,
          fmt::format("direct message to {}: member is {}", name, gossip::to_string(m->state)));
    }
    return core->send_user(m->meta.addr, type, std::move(payload));
  }

  std::set<std::string> live_peer_set() const {
    std::set<std::string> out;
    for (const auto& m : core->members()) {
      if (m.meta.name != self_meta.name &&
          (m.state == gossip::member_state::alive || m.state == gossip::member_state::suspect)) {
        out.insert(m.meta.name);
      }
    }
    return out;
  }

  nlohmann::json request_json(const pending_op& op) const {
    return {{"t", "req"},
            {"op", op.id},
            {"a", std::string(to_string(op.action))},
            {"k", op.key},
            {"g", key_generation}};
  }

  // One phase: apply locally, ask every live member, collect answers.
  void start_op(key_action a, const std::string& key_text,
                std::function<void(result<key_report>)> done) {
    auto op = std::make_shared<pending_op>();
    op->id = next_op_id++;
    op->action = a;
    op->key = key_text;
    op->done = std::move(done);
    op->asked = live_peer_set();
    const std::uint64_t gen = a == key_action::list ? key_generation : key_generation + 1;
    op->self_reply = apply_key_op(a, key_text, gen);
    key_ops[op->id] = op;
    if (op->asked.empty()) {
      finish_op(op->id);
      return;
    }
    // Spread by gossip (sealed with our primary, which for `use` is now the new key); members
    // that have not answered after a third of the timeout also get it directly.
    auto req = request_json(*op);
    req["g"] = gen;
    if (auto r = core->broadcast(user_type_keys, to_bytes(req)); !r) {
      spdlog::warn("gossip: key operation broadcast: {}", r.error().message);
    }
    op->deadline = clock::now() + options.key_op_timeout;
    op->timer = std::make_unique<asio::steady_timer>(io);
    arm_op_timer(op, clock::now() + options.key_op_timeout / 3, gen);
  }

  void arm_op_timer(const std::shared_ptr<pending_op>& op, clock::time_point when,
                    std::uint64_t gen) {
    op->timer->expires_at(when);
    auto self = shared_from_this();
    const auto id = op->id;
    op->timer->async_wait([self, id, gen](error_code ec) {
      if (ec || self->stopped) return;
      auto it = self->key_ops.find(id);
      if (it == self->key_ops.end()) return;
      auto op = it->second;
      if (op->resent || clock::now() >= op->deadline) {
        self->finish_op(id);
        return;
      }
      op->resent = true;
      auto req = self->request_json(*op);
      req["g"] = gen;
      for (const auto& name : op->asked) {
        if (!op->replies.contains(name))
          (void)self->send_user_to(name, user_type_keys, to_bytes(req));
      }
      self->arm_op_timer(op, op->deadline, gen);
    });
  }

  void finish_op(std::uint64_t id) {
    auto it = key_ops.find(id);
    if (it == key_ops.end()) return;
    auto op = it->second;
    key_ops.erase(it);
    if (op->timer) op->timer->cancel();
    key_report rep;
    rep.action = op->action;
    rep.replies.push_back(op->self_reply);
    for (auto& [name, r] : op->replies) rep.replies.push_back(std::move(r));
    for (const auto& name : op->asked) {
      if (!op->replies.contains(name)) rep.missing.push_back(name);
    }
    auto done = std::move(op->done);
    if (done) done(std::move(rep));
  }

  void install_handlers() {
    core->set_user_handler([this](std::uint8_t type, std::span<const std::byte> payload,
                                  const gossip::address&, const std::string& origin) {
      const std::string& sender = stream_sender ? *stream_sender : origin;
      if (type == user_type_keys) {
        on_key_message(payload, sender);
        return;
      }
      if (!user_fn) return;
      // Direct messages arrive only on streams, broadcasts only in packets.
      if ((type == user_type_logs || type == user_type_swarm) && stream_sender == nullptr) {
        return;  // direct only: a packet's origin name is only claimed
      }
      const std::string& name = stream_sender ? *stream_sender : origin;
      try {
        user_fn(type, payload, name);
      } catch (const std::exception& e) {
        spdlog::warn("gossip: user handler for type {} from {} threw: {}", type, name, e.what());
      }
    });
    core->set_event_handler([this](const gossip::member_event& ev) {
      if (!event_fn) return;
      try {
        event_fn(ev);
      } catch (const std::exception& e) {
        spdlog::warn("gossip: event handler ({} {}) threw: {}", gossip::to_string(ev.type),
                     ev.who.meta.name, e.what());
      }
    });
  }

  gossip::associated_context ctx() const { return {options.cluster_id, 1, 1}; }

  std::vector<std::byte> wrap(const std::vector<std::byte>& body) {
    return encode_envelope(self_meta.name, self_meta.addr.port, epoch, next_seq++, body);
  }

  // Opened plaintext -> envelope, after the replay check. Counts drops.
  std::optional<envelope> accept(std::span<const std::byte> plain) {
    auto e = parse_envelope(plain);
    if (!e) {
      ++counters.dropped_envelope;
      return std::nullopt;
    }
    if (!replays.accept(e->name, e->epoch, e->seq)) {
      ++counters.dropped_replay;
      return std::nullopt;
    }
    return e;
  }

  // transport --------------------------------------------------------------
  void send_packet(const gossip::address& to, std::vector<std::byte> bytes) override {
    if (stopped) return;
    error_code ec;
    const auto addr = asio::ip::make_address(to.host, ec);
    if (ec) return;
    const auto* lag = lagging_key_for(to);
    auto sealed = std::make_shared<std::vector<std::byte>>(
        lag ? gossip::seal(gossip::keyring(*lag), wrap(bytes), ctx())
            : gossip::seal(ring, wrap(bytes), ctx()));
    counters.sealed_bytes_out += sealed->size();
    udp_socket.async_send_to(asio::buffer(*sealed), udp::endpoint(addr, to.port),
                             [sealed](error_code, std::size_t) {});
  }

  void send_stream(const gossip::address& to, std::vector<std::byte> bytes) override {
    // One copy, as the envelope's wrap made before sealing; the large direct messages (swarm
    // pieces) come through the frame_buffer overload without it.
    auto b = take_frame_buffer(bytes.size());
    if (!bytes.empty()) std::memcpy(b.bytes().data(), bytes.data(), bytes.size());
    send_stream(to, std::move(b));
  }

  void send_stream(const gossip::address& to, gossip::frame_buffer bytes) override {
    if (stopped) return;
    const auto now = clock::now();
    std::shared_ptr<out_stream> st;
    if (auto id = out_table.find(to.to_string())) {
      st = out_streams.at(*id);
      ++counters.frames_reused;
    } else {
      auto added = out_table.add(to.to_string(), now);
      for (auto victim : added.evicted) close_out(victim, /*evicted=*/true);
      st = std::make_shared<out_stream>(io, ctx());
      st->id = added.entry;
      st->to = to;
      out_streams[st->id] = st;
      ++counters.streams_opened;
      asio::co_spawn(io, write_loop(st), asio::detached);
      arm_conn_timer();
    }
    // Sealed now, in queue order: frame n of the stream is the n-th frame written.
    const auto* lag = lagging_key_for(to);
    auto frame = std::make_shared<out_stream::frame>();
    frame->sealed = std::move(bytes);
    prepend_envelope(frame->sealed, self_meta.name, self_meta.addr.port, epoch, next_seq++);
    if (lag) {
      st->sealer.seal_in_place(gossip::keyring(*lag), frame->sealed);
    } else {
      st->sealer.seal_in_place(ring, frame->sealed);
    }
    const auto n = static_cast<std::uint32_t>(frame->sealed.size());
    for (int i = 0; i < 4; ++i) {
      frame->length[i] = static_cast<std::byte>((n >> (8 * (3 - i))) & 0xff);
    }
    counters.sealed_bytes_out += 4 + frame->sealed.size();
    st->queue.push_back(std::move(frame));
    out_table.touch(st->id, now);
    out_table.set_protected(st->id, true);  // frames queued: evict others first
    st->wake.cancel();
  }

  // Closes an outgoing stream and forgets it; its queued frames are dropped (the layers above
  // repair loss: anti-entropy, retries).
  void close_out(connection_table::id id, bool evicted) {
    auto it = out_streams.find(id);
    if (it == out_streams.end()) return;
    auto st = it->second;
    out_streams.erase(it);
    out_table.remove(id);
    if (evicted) ++counters.streams_evicted;
    counters.frames_dropped += st->queue.size();
    st->queue.clear();
    st->closed = true;
    error_code ignored;
    st->sock.shutdown(tcp::socket::shutdown_both, ignored);
    st->sock.close(ignored);
    st->wake.cancel();
    st->deadline.cancel();
  }

  // Starts the deadline of one connect or write on `st`: when it passes, the socket closes and
  // the operation fails.
  void arm_deadline(const std::shared_ptr<out_stream>& st) {
    const auto op = ++st->op;
    st->deadline.expires_after(stream_deadline);
    st->deadline.async_wait([w = std::weak_ptr<out_stream>(st), op](error_code e) {
      auto s = w.lock();
      if (e || !s || s->op != op) return;
      error_code ignored;
      s->sock.close(ignored);
    });
  }
  void disarm_deadline(out_stream& st) {
    ++st.op;
    st.deadline.cancel();
  }

  // Connects, then writes queued frames one at a time until the stream is closed; while it
  // waits for frames, a read notices the peer closing (or talking, which streams never do).
  awaitable<void> write_loop(std::shared_ptr<out_stream> st) {
    auto self = shared_from_this();
    error_code ec;
    const auto addr = asio::ip::make_address(st->to.host, ec);
    if (!ec) {
      arm_deadline(st);
      co_await st->sock.async_connect(tcp::endpoint(addr, st->to.port),
                                      asio::redirect_error(asio::use_awaitable, ec));
      disarm_deadline(*st);
    }
    if (!ec && !st->closed) {
      error_code ignored;
      st->sock.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(io, watch_out(st), asio::detached);
    }
    while (!ec && !st->closed) {
      if (st->queue.empty()) {
        out_table.set_protected(st->id, false);
        st->wake.expires_at(clock::time_point::max());
        error_code woken;
        co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, woken));
        continue;
      }
      auto frame = st->queue.front();
      arm_deadline(st);
      const auto sealed = frame->sealed.bytes();
      const std::array<asio::const_buffer, 2> parts{asio::buffer(frame->length),
                                                    asio::buffer(sealed.data(), sealed.size())};
      co_await asio::async_write(st->sock, parts, asio::redirect_error(asio::use_awaitable, ec));
      disarm_deadline(*st);
      if (!ec && !st->queue.empty()) {
        st->queue.pop_front();
        give_back_tx_buffer(std::move(frame->sealed));
      }
    }
    if (ec && !st->closed && !stopped) ++counters.stream_errors;
    close_out(st->id, false);
  }

  awaitable<void> watch_out(std::shared_ptr<out_stream> st) {
    auto self = shared_from_this();
    std::array<std::byte, 1> b{};
    error_code ec;
    co_await st->sock.async_read_some(asio::buffer(b),
                                      asio::redirect_error(asio::use_awaitable, ec));
    // EOF, an error, or bytes a receiver never sends: this stream is over.
    if (!st->closed) close_out(st->id, false);
  }

  // Idle expiry of both tables, at the earliest deadline.
  void arm_conn_timer() {
    if (stopped) return;
    std::optional<clock::time_point> next = out_table.next_expiry();
    if (auto in = in_table.next_expiry(); in && (!next || *in < *next)) next = in;
    if (!next || *next >= conn_timer_at) return;
    conn_timer_at = *next;
    conn_timer.expires_at(*next);
    conn_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopped) return;
      self->conn_timer_at = clock::time_point::max();
      const auto now = clock::now();
      for (auto id : self->out_table.expire(now)) self->close_out(id, false);
      for (auto id : self->in_table.expire(now)) self->close_in(id);
      self->arm_conn_timer();
    });
  }

  void close_in(connection_table::id id) {
    in_table.remove(id);
    auto it = in_sockets.find(id);
    if (it == in_sockets.end()) return;
    error_code ignored;
    it->second->close(ignored);
    in_sockets.erase(it);
  }

  // inbound ----------------------------------------------------------------
  void receive() {
    auto self = shared_from_this();
    udp_socket.async_receive_from(asio::buffer(rx), rx_from, [self](error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || self->stopped) return;
      if (!ec) self->on_datagram(n);
      self->receive();
    });
  }

  void on_datagram(std::size_t n) {
    counters.sealed_bytes_in += n;
    auto plain = gossip::open(ring, std::span<const std::byte>(rx.data(), n), ctx());
    if (!plain) {
      ++counters.dropped_auth;
      return;
    }
    auto e = accept(plain.value());
    if (!e) return;
    const gossip::address from{rx_from.address().to_string(), rx_from.port()};
    note_peer_key(from, gossip::key_id{static_cast<std::uint8_t>(rx[1])});
    core->on_packet(from, e->body, clock::now());
    schedule();
  }

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      error_code ec;
      tcp::socket s(io);
      co_await acceptor.async_accept(s, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || stopped) co_return;
      if (ec) continue;
      asio::co_spawn(io, stream_session(std::move(s)), asio::detached);
    }
  }

  // Frame buffers of finished frames, for the next frame of any session: at most
  // rx_pool_max of at most rx_pool_max_bytes each are kept (a bound on what idle sessions cost).
  static constexpr std::size_t rx_pool_max = 4;
  static constexpr std::size_t rx_pool_max_bytes = 1 << 20;
  std::vector<std::vector<std::byte>> rx_pool;

  // Buffers of sealed frames already written, for the next frame sent (a swarm piece is read
  // straight into one: gossip_driver::take_frame_buffer): at most tx_pool_max of at most
  // tx_pool_max_bytes each, so a stream of pieces reuses the same memory instead of a fresh
  // allocation, page faults and zero-fill per piece (bench/RESULTS.md "CPU per byte").
  static constexpr std::size_t tx_pool_max = 8;
  static constexpr std::size_t tx_pool_max_bytes = (1 << 20) + gossip::frame_headroom;
  std::vector<gossip::frame_buffer> tx_pool;

  static constexpr std::size_t tx_pool_min_bytes = 64u << 10;  // smaller frames are cheap

  gossip::frame_buffer take_frame_buffer(std::size_t body) {
    gossip::frame_buffer b;
    // The smallest pooled buffer that fits; small frames never take the piece buffers.
    std::size_t best = tx_pool.size();
    const std::size_t need = gossip::frame_headroom + body + gossip::frame_tailroom;
    for (std::size_t i = 0; i < tx_pool.size() && need >= tx_pool_min_bytes; ++i) {
      if (tx_pool[i].capacity() >= need &&
          (best == tx_pool.size() || tx_pool[i].capacity() < tx_pool[best].capacity())) {
        best = i;
      }
    }
    if (best != tx_pool.size()) {
      b = std::move(tx_pool[best]);
      tx_pool.erase(tx_pool.begin() + static_cast<std::ptrdiff_t>(best));
    }
    b.reset(gossip::frame_headroom, body, gossip::frame_tailroom);
    return b;
  }
  void give_back_tx_buffer(gossip::frame_buffer b) {
    // Only buffers worth keeping: small frames are cheap to allocate.
    if (b.capacity() < tx_pool_min_bytes || b.capacity() > tx_pool_max_bytes) return;
    if (tx_pool.size() >= tx_pool_max) {
      // Keep the larger ones: replace the smallest if this one is larger.
      auto smallest = std::min_element(
          tx_pool.begin(), tx_pool.end(),
          [](const auto& a, const auto& c) { return a.capacity() < c.capacity(); });
      if (smallest->capacity() >= b.capacity()) return;
      *smallest = std::move(b);
      return;
    }
    tx_pool.push_back(std::move(b));
  }

  std::vector<std::byte> take_rx_buffer() {
    if (rx_pool.empty()) return {};
    auto b = std::move(rx_pool.back());
    rx_pool.pop_back();
    return b;
  }
  void give_back_rx_buffer(std::vector<std::byte> b) {
    if (rx_pool.size() < rx_pool_max && b.capacity() <= rx_pool_max_bytes) {
      rx_pool.push_back(std::move(b));
    }
  }

  awaitable<void> stream_session(tcp::socket sock) {
    auto self = shared_from_this();
    auto s = std::make_shared<tcp::socket>(std::move(sock));
    auto added = in_table.add("in/" + std::to_string(next_in_key++), clock::now());
    for (auto victim : added.evicted) {
      close_in(victim);
      ++counters.streams_evicted;
    }
    const auto id = added.entry;
    in_sockets[id] = s;
    arm_conn_timer();
    gossip::stream_opener opener(ctx());
    for (std::uint64_t frames = 0;; ++frames) {
      error_code ec;
      std::array<std::byte, 4> len_bytes{};
      co_await asio::async_read(*s, asio::buffer(len_bytes),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      std::uint32_t n = 0;
      for (auto b : len_bytes) n = (n << 8) | std::to_integer<std::uint32_t>(b);
      if (n == 0 || n > max_frame_bytes) {
        ++counters.dropped_envelope;
        break;
      }
      // A recycled buffer (rx_pool) when there is one, so a stream of 256 KiB swarm pieces is
      // not a fresh allocation, page faults and zero-fill per frame. Beyond what it holds, the
      // buffer grows as bytes arrive (64 KiB, then doubling), so a peer that has not
      // authenticated anything holds what it actually sent, not the 8 MiB a prefix may claim.
      std::vector<std::byte> buf = take_rx_buffer();
      for (std::size_t have = 0; have < n && !ec;) {
        const std::size_t want = std::min<std::size_t>(n, std::max<std::size_t>(2 * have, 65536));
        if (buf.size() < want) buf.resize(want);
        co_await asio::async_read(*s, asio::buffer(buf.data() + have, want - have),
                                  asio::redirect_error(asio::use_awaitable, ec));
        have = want;
      }
      const std::span<const std::byte> frame(buf.data(), n);
      if (ec) {
        ++counters.stream_errors;
        break;
      }
      counters.sealed_bytes_in += n + 4;
      // Opened in place: the plaintext overwrites the ciphertext in `buf` (no copy, no
      // allocation); the envelope and the message inside are views into it.
      auto plain = opener.open_in_place(ring, std::span<std::byte>(buf.data(), n));
      if (!plain) {
        ++counters.dropped_auth;
        break;
      }
      auto e = accept(plain.value());
      if (!e || stopped) break;
      error_code rec;
      const auto remote = s->remote_endpoint(rec);
      if (rec) break;
      const gossip::address from{remote.address().to_string(), e->port};
      // Each frame names the key that sealed it: the sealed header (version, key id) follows
      // the stream id in frame 0 and starts every later frame.
      const std::size_t key_at = frames == 0 ? gossip::stream_id_bytes + 1 : 1;
      if (frame.size() > key_at) {
        note_peer_key(from, gossip::key_id{static_cast<std::uint8_t>(frame[key_at])});
      }
      // Authenticated: idle for inbound_idle from now, and kept over unauthenticated ones.
      in_table.touch(id, clock::now());
      in_table.set_protected(id, true);
      stream_sender = &e->name;
      core->on_stream(from, e->body, clock::now());
      stream_sender = nullptr;
      give_back_rx_buffer(std::move(buf));
      schedule();
      if (!in_sockets.contains(id)) break;  // closed meanwhile (evicted or expired)
    }
    close_in(id);
  }

  // timers -----------------------------------------------------------------
  void schedule() {
    if (stopped) return;
    auto when = core->next_deadline();
    if (join_pending() && next_join < when) when = next_join;
    const auto now = clock::now();
    if (when < now) when = now;
    timer.expires_at(when);
    auto self = shared_from_this();
    timer.async_wait([self](error_code ec) {
      if (ec || self->stopped) return;
      const auto now = clock::now();
      if (self->join_pending() && now >= self->next_join) self->try_join(now);
      self->core->on_tick(now);
      self->schedule();
    });
  }

  bool join_pending() const { return !seeds.empty() && core->live_count() <= 1; }

  void try_join(clock::time_point now) {
    core->join(seeds, now);
    ++join_attempts;
    // 1 s, 2 s, 4 s ... up to 30 s between attempts.
    const auto backoff = std::chrono::seconds(std::min(30, 1 << std::min(join_attempts - 1, 5)));
    next_join = now + backoff;
    if (join_attempts > 1) {
      spdlog::info("gossip: still alone, joining again (attempt {}, next in {} s)", join_attempts,
                   backoff.count());
    }
  }
};

gossip_driver::gossip_driver(asio::io_context& io, gossip::keyring ring, gossip::node_meta self,
                             gossip_options options)
    : impl_(std::make_shared<impl>(io, std::move(ring), std::move(self), std::move(options))) {}

gossip_driver::~gossip_driver() {
  impl_->stopped = true;
  error_code ec;
  impl_->timer.cancel();
  impl_->conn_timer.cancel();
  while (!impl_->out_streams.empty()) impl_->close_out(impl_->out_streams.begin()->first, false);
  while (!impl_->in_sockets.empty()) impl_->close_in(impl_->in_sockets.begin()->first);
  impl_->udp_socket.close(ec);
  impl_->acceptor.close(ec);
}

result<void> gossip_driver::start() {
  auto& i = *impl_;
  MESH_TRY(auto bind, api::parse_endpoint(i.options.bind));
  const std::string advertise = i.options.advertise.empty() ? i.options.bind : i.options.advertise;
  MESH_TRY(auto adv, api::parse_endpoint(advertise));
  if (adv.address().is_unspecified()) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("--bind {} listens on every address: give --advertise HOST:PORT, "
                                  "the address other nodes reach this one at",
                                  i.options.bind));
  }
  // UDP and TCP share one port. With port 0 the kernel picks the UDP port,
  // which may already be taken for TCP (e.g. by an outgoing connection), so
  // try a few picks before giving up.
  error_code ec;
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < (bind.port() == 0 ? 20 : 1); ++attempt) {
    ec.clear();
    error_code ignored;
    i.udp_socket.close(ignored);
    i.acceptor.close(ignored);
    i.udp_socket.open(bind.protocol() == tcp::v4() ? udp::v4() : udp::v6(), ec);
    if (!ec) i.udp_socket.bind(udp::endpoint(bind.address(), bind.port()), ec);
    if (ec) {
      return make_error(
          deploy::errc::invalid_argument,
          fmt::format("gossip: cannot bind UDP {}: {}", i.options.bind, ec.message()));
    }
    port = i.udp_socket.local_endpoint().port();
    i.acceptor.open(bind.protocol(), ec);
    if (!ec) i.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) i.acceptor.bind(tcp::endpoint(bind.address(), port), ec);
    if (!ec) i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) break;
  }
  if (ec) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("gossip: cannot listen on TCP {}:{}: {}",
                                  bind.address().to_string(), port, ec.message()));
  }
  i.self_meta.addr = {adv.address().to_string(), adv.port() == 0 ? port : adv.port()};
  for (const auto& s : i.options.join) {
    MESH_TRY(auto ep, api::parse_endpoint(s));
    i.seeds.push_back({ep.address().to_string(), ep.port()});
  }
  std::uint64_t seed = 0;
  randombytes_buf(&seed, sizeof seed);
  i.core = std::make_unique<gossip::membership>(i.options.cfg, i.self_meta, i, seed);
  i.install_handlers();
  i.key_generation = i.options.keyring_generation;
  i.removed_keys = i.options.removed_keys;
  randombytes_buf(&i.next_op_id, sizeof i.next_op_id);
  // A random start: answers meant for a previous life of this node match no operation.
  i.receive();
  asio::co_spawn(i.io, i.accept_loop(), asio::detached);
  if (!i.seeds.empty()) i.try_join(clock::now());
  i.schedule();
  return ok();
}

void gossip_driver::leave() {
  auto& i = *impl_;
  if (!i.core || i.stopped) return;
  i.core->leave(clock::now());
  i.core->on_tick(clock::now());  // send the leave now rather than at the next deadline
}

void gossip_driver::set_user_handler(user_handler h) { impl_->user_fn = std::move(h); }

void gossip_driver::set_event_handler(std::function<void(const gossip::member_event&)> h) {
  impl_->event_fn = std::move(h);
}

result<void> gossip_driver::send_user(const std::string& member_name, std::uint8_t type,
                                      std::vector<std::byte> payload) {
  return impl_->send_user_to(member_name, type, std::move(payload));
}

result<void> gossip_driver::send_user(const std::string& member_name, std::uint8_t type,
                                      gossip::frame_buffer payload) {
  return impl_->send_user_to(member_name, type, std::move(payload));
}

gossip::frame_buffer gossip_driver::take_frame_buffer(std::size_t body) {
  return impl_->take_frame_buffer(body);
}

result<void> gossip_driver::broadcast(std::uint8_t type, std::vector<std::byte> payload) {
  auto& i = *impl_;
  if (!i.core || i.stopped) {
    return make_error(gossip::errc::unknown_member,
                      fmt::format("broadcast type {}: gossip is not running", type));
  }
  MESH_CHECK(i.core->broadcast(type, std::move(payload)));
  return ok();
}

void gossip_driver::run_key_operation(key_action a, const std::string& key_base64,
                                      std::function<void(result<key_report>)> done) {
  auto& i = *impl_;
  if (!i.core || i.stopped) {
    done(make_error(gossip::errc::unknown_member,
                    fmt::format("key {}: gossip is not running", to_string(a))));
    return;
  }
  if (a == key_action::list) {
    i.start_op(a, "", std::move(done));
    return;
  }
  auto k = gossip::secret_key::from_base64(key_base64);
  if (!k) {
    done(k.error().with_context(fmt::format("key {}", to_string(a))));
    return;
  }
  const auto fp = key_fingerprint(k.value());
  if (a == key_action::remove && i.ring.primary() == k.value()) {
    done(make_error(gossip::errc::primary_key,
                    fmt::format("key remove {}: it is the primary key; `keys use` another key "
                                "first",
                                fp)));
    return;
  }
  if (a != key_action::use) {
    i.start_op(a, key_base64, std::move(done));
    return;
  }
  if (i.ring.find(k.value().id()) == nullptr || !(*i.ring.find(k.value().id()) == k.value())) {
    done(make_error(gossip::errc::key_not_found,
                    fmt::format("key use {}: not installed on {}; `keys install` it first", fp,
                                i.self_meta.name)));
    return;
  }
  // Phase 1: every answering member must hold the key, or switching would cut it off.
  auto weak = std::weak_ptr<impl>(impl_);
  i.start_op(key_action::list, "",
             [weak, key_base64, fp, done = std::move(done)](result<key_report> listed) mutable {
               auto self = weak.lock();
               if (!self) return;
               if (!listed) return done(listed.error());
               std::vector<std::string> lacking;
               for (const auto& r : listed.value().replies) {
                 const bool has = std::any_of(r.keys.begin(), r.keys.end(), [&](const key_info& k) {
                   return k.fingerprint == fp;
                 });
                 if (!has) lacking.push_back(r.name);
               }
               if (!lacking.empty()) {
                 std::string names;
                 for (const auto& n : lacking) names += (names.empty() ? "" : ", ") + n;
                 return done(make_error(gossip::errc::key_not_found,
                                        fmt::format("key use {}: not installed on {}; `keys "
                                                    "install` it first (nothing changed)",
                                                    fp, names)));
               }
               self->start_op(key_action::use, key_base64, std::move(done));
             });
}

std::vector<key_info> gossip_driver::local_keys() const { return describe(impl_->ring); }

std::vector<std::string> gossip_driver::live_peers() const {
  std::vector<std::string> out;
  if (!impl_->core) return out;
  for (const auto& m : impl_->core->members()) {
    if (m.meta.name == impl_->self_meta.name) continue;
    if (m.state == gossip::member_state::alive || m.state == gossip::member_state::suspect) {
      out.push_back(m.meta.name);
    }
  }
  return out;
}

std::vector<gossip::member> gossip_driver::members() const {
  return impl_->core ? impl_->core->members() : std::vector<gossip::member>{};
}

const gossip::metrics& gossip_driver::core_stats() const {
  static const gossip::metrics empty{};
  return impl_->core ? impl_->core->stats() : empty;
}

const driver_counters& gossip_driver::counters() const { return impl_->counters; }

std::string gossip_driver::prometheus_text() const {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP meshdeploy_gossip_{} {}\n# TYPE meshdeploy_gossip_{} {}\n", name,
                       help, name, type);
  };
  std::map<std::string, int> by_state = {{"alive", 0}, {"suspect", 0}, {"dead", 0}, {"left", 0}};
  for (const auto& m : members()) ++by_state[std::string(gossip::to_string(m.state))];
  metric("members", "gauge", "Members in this node's view, by state.");
  for (const auto& [state, n] : by_state) {
    out += fmt::format("meshdeploy_gossip_members{{state=\"{}\"}} {}\n", state, n);
  }
  const auto& s = core_stats();
  const auto& c = counters();
  metric("packets_total", "counter", "Gossip packets handed to or received from the network.");
  out += fmt::format("meshdeploy_gossip_packets_total{{direction=\"in\"}} {}\n", s.packets_in);
  out += fmt::format("meshdeploy_gossip_packets_total{{direction=\"out\"}} {}\n", s.packets_out);
  metric("streams_total", "counter", "Gossip stream messages.");
  out += fmt::format("meshdeploy_gossip_streams_total{{direction=\"in\"}} {}\n", s.streams_in);
  out += fmt::format("meshdeploy_gossip_streams_total{{direction=\"out\"}} {}\n", s.streams_out);
  metric("wire_bytes_total", "counter",
         "Sealed UDP payloads and TCP stream frames (envelope, crypto and frame length included; "
         "IP/UDP/TCP headers and TCP ACKs not).");
  out +=
      fmt::format("meshdeploy_gossip_wire_bytes_total{{direction=\"in\"}} {}\n", c.sealed_bytes_in);
  out += fmt::format("meshdeploy_gossip_wire_bytes_total{{direction=\"out\"}} {}\n",
                     c.sealed_bytes_out);
  metric("dropped_total", "counter", "Input dropped, by reason; dropped input changes nothing.");
  const std::pair<const char*, std::uint64_t> drops[] = {{"auth", c.dropped_auth},
                                                         {"replay", c.dropped_replay},
                                                         {"envelope", c.dropped_envelope},
                                                         {"malformed", s.dropped_malformed},
                                                         {"too_large", s.dropped_too_large},
                                                         {"unknown_type", s.dropped_unknown_type},
                                                         {"version", s.dropped_version},
                                                         {"wrong_target", s.dropped_wrong_target},
                                                         {"incompatible", s.dropped_incompatible}};
  for (const auto& [reason, n] : drops) {
    out += fmt::format("meshdeploy_gossip_dropped_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  struct stream_counter {
    const char* name;
    const char* help;
    std::uint64_t value;
  };
  const stream_counter stream_counters[] = {
      {"stream_errors_total", "Stream connect, read and write failures.", c.stream_errors},
      {"streams_opened_total",
       "Outgoing stream connections opened (each carries many frames while in use).",
       c.streams_opened},
      {"stream_frames_reused_total", "Stream messages sent on an already open connection.",
       c.frames_reused},
      {"streams_evicted_total", "Stream connections closed to stay within the connection limits.",
       c.streams_evicted},
      {"stream_frames_dropped_total",
       "Stream messages queued on a connection that closed before they were written.",
       c.frames_dropped},
  };
  for (const auto& sc : stream_counters) {
    metric(sc.name, "counter", sc.help);
    out += fmt::format("meshdeploy_gossip_{} {}\n", sc.name, sc.value);
  }
  metric("suspicions_raised_total", "counter", "Members this node accused.");
  out += fmt::format("meshdeploy_gossip_suspicions_raised_total {}\n", s.suspicions_raised);
  metric("suspicions_refuted_total", "counter", "Suspicions about this node that it refuted.");
  out += fmt::format("meshdeploy_gossip_suspicions_refuted_total {}\n", s.suspicions_refuted);
  metric("members_declared_dead_total", "counter", "Members this node declared dead.");
  out += fmt::format("meshdeploy_gossip_members_declared_dead_total {}\n", s.members_declared_dead);
  metric("broadcast_queue_depth", "gauge", "Broadcasts waiting to be piggybacked.");
  out += fmt::format("meshdeploy_gossip_broadcast_queue_depth {}\n", s.broadcast_queue_depth);
  return out;
}

std::string gossip_driver::local_address() const { return impl_->self_meta.addr.to_string(); }

}  // namespace meshdeploy::mesh
