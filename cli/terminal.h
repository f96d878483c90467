// What the CLI asks of the terminal: whether a stream is an interactive terminal (live views,
// colours) and its width, and an in-place redraw of a block of lines.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace meshdeploy::cli {

// True when `fd` is a terminal that understands cursor movement (not TERM=dumb).
bool is_live_terminal(int fd);

// The terminal's width in columns; `fallback` when it cannot be known.
std::size_t terminal_columns(int fd, std::size_t fallback = 80);

// Redraws a block of text in place on a terminal stream: each draw() moves the cursor back over
// the previous block and clears it first. clear() removes the block (before the final output).
// Not thread-safe; `out` must outlive it.
class live_block {
 public:
  explicit live_block(std::FILE* out) : out_(out) {}
  live_block(const live_block&) = delete;
  live_block& operator=(const live_block&) = delete;
  void draw(const std::string& text);
  void clear();

 private:
  std::FILE* out_;
  std::size_t lines_ = 0;  // lines of the block on screen
};

}  // namespace meshdeploy::cli
