#include "cli/terminal.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sys/ioctl.h>
#include <unistd.h>

namespace meshdeploy::cli {

bool is_live_terminal(int fd) {
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::strcmp(term, "dumb") == 0) return false;
  return ::isatty(fd) == 1;
}

std::size_t terminal_columns(int fd, std::size_t fallback) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return fallback;
}

void live_block::clear() {
  // Cursor up over the block, then clear from there to the end of the screen.
  if (lines_ > 0) std::fprintf(out_, "\033[%zuA\033[J", lines_);
  lines_ = 0;
  std::fflush(out_);
}

void live_block::draw(const std::string& text) {
  clear();
  std::fputs(text.c_str(), out_);
  lines_ = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  std::fflush(out_);
}

}  // namespace meshdeploy::cli
