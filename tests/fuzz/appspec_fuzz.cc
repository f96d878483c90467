// libFuzzer target for the appspec decoder: parse_appspec must never crash,
// hang or leak on any input, and whatever it accepts must satisfy the
// invariants appspec.h promises (checked here; a violation aborts).
//
// Built by the clang fuzz build (MESHDEPLOY_FUZZ); by hand:
//   clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -include utility
//     tests/fuzz/appspec_fuzz.cc node/agent/appspec.cc node/agent/lifecycle_event.cc
//     node/agent/errc.cc -lyaml-cpp -lfmt
#include "node/agent/appspec.h"
#include "node/agent/errc.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace meshdeploy::agent;

void require(bool condition) {
  if (!condition) std::abort();
}

bool has_dotdot(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

void check_invariants(const appspec& spec) {
  require(spec.version == "0.0");
  require(spec.os == "linux");
  for (const file_mapping& m : spec.files) {
    require(!m.source.empty() && (m.source == "/" || m.source.front() != '/'));
    require(!has_dotdot(m.source));
    require(!m.destination.empty() && m.destination.front() == '/');
    require(!has_dotdot(m.destination));
    require(m.line > 0);
  }
  for (const permission_rule& r : spec.permissions) {
    require(!r.object.empty() && r.object.front() == '/' && !has_dotdot(r.object));
    require(r.pattern == "**" || (!r.pattern.empty() && r.pattern.find('/') == std::string::npos));
    for (const auto& e : r.except) require(!e.empty() && e.find('/') == std::string::npos);
    require(!r.mode || *r.mode <= 07777);
    if (r.context) require(!r.context->type.empty());
    require(r.types.size() <= 2);
    require(r.line > 0);
  }
  for (const auto& [event, scripts] : spec.hooks) {
    require(!is_reserved(event));
    require(!scripts.empty());
    for (const hook_script& s : scripts) {
      require(!s.location.empty() && s.location.front() != '/' && !has_dotdot(s.location));
      require(s.timeout.count() >= 1 && s.timeout <= max_hook_timeout);
      require(s.line > 0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_appspec(text, "appspec.yml");
  if (parsed) {
    check_invariants(parsed.value());
  } else {
    // Every refusal is an appspec_invalid naming the file.
    require(parsed.error().code == make_error_code(errc::appspec_invalid));
    require(parsed.error().message.rfind("appspec.yml", 0) == 0);
  }
  return 0;
}
