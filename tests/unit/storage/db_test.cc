#include "storage/db.h"

#include "storage/errc.h"
#include "storage/key.h"
#include "tests/support/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace meshdeploy::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using entries = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------
// Crash child. ReopenAfterSigkillKeepsEverySyncedRecord re-executes this test
// binary with crash_child_env set; the child does its work from a static
// initializer, before gtest's main, and never returns to it. (A plain fork of
// the test process could inherit RocksDB's background threads' locks in a
// held state; exec gives the child a clean process.)

constexpr const char* crash_child_env = "MESHDEPLOY_STORAGE_TEST_CRASH_CHILD_DIR";
constexpr int crash_synced_records = 200;
constexpr int crash_max_buffered_records = 200000;

std::string synced_value(int i) { return "synced-" + std::to_string(i) + std::string(100, 's'); }
std::string buffered_value(std::uint64_t i) {
  return "buffered-" + std::to_string(i) + std::string(100, 'b');
}

void child_say(const std::string& line) {
  const std::string text = line + "\n";
  (void)!::write(STDOUT_FILENO, text.data(), text.size());
}

// Opens the db, writes crash_synced_records synced records (alternating a
// single put and a two-family batch), reports "synced", then writes buffered
// records as fast as it can (so that the SIGKILL lands mid-write) and finally
// waits for stdin to close. Exits 2 on any failure, after reporting it.
[[noreturn]] void crash_child_main(const char* dir) {
  auto opened = db::open({dir, {"journal", "index"}});
  if (!opened) {
    child_say("error: " + opened.error().message);
    std::_Exit(2);
  }
  auto& d = *opened.value();
  for (int i = 0; i < crash_synced_records; ++i) {
    const std::string k = key().u64(i).bytes();
    result<void> r = ok();
    if (i % 2 == 0) {
      r = d.put("journal", k, synced_value(i), durability::synced);
    } else {
      write_batch b;
      b.put("journal", k, synced_value(i));
      b.put("index", k, "i" + std::to_string(i));
      r = d.write(std::move(b), durability::synced);
    }
    if (!r) {
      child_say("error: " + r.error().message);
      std::_Exit(2);
    }
  }
  child_say("synced");
  for (std::uint64_t i = 0; i < crash_max_buffered_records; ++i) {
    if (!d.put("default", key().u64(i), buffered_value(i))) std::_Exit(2);
    if (i == 0) child_say("buffering");
  }
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
  std::_Exit(0);
}

[[maybe_unused]] const bool crash_child_hook = [] {
  if (const char* dir = std::getenv(crash_child_env)) crash_child_main(dir);
  return false;
}();

// A child process of this binary in crash-child mode; killed and reaped on
// destruction if the test did not do so.
class crash_child {
 public:
  explicit crash_child(const fs::path& dir) {
    std::string env_entry = std::string(crash_child_env) + "=" + dir.string();
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, crash_child_env, std::strlen(crash_child_env)) != 0) envp.push_back(*e);
    }
    envp.push_back(env_entry.data());
    envp.push_back(nullptr);
    std::string arg0 = "storage-crash-child";
    char* argv[] = {arg0.data(), nullptr};

    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(in[0], STDIN_FILENO);
      ::execve("/proc/self/exe", argv, envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    out_ = out[0];
    in_ = in[1];
  }
  ~crash_child() {
    if (pid_ > 0) kill_and_reap();
    if (out_ >= 0) ::close(out_);
    if (in_ >= 0) ::close(in_);
  }
  crash_child(const crash_child&) = delete;
  crash_child& operator=(const crash_child&) = delete;

  bool started() const { return pid_ > 0; }

  // Reads the child's output until it contains `line` (true), or it ends, or
  // `timeout` passes (false). output() has what was read.
  bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(line + "\n") == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[256];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return false;
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  const std::string& output() const { return output_; }

  // SIGKILL and reap; returns the wait status.
  int kill_and_reap() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  std::string output_;
};

// ---------------------------------------------------------------------------

class DbTest : public ::testing::Test {
 protected:
  fs::path db_dir() const { return dir_ / "db"; }

  // Opens db_dir() with `families`; on failure records the error and returns null.
  std::unique_ptr<db> open(std::vector<std::string> families = {"a", "b"}) {
    auto r = db::open({db_dir(), std::move(families)});
    if (!r) {
      ADD_FAILURE() << r.error().message;
      return nullptr;
    }
    return std::move(r).value();
  }

  // Everything a scan visits, stopping after `limit` entries.
  static entries collect(const db& d, std::string_view cf, std::string_view prefix, bool reverse,
                         std::size_t limit = std::numeric_limits<std::size_t>::max()) {
    entries out;
    auto visit = [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return out.size() < limit;
    };
    auto r = reverse ? d.scan_reverse(cf, prefix, visit) : d.scan(cf, prefix, visit);
    EXPECT_TRUE(r) << r.error().message;
    return out;
  }
  static std::vector<std::string> keys_of(const entries& e) {
    std::vector<std::string> k;
    for (const auto& [key, value] : e) k.push_back(key);
    return k;
  }

  static void put_all(db& d, std::string_view cf, const std::vector<std::string>& keys) {
    for (const auto& k : keys) ASSERT_TRUE(d.put(cf, k, "v:" + k));
  }

  test::temp_dir dir_{"storage-db-test"};
};

TEST_F(DbTest, PutGetEraseAreSeparatePerColumnFamily) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->put("a", "k", "in a"));
  ASSERT_TRUE(d->put("b", "k", "in b", durability::synced));
  EXPECT_EQ(d->get("a", "k").value(), "in a");
  EXPECT_EQ(d->get("b", "k").value(), "in b");
  EXPECT_EQ(d->get("default", "k").value(), std::nullopt);

  ASSERT_TRUE(d->put("a", "k", "in a again"));
  EXPECT_EQ(d->get("a", "k").value(), "in a again");

  ASSERT_TRUE(d->erase("a", "k"));
  EXPECT_EQ(d->get("a", "k").value(), std::nullopt);
  EXPECT_EQ(d->get("b", "k").value(), "in b");
  // Erasing an absent key is fine.
  EXPECT_TRUE(d->erase("a", "k", durability::synced));
}

TEST_F(DbTest, KeysAndValuesKeepEveryByteAndEmptyValueIsNotAbsent) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  const std::string k = "\x00key\xff\x00"s;
  const std::string v = "\x00\x01value\xff"s + std::string(100000, '\0');
  ASSERT_TRUE(d->put("a", k, v));
  ASSERT_TRUE(d->put("a", "empty", ""));
  EXPECT_EQ(d->get("a", k).value(), v);
  EXPECT_EQ(d->get("a", "\x00key\xff"s).value(), std::nullopt);
  EXPECT_EQ(d->get("a", "empty").value(), std::optional<std::string>(""));
}

TEST_F(DbTest, DefaultColumnFamilyIsAlwaysOpen) {
  auto d = open({});
  ASSERT_NE(d, nullptr);
  EXPECT_THAT(d->column_families(), ElementsAre("default"));
  ASSERT_TRUE(d->put("default", "k", "v"));
  EXPECT_EQ(d->get("default", "k").value(), "v");
  EXPECT_EQ(d->dir(), db_dir());
}

TEST_F(DbTest, UnknownColumnFamilyIsInvalidArgumentNamingIt) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  auto visit = [](std::string_view, std::string_view) { return true; };
  std::vector<std::pair<std::string, error>> errors;
  errors.emplace_back("get", d->get("nope", "k").error());
  errors.emplace_back("put", d->put("nope", "k", "v").error());
  errors.emplace_back("erase", d->erase("nope", "k").error());
  errors.emplace_back("scan", d->scan("nope", "", visit).error());
  errors.emplace_back("scan_reverse", d->scan_reverse("nope", "", visit).error());
  write_batch b;
  b.put("nope", "k", "v");
  errors.emplace_back("write", d->write(std::move(b)).error());
  for (const auto& [op, e] : errors) {
    EXPECT_EQ(e.code, make_error_code(errc::invalid_argument)) << op;
    EXPECT_THAT(e.message, HasSubstr("storage " + op)) << op;
    EXPECT_THAT(e.message, HasSubstr("unknown column family 'nope'")) << op;
    EXPECT_THAT(e.message, HasSubstr(db_dir().string())) << op;
    EXPECT_THAT(e.message, HasSubstr("open: a, b, default")) << op;
  }
}

TEST_F(DbTest, BatchAppliesAcrossFamiliesAtomically) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->put("b", "old", "x"));
  write_batch b;
  EXPECT_TRUE(b.empty());
  b.put("a", "k1", "v1");
  b.put("b", "k2", "v2");
  b.put("default", "k3", "v3");
  b.erase("b", "old");
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.size(), 4u);
  ASSERT_TRUE(d->write(std::move(b), durability::synced));
  EXPECT_EQ(d->get("a", "k1").value(), "v1");
  EXPECT_EQ(d->get("b", "k2").value(), "v2");
  EXPECT_EQ(d->get("default", "k3").value(), "v3");
  EXPECT_EQ(d->get("b", "old").value(), std::nullopt);
}

TEST_F(DbTest, BatchWithUnknownFamilyWritesNothing) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->put("a", "keep", "original"));
  write_batch b;
  b.put("a", "k1", "v1");
  b.erase("a", "keep");
  b.put("missing", "k2", "v2");
  b.put("b", "k3", "v3");
  auto r = d->write(std::move(b));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::invalid_argument));
  EXPECT_THAT(r.error().message, HasSubstr("operation 2, put \"k2\""));
  EXPECT_THAT(r.error().message, HasSubstr("'missing'"));
  EXPECT_EQ(d->get("a", "k1").value(), std::nullopt);
  EXPECT_EQ(d->get("a", "keep").value(), "original");
  EXPECT_EQ(d->get("b", "k3").value(), std::nullopt);
}

TEST_F(DbTest, BatchAppliesOperationsInOrder) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  write_batch b;
  b.put("a", "gone", "1");
  b.erase("a", "gone");
  b.erase("a", "back");
  b.put("a", "back", "2");
  b.put("a", "twice", "first");
  b.put("a", "twice", "second");
  write_batch moved = std::move(b);
  ASSERT_TRUE(d->write(std::move(moved)));
  EXPECT_EQ(d->get("a", "gone").value(), std::nullopt);
  EXPECT_EQ(d->get("a", "back").value(), "2");
  EXPECT_EQ(d->get("a", "twice").value(), "second");
}

TEST_F(DbTest, EmptyBatchIsANoOp) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->write(write_batch(), durability::synced));
  EXPECT_TRUE(collect(*d, "a", "", false).empty());
}

// Keys around the prefix boundaries: 0x00 and 0xFF inside, the successor of
// "a\xff" ("b") present, and an all-0xFF key.
const std::vector<std::string> boundary_keys = {"\x00"s,  "a"s,     "a\x00"s,     "a\x00\xff"s,
                                                "ab"s,    "a\xff"s, "a\xff\xff"s, "b"s,
                                                "b\x00"s, "\xff"s,  "\xff\xff"s};

TEST_F(DbTest, ScanVisitsPrefixInAscendingOrder) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  put_all(*d, "a", boundary_keys);
  ASSERT_TRUE(d->put("b", "a-in-b", "other family"));

  EXPECT_THAT(keys_of(collect(*d, "a", "a", false)),
              ElementsAre("a"s, "a\x00"s, "a\x00\xff"s, "ab"s, "a\xff"s, "a\xff\xff"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "a\xff"s, false)), ElementsAre("a\xff"s, "a\xff\xff"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "\xff"s, false)), ElementsAre("\xff"s, "\xff\xff"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "", false)), ::testing::ElementsAreArray(boundary_keys));
  EXPECT_TRUE(collect(*d, "a", "c", false).empty());
  EXPECT_TRUE(collect(*d, "a", "a\x01"s, false).empty());
  const auto e = collect(*d, "a", "b", false);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], std::pair("b"s, "v:b"s));
  EXPECT_EQ(e[1], std::pair("b\x00"s, "v:b\x00"s));
}

TEST_F(DbTest, ScanReverseVisitsPrefixInDescendingOrder) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  put_all(*d, "a", boundary_keys);

  EXPECT_THAT(keys_of(collect(*d, "a", "a", true)),
              ElementsAre("a\xff\xff"s, "a\xff"s, "ab"s, "a\x00\xff"s, "a\x00"s, "a"s));
  // "b" is the successor of the prefix "a\xff" and must not be visited.
  EXPECT_THAT(keys_of(collect(*d, "a", "a\xff"s, true)), ElementsAre("a\xff\xff"s, "a\xff"s));
  // No successor exists for an all-0xFF prefix.
  EXPECT_THAT(keys_of(collect(*d, "a", "\xff"s, true)), ElementsAre("\xff\xff"s, "\xff"s));
  std::vector<std::string> all(boundary_keys.rbegin(), boundary_keys.rend());
  EXPECT_THAT(keys_of(collect(*d, "a", "", true)), ::testing::ElementsAreArray(all));
  EXPECT_TRUE(collect(*d, "a", "c", true).empty());
  EXPECT_TRUE(collect(*d, "a", "\x00\x00"s, true).empty());
  EXPECT_THAT(keys_of(collect(*d, "a", "b", true)), ElementsAre("b\x00"s, "b"s));
}

TEST_F(DbTest, ScanStopsWhenVisitorReturnsFalse) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  put_all(*d, "a", boundary_keys);
  EXPECT_THAT(keys_of(collect(*d, "a", "a", false, 2)), ElementsAre("a"s, "a\x00"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "a", true, 2)), ElementsAre("a\xff\xff"s, "a\xff"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "", false, 1)), ElementsAre("\x00"s));
  EXPECT_THAT(keys_of(collect(*d, "a", "", true, 1)), ElementsAre("\xff\xff"s));
}

TEST_F(DbTest, ScanReverseOfCounterKeysIsNewestFirst) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  // Counters across byte boundaries (255 -> 256), with neighbouring groups
  // whose names extend or precede "web".
  for (std::uint64_t i = 1; i <= 300; ++i) {
    ASSERT_TRUE(d->put("a", key().str("web").u64(i), std::to_string(i)));
    ASSERT_TRUE(d->put("a", key().str("web2").u64(i), "web2"));
    ASSERT_TRUE(d->put("a", key().str("we").u64(i), "we"));
  }
  ASSERT_TRUE(d->put("a", key().str("web\x00"s).u64(0), "web-nul"));
  std::vector<std::uint64_t> seen;
  ASSERT_TRUE(d->scan_reverse("a", key().str("web"), [&](std::string_view k, std::string_view v) {
    key_reader r(k);
    EXPECT_EQ(r.str().value(), "web");
    seen.push_back(r.u64().value());
    EXPECT_TRUE(r.done());
    EXPECT_EQ(v, std::to_string(seen.back()));
    return true;
  }));
  ASSERT_EQ(seen.size(), 300u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 300 - i);

  const auto newest = collect(*d, "a", key().str("web"), true, 1);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0].second, "300");
  const auto oldest = collect(*d, "a", key().str("web"), false, 1);
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_EQ(oldest[0].second, "1");
}

TEST_F(DbTest, ScanSkipsErasedKeys) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(d->put("a", key().u64(i), "v"));
  for (int i = 0; i < 100; ++i) {
    if (i % 10 != 0) {
      ASSERT_TRUE(d->erase("a", key().u64(i)));
    }
  }
  EXPECT_EQ(collect(*d, "a", "", false).size(), 10u);
  EXPECT_EQ(collect(*d, "a", "", true).size(), 10u);
}

TEST_F(DbTest, ConcurrentWritersFromSeveralThreadsAllLand) {
  auto d = open();
  ASSERT_NE(d, nullptr);
  constexpr int threads = 4;
  constexpr int per_thread = 250;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&d, t] {
      for (int i = 0; i < per_thread; ++i) {
        write_batch b;
        b.put("a", key().u64(t).u64(i), "a");
        b.put("b", key().u64(t).u64(i), "b");
        EXPECT_TRUE(d->write(std::move(b)));
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(collect(*d, "a", "", false).size(), std::size_t{threads * per_thread});
  EXPECT_EQ(collect(*d, "b", "", false).size(), std::size_t{threads * per_thread});
  EXPECT_EQ(collect(*d, "a", key().u64(2), false).size(), std::size_t{per_thread});
}

TEST_F(DbTest, ReopenAfterCleanCloseKeepsEverything) {
  {
    auto d = open();
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(d->put("a", "buffered", "1"));
    ASSERT_TRUE(d->put("b", "synced", "2", durability::synced));
    ASSERT_TRUE(d->put("a", "erased", "3"));
    ASSERT_TRUE(d->erase("a", "erased"));
  }
  auto d = open();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->get("a", "buffered").value(), "1");
  EXPECT_EQ(d->get("b", "synced").value(), "2");
  EXPECT_EQ(d->get("a", "erased").value(), std::nullopt);
}

TEST_F(DbTest, OpenWithFewerFamiliesStillOpensTheOthers) {
  {
    auto d = open({"a", "b", "c"});
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(d->put("c", "k", "in c"));
  }
  {
    auto d = open({"a"});
    ASSERT_NE(d, nullptr);
    EXPECT_THAT(d->column_families(), ElementsAre("a", "b", "c", "default"));
    EXPECT_EQ(d->get("c", "k").value(), "in c");
    ASSERT_TRUE(d->put("b", "k", "in b"));
  }
  // And adding a family to an existing database works.
  auto d = open({"d"});
  ASSERT_NE(d, nullptr);
  EXPECT_THAT(d->column_families(), ElementsAre("a", "b", "c", "d", "default"));
  EXPECT_EQ(d->get("b", "k").value(), "in b");
  EXPECT_TRUE(d->put("d", "k", "in d"));
}

TEST_F(DbTest, OpenCreatesMissingParentDirectories) {
  const fs::path deep = dir_ / "x" / "y" / "db";
  auto r = db::open({deep, {"a"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(fs::exists(deep / "CURRENT"));
}

TEST_F(DbTest, OpenRejectsEmptyDirectoryAndFamilyNames) {
  auto no_dir = db::open({"", {"a"}});
  ASSERT_FALSE(no_dir);
  EXPECT_EQ(no_dir.error().code, make_error_code(errc::invalid_argument));
  auto empty_family = db::open({db_dir(), {"a", ""}});
  ASSERT_FALSE(empty_family);
  EXPECT_EQ(empty_family.error().code, make_error_code(errc::invalid_argument));
  EXPECT_THAT(empty_family.error().message, HasSubstr(db_dir().string()));
}

TEST_F(DbTest, OpenOfAFileIsIoErrorNamingThePath) {
  test::write_file(db_dir(), "not a database");
  auto r = db::open({db_dir(), {"a"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::io_error));
  EXPECT_THAT(r.error().message, HasSubstr(db_dir().string()));
}

TEST_F(DbTest, SecondOpenOfSameDirectoryFailsWhileFirstIsOpen) {
  auto first = open();
  ASSERT_NE(first, nullptr);
  auto second = db::open({db_dir(), {"a", "b"}});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, make_error_code(errc::io_error));
  EXPECT_THAT(second.error().message, HasSubstr("storage open: " + db_dir().string()));
  EXPECT_THAT(second.error().message, HasSubstr("LOCK"));
  first.reset();
  EXPECT_NE(open(), nullptr);
}

TEST_F(DbTest, DamagedManifestIsReportedAsCorruption) {
  {
    auto d = open();
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(d->put("a", "k", "v"));
  }
  const std::string current = test::read_file(db_dir() / "CURRENT");
  ASSERT_FALSE(current.empty());
  const fs::path manifest = db_dir() / current.substr(0, current.find('\n'));
  ASSERT_TRUE(fs::exists(manifest)) << manifest;
  test::write_file(manifest, std::string(4096, '\x5a'));
  auto r = db::open({db_dir(), {"a"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, make_error_code(errc::corruption)) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(db_dir().string()));
}

TEST_F(DbTest, ReopenAfterSigkillKeepsEverySyncedRecord) {
  crash_child child(db_dir());
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_for_line("buffering", std::chrono::seconds(120)))
      << "child output: " << child.output();
  // The child is now writing buffered records in a loop: kill it mid-write.
  const int status = child.kill_and_reap();
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child was not killed (status " << status << "), output: " << child.output();

  auto d = open({"journal", "index"});
  ASSERT_NE(d, nullptr);
  for (int i = 0; i < crash_synced_records; ++i) {
    const std::string k = key().u64(i).bytes();
    EXPECT_EQ(d->get("journal", k).value(), synced_value(i)) << "record " << i;
    if (i % 2 == 1) {
      EXPECT_EQ(d->get("index", k).value(), "i" + std::to_string(i)) << "record " << i;
    }
  }
  EXPECT_EQ(collect(*d, "journal", "", false).size(), std::size_t{crash_synced_records});
  // Buffered writes that made it form a gap-free prefix of what was written
  // (point-in-time recovery); at least the first one did (it returned before
  // "buffering" was printed, and a process kill does not lose the OS cache).
  std::uint64_t expected = 0;
  ASSERT_TRUE(d->scan("default", "", [&](std::string_view k, std::string_view v) {
    key_reader r(k);
    auto n = r.u64();
    EXPECT_TRUE(n && r.done());
    EXPECT_EQ(n.value(), expected) << "gap in buffered records";
    EXPECT_EQ(v, buffered_value(expected));
    ++expected;
    return true;
  }));
  EXPECT_GE(expected, 1u);
  std::cout << "[ info ] buffered records recovered after SIGKILL: " << expected << "\n";
}

}  // namespace
}  // namespace meshdeploy::storage
