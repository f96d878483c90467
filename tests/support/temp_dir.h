// A directory under $TMPDIR (or /tmp) that is created empty and removed with
// everything in it when the object goes out of scope.
#pragma once

#include <filesystem>
#include <string_view>

namespace meshdeploy::test {

class temp_dir {
 public:
  // Creates a fresh directory whose name starts with `prefix`. Aborts the
  // test program if the directory cannot be created.
  explicit temp_dir(std::string_view prefix = "meshdeploy-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // path() / rel
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& rel) const {
    return path_ / rel;
  }

 private:
  std::filesystem::path path_;
};

// Writes `content` to `file`, creating parent directories. `mode` is applied
// with chmod (e.g. 0755 for scripts). Aborts on failure.
void write_file(const std::filesystem::path& file, std::string_view content, unsigned mode = 0644);

// Reads a whole file; returns "" when it does not exist.
std::string read_file(const std::filesystem::path& file);

}  // namespace meshdeploy::test
