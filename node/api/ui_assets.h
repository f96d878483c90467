// The web console's static files (node/api/ui/), embedded into the binary at build time:
// node/api/ui/embed.cmake turns each file into a byte array in the generated ui_assets.cc.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace meshdeploy::api {

struct ui_asset {
  std::string_view name;          // file name under node/api/ui/, e.g. "console.js"
  std::string_view content_type;  // from the extension, e.g. "text/javascript; charset=utf-8"
  std::string_view etag;          // quoted strong validator from the content's SHA-256
  std::string_view body;          // the file's bytes
};

// Every embedded file, sorted by name. The storage is static and immutable: thread-safe.
std::span<const ui_asset> ui_assets();

}  // namespace meshdeploy::api
