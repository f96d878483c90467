#include "node/deploy/errc.h"

#include <string>

namespace meshdeploy::deploy {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.deploy"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::invalid_argument:
        return "invalid argument";
      case errc::not_found:
        return "not found";
      case errc::already_exists:
        return "already exists";
      case errc::conflict:
        return "conflict";
      case errc::no_targets:
        return "no targets";
      case errc::internal:
        return "internal error";
      case errc::unavailable:
        return "host unavailable";
      case errc::timed_out:
        return "host did not answer in time";
    }
    return "unknown deploy error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& deploy_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace meshdeploy::deploy
