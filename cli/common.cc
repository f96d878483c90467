#include "cli/common.h"

#include "cli/signer.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <iostream>

namespace meshdeploy::cli {

using nlohmann::json;

void print_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
}

int fail_transport(const error& e) {
  print_error(e.message);
  return e.code == client_errc::unreachable ? exit_unreachable : exit_failed;
}

reply_result check_reply(const result<http_reply>& r) {
  if (!r) return {fail_transport(r.error()), {}};
  const http_reply& rep = r.value();
  json body = json::parse(rep.body, nullptr, false);
  if (rep.status >= 200 && rep.status < 300) {
    if (body.is_discarded()) body = json(rep.body);
    return {exit_ok, std::move(body)};
  }
  std::string message = fmt::format("the node answered HTTP {}", rep.status);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  print_error(message);
  if (rep.status == 401 || rep.status == 403) return {exit_denied, {}};
  if (rep.status >= 400 && rep.status < 500) return {exit_usage, {}};
  return {exit_failed, {}};
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

signed_record sign_payload(const client& c, const globals& g, const records::payload& payload) {
  auto id = load_operator_identity(g.identity);
  if (!id) {
    print_error(id.error().message);
    return {exit_usage, {}};
  }
  auto r = sign_for_node(c, id.value(), payload);
  if (!r) return {fail_transport(r.error()), {}};
  return {exit_ok, std::move(r).value()};
}

reply_result submit_signed(const client& c, const globals& g, const records::payload& payload) {
  auto s = sign_payload(c, g, payload);
  if (s.code != exit_ok) return {s.code, {}};
  return check_reply(c.call("POST", "/v1/records", json{{"record", record_hex(s.rec)}}.dump()));
}

}  // namespace meshdeploy::cli
