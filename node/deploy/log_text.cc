#include "node/deploy/log_text.h"

#include "node/agent/executor.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <utility>

namespace meshdeploy::deploy {

log_text tail_log(std::string text, std::size_t max_bytes) {
  log_text t;
  t.full_bytes = text.size();
  if (text.size() <= max_bytes) {
    t.text = std::move(text);
    return t;
  }
  std::size_t cut = text.size() - max_bytes;
  // Start at a line when one begins inside the kept part (a line longer than everything kept
  // is shown from the middle).
  if (text[cut - 1] != '\n') {
    if (const auto nl = text.find('\n', cut); nl != std::string::npos && nl + 1 < text.size()) {
      cut = nl + 1;
    }
  }
  t.text = text.substr(cut);
  t.truncated = true;
  return t;
}

namespace {

// The last bytes of a stream of text: everything appended is counted, and only the last
// max_bytes + 1 (tail_log looks at the byte before its cut) are kept, trimmed in bulk.
class tail_keeper {
 public:
  explicit tail_keeper(std::size_t max_bytes) : max_(max_bytes) {}

  void append(std::string_view s) {
    total_ += s.size();
    kept_.append(s);
    if (kept_.size() > 2 * (max_ + 1)) kept_.erase(0, kept_.size() - (max_ + 1));
  }

  log_text finish() && {
    log_text t = tail_log(std::move(kept_), max_);
    t.truncated = total_ > max_;
    t.full_bytes = total_;
    return t;
  }

 private:
  std::size_t max_;
  std::string kept_;
  std::uint64_t total_ = 0;
};

}  // namespace

result<log_text> read_log_tail(const std::filesystem::path& file, std::string_view event,
                               std::size_t max_bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return make_error(errc::not_found,
                      fmt::format("no log at {} (it may have been pruned)", file.string()));
  }
  tail_keeper tail(max_bytes);
  agent::log_section_filter filter(event);
  // A line split across blocks waits here; a line too long to matter (longer than anything
  // kept) is passed on in pieces, its start decided by its first piece.
  std::string partial;
  bool partial_kept = false;  // the filter's verdict on the line `partial` belongs to
  bool partial_judged = false;
  auto flush_piece = [&](std::string_view piece, bool line_ends) {
    if (!partial_judged) {
      partial_kept = filter.keep(piece);
      partial_judged = true;
    }
    if (partial_kept) {
      tail.append(piece);
      if (line_ends) tail.append("\n");
    }
    if (line_ends) partial_judged = false;
  };
  std::array<char, 64 * 1024> block{};
  while (in) {
    in.read(block.data(), block.size());
    std::string_view data(block.data(), static_cast<std::size_t>(in.gcount()));
    if (data.empty()) break;
    if (event.empty()) {
      tail.append(data);
      continue;
    }
    while (!data.empty()) {
      const auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        partial.append(data);
        if (partial.size() > max_bytes + agent::log_section_filter::max_marker_bytes) {
          flush_piece(partial, false);
          partial.clear();
        }
        break;
      }
      if (partial.empty()) {
        flush_piece(data.substr(0, nl), true);
      } else {
        partial.append(data.substr(0, nl));
        flush_piece(partial, true);
        partial.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  if (in.bad()) {
    return make_error(errc::internal, fmt::format("cannot read the log at {}", file.string()));
  }
  if (!partial.empty()) flush_piece(partial, true);  // filter_log ends every kept line
  return std::move(tail).finish();
}

}  // namespace meshdeploy::deploy
