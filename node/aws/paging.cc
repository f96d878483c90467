#include "node/aws/paging.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>

namespace meshdeploy::aws {

using nlohmann::json;

namespace {

constexpr std::string_view token_version = "1.";

std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::optional<std::string> unhex(std::string_view h) {
  if (h.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(h.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < h.size(); i += 2) {
    const int hi = nibble(h[i]), lo = nibble(h[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// BLAKE2b-128 of (operation, the request without nextToken, position), hex.
std::string check_of(std::string_view operation, const json& request, std::string_view position) {
  json fields = request.is_object() ? request : json::object();
  fields.erase("nextToken");
  const std::string bound = fields.dump();  // keys in sorted order: canonical
  crypto_generichash_state st;
  unsigned char out[16];
  crypto_generichash_init(&st, nullptr, 0, sizeof out);
  for (std::string_view part : {operation, std::string_view(bound), position}) {
    const std::uint64_t n = part.size();
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&n), sizeof n);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  crypto_generichash_final(&st, out, sizeof out);
  return hex(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

api_error invalid_token() {
  return {400, "InvalidNextTokenException",
          "the nextToken is not one this operation returned for these parameters"};
}

}  // namespace

std::string next_token(std::string_view operation, const json& request, std::string_view position) {
  return fmt::format("{}{}.{}", token_version, hex(position),
                     check_of(operation, request, position));
}

std::string newest_first_key(std::int64_t time, std::string_view id) {
  const auto inverted = std::numeric_limits<std::uint64_t>::max() -
                        static_cast<std::uint64_t>(std::max<std::int64_t>(time, 0));
  return fmt::format("{:016x}{}", inverted, id);
}

api_result<page> paginate(std::string_view operation, const json& request,
                          std::vector<page_item> items, std::size_t page_size) {
  page_size = std::max<std::size_t>(page_size, 1);
  std::optional<std::string> after;
  if (auto it = request.find("nextToken"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return validation("nextToken must be a string");
    const std::string& token = it->get_ref<const std::string&>();
    if (token.size() > max_next_token_chars || !token.starts_with(token_version)) {
      return invalid_token();
    }
    const std::string_view rest = std::string_view(token).substr(token_version.size());
    const auto dot = rest.find('.');
    if (dot == std::string_view::npos) return invalid_token();
    auto position = unhex(rest.substr(0, dot));
    if (!position || rest.substr(dot + 1) != check_of(operation, request, *position)) {
      return invalid_token();
    }
    after = std::move(*position);
  }
  std::sort(items.begin(), items.end(),
            [](const page_item& a, const page_item& b) { return a.key < b.key; });
  auto first = items.begin();
  if (after) {
    first = std::upper_bound(items.begin(), items.end(), *after,
                             [](const std::string& k, const page_item& i) { return k < i.key; });
  }
  page out;
  auto it = first;
  for (; it != items.end() && out.items.size() < page_size; ++it) out.items.push_back(it->value);
  if (it != items.end()) out.next_token = next_token(operation, request, std::prev(it)->key);
  return out;
}

}  // namespace meshdeploy::aws
