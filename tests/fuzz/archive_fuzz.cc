// libFuzzer target for bundle handling: every input is written to a file and
// run through detect_bundle_format and extract_archive (tight limits, so the
// fuzzer explores structure rather than waiting on big outputs).
//
// Besides crashes and sanitizer reports, it aborts when an invariant of
// extract_archive breaks: a failed extraction must leave the destination empty,
// nothing may ever appear next to the destination, and a successful one must
// have written only directories, regular files without setuid/setgid/sticky
// bits, and symlinks.
//
// Build: clang++ -fsanitize=fuzzer,address,undefined with MESHDEPLOY_FUZZ=ON.
// Run:   archive_fuzz -max_len=65536 corpus/
#include "node/agent/archive.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdlib.h>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace agent = meshdeploy::agent;

// One scratch directory per fuzzing process, removed at exit:
//   <scratch>/input       the archive under test
//   <scratch>/box/dest    the extraction destination
// Anything appearing in <scratch>/box besides dest escaped the destination.
struct scratch {
  fs::path root;
  fs::path input;
  fs::path box;
  fs::path dest;

  scratch() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/archive-fuzz-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    root = templ;
    input = root / "input";
    box = root / "box";
    dest = box / "dest";
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

scratch& dirs() {
  static scratch s;
  return s;
}

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "archive_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

void write_input(const fs::path& file, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  require(f != nullptr, "cannot create the input file");
  require(size == 0 || std::fwrite(data, 1, size, f) == size, "cannot write the input file");
  require(std::fclose(f) == 0, "cannot close the input file");
}

// Checks a successful extraction's tree (bounded by the entry limit).
void check_tree(const fs::path& dest) {
  std::error_code ec;
  int seen = 0;
  for (fs::recursive_directory_iterator it(dest, ec), end; !ec && it != end; it.increment(ec)) {
    require(++seen <= 1024, "more files than the entry limit allows");
    struct stat st {};
    require(::lstat(it->path().c_str(), &st) == 0, "extracted path vanished");
    require(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode),
            "special file extracted");
    require(S_ISLNK(st.st_mode) || (st.st_mode & 07000) == 0, "setuid/setgid/sticky extracted");
  }
  require(!ec, "cannot walk the destination");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  scratch& s = dirs();
  std::error_code ec;
  fs::remove_all(s.box, ec);
  require(fs::create_directories(s.dest, ec) && !ec, "cannot create the destination");
  write_input(s.input, data, size);

  (void)agent::detect_bundle_format(s.input);

  agent::extract_limits limits;
  limits.max_total_bytes = 1 << 20;
  limits.max_entry_bytes = 256 << 10;
  limits.max_entries = 1000;
  limits.max_path_length = 1024;
  const auto extracted = agent::extract_archive(s.input, s.dest, limits);

  // Whatever happened, nothing but dest may exist in the box.
  for (fs::directory_iterator it(s.box, ec), end; !ec && it != end; it.increment(ec)) {
    require(it->path().filename() == "dest", "an entry escaped the destination");
  }
  require(!ec, "cannot list the box");
  if (extracted) {
    check_tree(s.dest);
  } else {
    require(fs::is_empty(s.dest, ec) && !ec, "a failed extraction left files behind");
  }
  return 0;
}
