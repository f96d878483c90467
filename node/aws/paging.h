// Paging of CodeDeploy's List* operations (nextToken). CodeDeploy's list calls take no page
// size: the server answers at most a page of items and a nextToken for the rest, which the
// client sends back unchanged (the aws CLI follows it on its own).
//
// A token is opaque to clients: "1." + hex(position) + "." + hex(check), where the position is
// the sort key of the last item answered and the check is a BLAKE2b-128 of (operation, the
// request's other fields, position). A token that does not parse, or that another operation or
// other request fields produced, is refused with InvalidNextTokenException. The position is a
// key, not an index, so items added or removed between two calls neither repeat nor skip the
// items that stay. Tokens hold no secret and are valid on every node (the same parameters give
// the same check), so a client may page through different nodes.
//
// Threading: pure functions.
#pragma once

#include "node/aws/json_protocol.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::aws {

// CodeDeploy answers up to 100 items per page.
inline constexpr std::size_t default_page_size = 100;
inline constexpr std::size_t max_next_token_chars = 2048;

struct page_item {
  std::string key;  // sort key, unique within the list (the order of the answer)
  nlohmann::json value;
};

struct page {
  nlohmann::json items = nlohmann::json::array();  // the values, in key order
  std::string next_token;                          // "" when this is the last page
};

// The page of `items` (any order; sorted here by key) that follows the request's nextToken (the
// first page without one), at most `page_size` (>= 1) items. Errors: ValidationException when
// nextToken is not a string, InvalidNextTokenException when it is not one this operation
// returned for these request fields.
api_result<page> paginate(std::string_view operation, const nlohmann::json& request,
                          std::vector<page_item> items, std::size_t page_size);

// The token that continues after `position` (exposed for tests).
std::string next_token(std::string_view operation, const nlohmann::json& request,
                       std::string_view position);

// A sort key that orders newer (larger `time`) first, then by `id`.
std::string newest_first_key(std::int64_t time, std::string_view id);

}  // namespace meshdeploy::aws
