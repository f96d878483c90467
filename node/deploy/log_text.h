// A hook log as shown to an operator, and reading one from disk with bounded memory.
// A hook's output is not limited (a chatty script can write gigabytes), so a log is never read
// into memory whole: read_log_tail keeps the last bytes asked for while it streams the file.
#pragma once

#include "storage/result.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace meshdeploy::deploy {

// `text` is all of the log, or only its last bytes when `truncated` (`full_bytes` is the size
// of the whole log, or of the whole section of the event asked for).
struct log_text {
  std::string text;
  bool truncated = false;
  std::uint64_t full_bytes = 0;
  friend bool operator==(const log_text&, const log_text&) = default;
};

// Keeps at most the last `max_bytes` bytes of `text`, starting after a line break when the cut
// falls inside a line (so the first line shown is whole, unless one line is longer than
// `max_bytes`). REQUIRES: max_bytes > 0.
log_text tail_log(std::string text, std::size_t max_bytes);

// The log in `file` (only the lines of lifecycle event `event` when it is not empty, see
// agent::filter_log), cut as tail_log cuts it, reading the file in blocks and holding at most
// about 2 * max_bytes + 64 KiB at once, whatever the file's size. Errors: errc::not_found when
// the file cannot be opened, errc::internal when reading fails. REQUIRES: max_bytes > 0.
result<log_text> read_log_tail(const std::filesystem::path& file, std::string_view event,
                               std::size_t max_bytes);

}  // namespace meshdeploy::deploy
