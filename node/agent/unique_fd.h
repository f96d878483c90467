// Small POSIX helpers shared by the agent's file and process code.
#pragma once

#include <string>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace meshdeploy::agent {

// Owns a file descriptor; closes it on destruction. Move-only.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Closes now and returns close(2)'s result (for files just written, where
  // a failed close can mean lost data).
  int close() { return ::close(std::exchange(fd_, -1)); }
  // Closes the current descriptor (if any) and takes ownership of `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// strerror-like text for an errno value, thread-safe.
inline std::string errno_text(int e) {
  return std::error_code(e, std::generic_category()).message();
}

}  // namespace meshdeploy::agent
