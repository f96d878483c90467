#include "gossip/errc.h"

#include <string>

namespace meshdeploy::gossip {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.gossip"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::malformed:
        return "malformed gossip input";
      case errc::too_large:
        return "gossip input over a limit";
      case errc::unknown_type:
        return "unknown gossip message type";
      case errc::version_unsupported:
        return "unsupported gossip version";
      case errc::unknown_key:
        return "unknown gossip key id";
      case errc::auth_failed:
        return "gossip authentication failed";
      case errc::replayed:
        return "replayed gossip input";
      case errc::invalid_key:
        return "invalid gossip key";
      case errc::key_id_collision:
        return "gossip key id collision";
      case errc::key_not_found:
        return "gossip key not installed";
      case errc::primary_key:
        return "refused: the gossip primary key";
      case errc::keyring_full:
        return "gossip keyring full";
      case errc::keyring_invalid:
        return "invalid gossip keyring";
      case errc::unknown_member:
        return "unknown or unreachable gossip member";
    }
    return "unknown gossip error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& gossip_category() noexcept {
  static const category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), gossip_category()};
}

}  // namespace meshdeploy::gossip
