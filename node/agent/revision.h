// Revisions: content-addressed bundle files. A revision's id is the
// BLAKE2b-256 hash of the bundle's bytes, so a revision is immutable and two
// uploads of the same bytes are the same revision. See docs/revisions.md.
//
// Thread safety: every function here is reentrant and keeps no global state;
// they block on disk, so call them from worker threads.
#pragma once

#include "node/agent/archive.h"
#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace meshdeploy::agent {

// BLAKE2b-256 (libsodium crypto_generichash, no key, 32-byte output) of the
// bytes of `file`, as 64 lowercase hex characters.
// Errors: io_error (cannot open or read, or not a regular file; names the path).
result<std::string> hash_file(const std::filesystem::path& file);

// Packs the tree under `dir` into a deterministic tar at `out_tar` (written to
// a temporary file next to it, then renamed into place; replaced if present).
//
// Format: POSIX pax (plain ustar headers unless a name needs an extension;
// a tree with any non-ASCII name or link target stores all names as raw
// bytes with hdrcharset=BINARY, so the locale never matters). Entries are the contents of
// `dir` (not `dir` itself), sorted by relative path bytes; each has mtime 0,
// uid/gid 0, no user/group names, and its mode & 0777. Regular files,
// directories and symlinks (target kept verbatim) only; hardlinked files are
// stored as separate copies. The same tree therefore gives byte-identical tars
// whatever the readdir order, mtimes, owners or locale.
//
// The listing is taken before `out_tar` is created, so `out_tar` may lie
// inside `dir` without packing itself.
// Errors: invalid_argument (`dir` is not a directory); archive_unsafe naming
// the entry for special files (device, fifo, socket) and for symlinks that are
// absolute or whose target leaves `dir` (lexically, or through other links of
// the tree); io_error for filesystem failures (including a file changing size
// while being packed).
result<void> pack_directory(const std::filesystem::path& dir, const std::filesystem::path& out_tar);

struct revision_bundle {
  std::string id;                 // hash_file of `archive`
  std::filesystem::path archive;  // where the bundle now lives: work_dir/<id>.<format>
  bundle_format format = bundle_format::tar;
  std::uint64_t size = 0;  // bytes
};

// Turns a user's --source into a bundle file inside `work_dir` (created if
// missing): a directory is packed with pack_directory (format tar); a file
// must be a zip, tar or tar.gz by content and is copied byte for byte (the
// copy is what gets detected and hashed, so a source changing underneath
// cannot make the id lie). The bundle is named `<id>.<to_string(format)>`;
// the same source prepared twice yields the same id and path.
// Errors: bad_revision (the source does not exist, or is neither a directory
// nor a regular file), archive_unreadable (a file that is no bundle), plus
// pack_directory's errors, io_error for copying; messages name the source.
result<revision_bundle> prepare_revision(const std::filesystem::path& source,
                                         const std::filesystem::path& work_dir);

// True when `id` looks like a revision id: exactly 64 lowercase hex chars.
bool is_revision_id(std::string_view id);

}  // namespace meshdeploy::agent
