// Revision bundles on disk: format detection and hostile-input-safe
// extraction of zip, tar and tar.gz archives (via libarchive).
//
// Every archive is treated as an attack. Extraction never writes outside the
// destination directory, never follows a symlink it or anyone else created,
// refuses device/fifo/socket entries, and enforces size and count limits on the
// bytes actually produced, not on what headers claim. The refusals and limits
// are listed in docs/revisions.md.
//
// Thread safety: every function here is reentrant and keeps no global state;
// call them from worker threads (never the network thread: they block on disk).
#pragma once

#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::agent {

// The bundle types CodeDeploy knows for EC2/on-prem ("bundleType").
enum class bundle_format { tar, tgz, zip };

// "tar", "tgz" or "zip".
std::string_view to_string(bundle_format f);

// Parses "tar", "tgz", "tar.gz" or "zip" (exact, lowercase). nullopt otherwise.
std::optional<bundle_format> parse_bundle_format(std::string_view s);

// Bounds applied while extracting. Byte limits count the bytes actually
// decompressed and written (a header that lies about its size does not help).
struct extract_limits {
  std::uint64_t max_total_bytes = 8ull << 30;  // sum of uncompressed entry sizes
  std::uint64_t max_entries = 200000;          // headers of any type, directories included
  std::uint64_t max_entry_bytes = 4ull << 30;  // one entry's uncompressed size
  std::uint32_t max_path_length = 4096;        // an entry's path and a link's target, in bytes
};

// Detects the format of the file `archive` from its content (magic bytes and a
// first header libarchive can parse), never from its name: zip, plain tar
// (ustar/pax/gnu/v7) or gzip-compressed tar.
// Errors: io_error when the file cannot be opened or is not a regular file;
// archive_unreadable when it is none of the three (e.g. garbage, a gzip that
// does not hold a tar, a truncated zip). Messages name the path.
result<bundle_format> detect_bundle_format(const std::filesystem::path& archive);

// Extracts the bundle `archive` (zip, tar or tar.gz, detected from content)
// into `dest_dir`.
//
// REQUIRES: `dest_dir` exists, is a directory and is empty (else
// invalid_argument, nothing touched).
//
// Refuses with archive_unsafe, naming the entry: absolute paths, any ".."
// component, symlinks whose target is absolute or leaves dest_dir (resolved
// lexically against the link's directory, and again at the end following the
// other extracted links, so chains of individually-harmless links cannot escape
// either), hardlinks whose target is not a regular file extracted earlier from
// the same archive, entries that would be written through a previously
// extracted symlink or file, a path extracted twice (except directories),
// device/fifo/socket entries, and an entry whose data is longer than its header
// claims. Refuses with archive_too_large, naming the entry: more than
// `max_entries` entries, a path or link target longer than `max_path_length`,
// an entry over `max_entry_bytes`, or a running total over `max_total_bytes`
// (both counted from the bytes actually read, and from headers' claimed sizes
// so skipped data cannot be a bomb either). Corrupt, truncated or unsupported
// input (including gzip around anything but a tar) -> archive_unreadable;
// filesystem failures -> io_error.
//
// On any error nothing exists outside dest_dir and dest_dir is emptied again.
// On success, regular files have their archive permission bits & 0777 (execute
// bits kept, setuid/setgid/sticky dropped), directories (archive bits & 0777) |
// 0700 so the tree stays removable, and owners are never set from the archive
// (everything belongs to the calling user).
//
// Blocking; call from a worker thread. Thread-safe, no global state.
result<void> extract_archive(const std::filesystem::path& archive,
                             const std::filesystem::path& dest_dir,
                             const extract_limits& limits = {});

// Path helpers shared by extraction and packing (exposed for tests and for
// revision.cc). Paths are byte strings relative to a tree root, '/'-separated.

// Splits `path` into components, dropping empty and "." ones ("a//./b/" ->
// {"a","b"}). nullopt when `path` is absolute or has a ".." component. An empty
// vector means the root itself ("", ".", "./").
std::optional<std::vector<std::string>> split_relative_path(std::string_view path);

// Resolves the symlink target `target` lexically against the directory that
// holds the link at `link` (components from the root). Returns the target's
// components from the root, or nullopt when `target` is empty or absolute, or
// climbs above the root at any point.
std::optional<std::vector<std::string>> resolve_link_target(const std::vector<std::string>& link,
                                                            std::string_view target);

// Given every symlink of a tree (joined path -> verbatim target), resolves each
// one the way the kernel would, following the other links of the map (at most
// 40 hops, like Linux), with the tree root treated as "/" that must not be
// climbed out of. Returns the path of the first link (in map order) whose
// resolution leaves the root, is absolute, or loops; nullopt when all stay
// inside. Components that are not links are assumed to be directories or
// files inside the tree (lexical).
std::optional<std::string> find_escaping_link(const std::map<std::string, std::string>& links);

}  // namespace meshdeploy::agent
