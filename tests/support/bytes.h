// Byte helpers for tests that build wire input from text.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace meshdeploy::test {

// The bytes of `s`, as std::byte.
inline std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out;
  out.reserve(s.size());
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

}  // namespace meshdeploy::test
