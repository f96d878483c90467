// The project's one error and result type. Every fallible function in
// meshdeploy returns `result<T>`; exceptions from third-party libraries are
// caught at the boundary where they are thrown and turned into an `error`.
//
// `error` pairs a machine-checkable `code` (each module has its own errc enum
// and category, see storage/errc.h, node/agent/errc.h) with a human message
// that already names what failed and where ("appspec.yml:12: hooks.Foo: ...").
//
// The alias is a Boost.Outcome basic_result with the `terminate` policy: asking
// a failed result for its value is a programmer error and aborts. Kept as one
// alias so a later move to std::expected is a one-line change.
#pragma once

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>
#include <boost/outcome/success_failure.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <utility>

namespace meshdeploy {

namespace outcome = boost::outcome_v2;

struct error {
  boost::system::error_code code;
  std::string message;  // complete, human-readable, names the offending item and place

  // Returns a copy whose message is prefixed with `context: `.
  [[nodiscard]] error with_context(const std::string& context) const {
    return error{code, context + ": " + message};
  }
};

template <class T>
using result = outcome::basic_result<T, error, outcome::policy::terminate>;

// `return ok();` from a function returning result<void>.
inline auto ok() { return outcome::success(); }

// Builds an error from any errc enum registered with boost::system
// (is_error_code_enum) and a message.
template <class Errc>
error make_error(Errc e, std::string message) {
  return error{make_error_code(e), std::move(message)};
}

}  // namespace meshdeploy

// Propagates a failed result from the enclosing function.
//   MESH_TRY(auto v, parse(x));   // v is the value
#define MESH_TRY_CAT2(a, b) a##b
#define MESH_TRY_CAT(a, b) MESH_TRY_CAT2(a, b)
#define MESH_TRY(decl, expr) MESH_TRY_IMPL(MESH_TRY_CAT(mesh_try_tmp_, __LINE__), decl, expr)
#define MESH_TRY_IMPL(tmp, decl, expr)     \
  auto tmp = (expr);                       \
  if (!tmp) return std::move(tmp).error(); \
  decl = std::move(tmp).value()
// Propagates a failed result<void> (or discards the value of a result<T>).
#define MESH_CHECK(expr) MESH_CHECK_IMPL(MESH_TRY_CAT(mesh_chk_tmp_, __LINE__), expr)
#define MESH_CHECK_IMPL(tmp, expr)           \
  do {                                       \
    auto tmp = (expr);                       \
    if (!tmp) return std::move(tmp).error(); \
  } while (0)
