// What every CLI command shares: global options, printing errors, turning a
// node's reply into an exit code (cli.h), signing and submitting records.
#pragma once

#include "cli/cli.h"
#include "cli/client.h"
#include "node/records/payloads.h"
#include "storage/result.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace meshdeploy::cli {

struct globals {
  std::string api;       // HOST:PORT of the node
  std::string identity;  // operator key file; "" = MESHDEPLOY_IDENTITY
  std::string output = "table";
  bool json() const { return output == "json"; }
};

// "error: MESSAGE" on standard error.
void print_error(const std::string& message);

// Prints a transport failure; exit_unreachable when no node answered, else exit_failed.
int fail_transport(const error& e);

// A node's reply as an exit code (0 for 2xx) and, on success, its JSON body.
struct reply_result {
  int code = exit_ok;
  nlohmann::json body;
};
// Maps HTTP errors to exit codes (401/403 -> exit_denied, other 4xx -> exit_usage, else
// exit_failed), printing the node's message.
reply_result check_reply(const result<http_reply>& r);

std::string url_encode(std::string_view s);
void print_json(const nlohmann::json& j);

// Signs `payload` as the operator (globals::identity) for the node behind `c`; prints what
// went wrong and returns its exit code.
struct signed_record {
  int code = exit_ok;
  records::record rec;
};
signed_record sign_payload(const client& c, const globals& g, const records::payload& payload);

// Signs and submits a record (POST /v1/records); the node's reply or an exit code.
reply_result submit_signed(const client& c, const globals& g, const records::payload& payload);

}  // namespace meshdeploy::cli
