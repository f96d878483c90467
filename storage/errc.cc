#include "storage/errc.h"

#include <string>

namespace meshdeploy::storage {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshdeploy.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::io_error:
        return "storage i/o error";
      case errc::corruption:
        return "storage corruption";
      case errc::invalid_argument:
        return "invalid storage argument";
      case errc::busy:
        return "storage busy";
      case errc::not_supported:
        return "storage operation not supported";
    }
    return "unknown storage error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& storage_category() noexcept {
  static const category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace meshdeploy::storage
