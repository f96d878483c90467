#include "node/api/host_check.h"

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace meshdeploy::api {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool valid_allowed_host(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.front() == '-') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

bool host_allowed(std::string_view host, std::span<const std::string> allowed) {
  if (host.empty() || host.size() > 300) return false;
  boost::system::error_code ec;
  if (host.front() == '[') {
    // [v6] or [v6]:port. Zone ids (%eth0) are not valid in a Host header; make_address_v6
    // would accept them, so they are refused first.
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1)))) return false;
    const std::string inner(host.substr(1, close - 1));
    if (inner.find('%') != std::string::npos) return false;
    boost::asio::ip::make_address_v6(inner, ec);
    return !ec;
  }
  std::string_view name = host;
  if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    if (!all_digits(host.substr(colon + 1))) return false;  // also refuses a bare IPv6
    name = host.substr(0, colon);
  }
  if (name.empty()) return false;
  boost::asio::ip::make_address_v4(std::string(name), ec);
  if (!ec) return true;
  if (name.back() == '.') name.remove_suffix(1);
  // localhost and its subdomains (RFC 6761: they resolve to loopback, never through a DNS server
  // an attacker controls; the S3 front end's virtual-host style uses BUCKET.localhost).
  if (iequal(name, "localhost")) return true;
  if (name.size() > 10 && iequal(name.substr(name.size() - 10), ".localhost")) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    std::string_view x = a;
    if (!x.empty() && x.back() == '.') x.remove_suffix(1);
    return !x.empty() && iequal(name, x);
  });
}

api_response misdirected_host(std::string_view host) {
  api_response r;
  r.status = 421;
  r.body =
      nlohmann::json{
          {"error",
           {{"code", "MisdirectedRequest"},
            {"message",
             fmt::format("this node does not answer to Host '{}': only IP addresses, localhost "
                         "and the names in the node setting api_allowed_host (--api-allowed-host "
                         "NAME, MESHDEPLOY_NODE_API_ALLOWED_HOST) are accepted, against DNS "
                         "rebinding",
                         host)}}}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace meshdeploy::api
