// HTTP header fields as a request carries them, and the one lookup every route uses.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::api {

// Header fields (name, value) in the order received; a name may repeat.
using header_list = std::vector<std::pair<std::string, std::string>>;

// The first field named `name` (compared without case, as HTTP names are), or nullptr.
const std::string* find_header(const header_list& headers, std::string_view name);

}  // namespace meshdeploy::api
