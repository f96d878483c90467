#include "node/records/errc.h"

#include <string>

namespace meshdeploy::records {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.records"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::malformed:
        return "malformed record";
      case errc::too_large:
        return "record too large";
      case errc::version_unsupported:
        return "record format version unsupported";
      case errc::bad_signature:
        return "bad signature";
      case errc::unknown_writer:
        return "unknown writer";
      case errc::permission_denied:
        return "permission denied";
      case errc::schema:
        return "record violates its schema";
      case errc::stale:
        return "stale record";
      case errc::conflict:
        return "conflicting record";
      case errc::not_found:
        return "not found";
      case errc::io:
        return "i/o error";
      case errc::exists:
        return "already exists";
    }
    return "unknown records error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& records_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace meshdeploy::records
