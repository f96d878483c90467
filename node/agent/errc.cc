#include "node/agent/errc.h"

#include <string>

namespace meshdeploy::agent {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.agent"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::appspec_missing:
        return "appspec file missing";
      case errc::appspec_invalid:
        return "appspec file invalid";
      case errc::script_missing:
        return "script missing";
      case errc::script_not_executable:
        return "script not executable";
      case errc::archive_unreadable:
        return "archive unreadable";
      case errc::archive_unsafe:
        return "archive unsafe";
      case errc::archive_too_large:
        return "archive too large";
      case errc::io_error:
        return "i/o error";
      case errc::install_conflict:
        return "install conflict";
      case errc::permission_failed:
        return "permission change failed";
      case errc::hook_failed:
        return "hook failed";
      case errc::bad_revision:
        return "bad revision";
      case errc::interrupted:
        return "interrupted";
      case errc::invalid_argument:
        return "invalid argument";
    }
    return "unknown agent error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& agent_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace meshdeploy::agent
