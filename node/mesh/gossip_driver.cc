#include "node/mesh/gossip_driver.h"

#include "gossip/errc.h"
#include "gossip/membership.h"
#include "gossip/packet_crypto.h"
#include "node/api/server.h"
#include "node/deploy/errc.h"

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
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <map>

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
constexpr auto stream_deadline = std::chrono::seconds(10);

void put_u16(std::vector<std::byte>& out, std::uint16_t v) {
  out.push_back(static_cast<std::byte>(v >> 8));
  out.push_back(static_cast<std::byte>(v & 0xff));
}
void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64(std::span<const std::byte> b) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(b[i]);
  return v;
}

struct envelope {
  std::string name;
  std::uint16_t port = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::span<const std::byte> body;
};

std::optional<envelope> parse_envelope(std::span<const std::byte> p) {
  if (p.empty()) return std::nullopt;
  const std::size_t n = std::to_integer<std::size_t>(p[0]);
  if (n == 0 || p.size() < 1 + n + 2 + 16) return std::nullopt;
  envelope e;
  e.name.assign(reinterpret_cast<const char*>(p.data() + 1), n);
  e.port = static_cast<std::uint16_t>((std::to_integer<unsigned>(p[1 + n]) << 8) |
                                      std::to_integer<unsigned>(p[2 + n]));
  e.epoch = get_u64(p.subspan(3 + n, 8));
  e.seq = get_u64(p.subspan(11 + n, 8));
  e.body = p.subspan(19 + n);
  return e;
}

}  // namespace

struct gossip_driver::impl : std::enable_shared_from_this<impl>, gossip::transport {
  impl(asio::io_context& io_, gossip::keyring ring_, gossip::node_meta self, gossip_options o)
      : io(io_),
        ring(std::move(ring_)),
        options(std::move(o)),
        udp_socket(io_),
        acceptor(io_),
        timer(io_),
        self_meta(std::move(self)) {
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

  void install_handlers() {
    core->set_user_handler([this](std::uint8_t type, std::span<const std::byte> payload,
                                  const gossip::address&, const std::string& origin) {
      if (!user_fn) return;
      // Direct messages arrive only on streams, broadcasts only in packets.
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
    std::vector<std::byte> p;
    p.reserve(body.size() + self_meta.name.size() + 19);
    p.push_back(static_cast<std::byte>(self_meta.name.size()));
    for (char c : self_meta.name) p.push_back(static_cast<std::byte>(c));
    put_u16(p, self_meta.addr.port);
    put_u64(p, epoch);
    put_u64(p, next_seq++);
    p.insert(p.end(), body.begin(), body.end());
    return p;
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
    auto sealed = std::make_shared<std::vector<std::byte>>(gossip::seal(ring, wrap(bytes), ctx()));
    counters.sealed_bytes_out += sealed->size();
    udp_socket.async_send_to(asio::buffer(*sealed), udp::endpoint(addr, to.port),
                             [sealed](error_code, std::size_t) {});
  }

  void send_stream(const gossip::address& to, std::vector<std::byte> bytes) override {
    if (stopped) return;
    gossip::stream_sealer sealer(ctx());
    auto frame = std::make_shared<std::vector<std::byte>>();
    const std::vector<std::byte> sealed = sealer.seal(ring, wrap(bytes));
    const auto n = static_cast<std::uint32_t>(sealed.size());
    for (int i = 3; i >= 0; --i) frame->push_back(static_cast<std::byte>((n >> (8 * i)) & 0xff));
    frame->insert(frame->end(), sealed.begin(), sealed.end());
    counters.sealed_bytes_out += frame->size();
    asio::co_spawn(io, send_stream_co(to, frame), asio::detached);
  }

  awaitable<void> send_stream_co(gossip::address to,
                                 std::shared_ptr<std::vector<std::byte>> frame) {
    auto self = shared_from_this();
    error_code ec;
    const auto addr = asio::ip::make_address(to.host, ec);
    if (ec) co_return;
    tcp::socket s(io);
    asio::steady_timer deadline(io);
    deadline.expires_after(stream_deadline);
    deadline.async_wait([&s](error_code e) {
      if (!e) s.close();
    });
    co_await s.async_connect(tcp::endpoint(addr, to.port),
                             asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      co_await asio::async_write(s, asio::buffer(*frame),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) ++counters.stream_errors;
    error_code ignored;
    s.shutdown(tcp::socket::shutdown_both, ignored);
    s.close(ignored);
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
    core->on_packet({rx_from.address().to_string(), rx_from.port()}, e->body, clock::now());
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

  awaitable<void> stream_session(tcp::socket s) {
    auto self = shared_from_this();
    asio::steady_timer deadline(io);
    deadline.expires_after(stream_deadline);
    deadline.async_wait([&s](error_code e) {
      if (!e) s.close();
    });
    gossip::stream_opener opener(ctx());
    for (int frames = 0; frames < 64; ++frames) {
      error_code ec;
      std::array<std::byte, 4> len_bytes{};
      co_await asio::async_read(s, asio::buffer(len_bytes),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      std::uint32_t n = 0;
      for (auto b : len_bytes) n = (n << 8) | std::to_integer<std::uint32_t>(b);
      if (n == 0 || n > max_frame_bytes) {
        ++counters.dropped_envelope;
        break;
      }
      std::vector<std::byte> frame(n);
      co_await asio::async_read(s, asio::buffer(frame),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        ++counters.stream_errors;
        break;
      }
      counters.sealed_bytes_in += n + 4;
      auto plain = opener.open(ring, frame);
      if (!plain) {
        ++counters.dropped_auth;
        break;
      }
      auto e = accept(plain.value());
      if (!e || stopped) break;
      error_code rec;
      const auto remote = s.remote_endpoint(rec);
      if (rec) break;
      stream_sender = &e->name;
      core->on_stream({remote.address().to_string(), e->port}, e->body, clock::now());
      stream_sender = nullptr;
      schedule();
    }
    error_code ignored;
    s.close(ignored);
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
  auto& i = *impl_;
  if (!i.core || i.stopped) {
    return make_error(gossip::errc::unknown_member,
                      fmt::format("direct message to {}: gossip is not running", member_name));
  }
  auto m = i.core->find(member_name);
  if (!m) {
    return make_error(gossip::errc::unknown_member,
                      fmt::format("direct message to {}: no such member", member_name));
  }
  if (m->state == gossip::member_state::dead || m->state == gossip::member_state::left) {
    return make_error(gossip::errc::unknown_member,
                      fmt::format("direct message to {}: member is {}", member_name,
                                  gossip::to_string(m->state)));
  }
  MESH_CHECK(i.core->send_user(m->meta.addr, type, std::move(payload)));
  return ok();
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
  metric("wire_bytes_total", "counter", "Bytes on the wire, headers and crypto included.");
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
  metric("stream_errors_total", "counter", "Stream connect, read and write failures.");
  out += fmt::format("meshdeploy_gossip_stream_errors_total {}\n", c.stream_errors);
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
