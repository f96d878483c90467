#include "node/api/headers.h"

#include <algorithm>
#include <cctype>

namespace meshdeploy::api {

const std::string* find_header(const header_list& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &v;
    }
  }
  return nullptr;
}

}  // namespace meshdeploy::api
