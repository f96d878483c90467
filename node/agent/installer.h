// CodeDeploy's Install step, part one: removing what the previous deployment
// of a group installed, and copying the revision's `files` onto the host. The
// rules, and where they differ from CodeDeploy's agent, are in docs/install.md.
// Part two, `permissions`, is node/agent/permissions.h.
//
// Every host path here is the path as the appspec sees it ("/var/www/a.html");
// the file really lives at install_root / that path, so several nodes can
// share one machine (`--install-root`). Nothing is ever written or removed
// outside install_root: paths are normalised, ".." is refused, and the real
// parent directory of every write is checked to resolve inside install_root
// (a symlink on the host that leads elsewhere stops the install).
//
// Thread safety: the functions keep no state and are reentrant; they block on
// disk, so call them from a worker thread (never the network thread). Two
// installs into overlapping destinations at the same time are the caller's
// problem (the agent runs one deployment per group at a time).
#pragma once

#include "node/agent/appspec.h"
#include "storage/result.h"

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::agent {

// One path this deployment created on the host, in creation order. `path` is
// the HOST path as the appspec sees it (e.g. "/var/www/index.html"), WITHOUT
// the install root; the real location is install_root / path. `directory` is
// true for directories the install created (never for directories that were
// already there); files and symlinks have it false.
struct installed_entry {
  std::string path;
  bool directory = false;

  friend bool operator==(const installed_entry&, const installed_entry&) = default;
};
using install_manifest = std::vector<installed_entry>;

// Receives one human-readable line per notable action. May be empty.
using install_log = std::function<void(std::string_view)>;

// Removes what the previous deployment of the group installed (`previous`, as
// returned by install_files), last entry first: files and symlinks are
// unlinked (a symlink itself, never its target); directories are removed only
// when empty (a non-empty one is kept and logged, not an error). Entries that
// are already missing are fine, and so is an entry whose type changed since
// (a directory where we installed a file, or the reverse): it is not ours any
// more, so it is left in place and logged.
// Every entry is attempted even after a failure.
// Errors: invalid_argument when install_root is not an existing directory;
// io_error when at least one entry could not be removed, listing each such
// path with the reason: a system error (EPERM, EBUSY, ...), a path that is
// not absolute or contains "..", or a real parent directory that resolves
// outside install_root (such entries are never touched).
result<void> remove_installed(const install_manifest& previous,
                              const std::filesystem::path& install_root,
                              const install_log& log = {});

// Copies the revision's files per `spec.files` into install_root/destination
// and returns what it created, in creation order (directories before their
// contents).
//
// Per mapping, in appspec order: `source` is relative to `revision_root` (a
// leading "/" is ignored; "/" or "" is the whole revision; ".." is refused).
// A file or symlink source is copied into the destination directory under its
// own name; a directory source copies its contents recursively, in byte order
// of names. As CodeDeploy does, a "/" source copies everything, the appspec
// file included. Missing destination directories and their missing ancestors
// are created with mode 0755 and recorded; directories copied from the
// revision keep the revision's mode & 07777 (a directory that already exists
// on the host is used as it is, not recorded, its mode untouched). Regular
// files keep their revision mode & 07777 and mtime; the owner is the caller
// (root for the agent) until permissions say otherwise. Symlinks are recreated
// as symlinks with the same target text. Each file or link is written to a
// temporary name in its destination directory and renamed into place, so a
// reader never sees a partial file.
//
// A destination that already exists (file or symlink) is decided by
// `behavior`: disallow -> install_conflict; overwrite -> replaced atomically
// and recorded (so the next deployment removes it); retain -> the existing
// file is kept, not recorded, and logged. A destination that is an existing
// directory where a file must go, or an existing non-directory where a
// directory must go, is an install_conflict whatever `behavior` says (except
// that retain keeps an existing directory in place of a file).
//
// Everything is planned and checked before the first write: a conflict, a
// missing source, two mappings installing the same path, or a special file
// (fifo, socket, device) in the revision fail the call with nothing changed on
// the host. If a write fails half-way (disk full, EPERM, ...), the entries
// this call created are removed again (as remove_installed would do next
// time) and the error says so.
//
// `log` gets a line per mapping, per replaced or retained file, and a summary.
// Errors: invalid_argument (revision_root or install_root is not a directory);
// appspec_invalid naming the appspec line (destination not absolute or with
// "..", source with ".." or missing from the revision, or reaching outside it
// through a symlink); install_conflict listing the paths (up to 20) and how to
// fix it (file_exists_behavior OVERWRITE or RETAIN, or remove the files);
// bad_revision (special file in the revision); io_error naming the path.
result<install_manifest> install_files(const appspec& spec,
                                       const std::filesystem::path& revision_root,
                                       const std::filesystem::path& install_root,
                                       file_exists_behavior behavior, const install_log& log = {});

// Normalises an absolute host path: repeated and trailing "/" and "."
// components are dropped ("/a//./b/" -> "/a/b", "/" stays "/").
// Errors: invalid_argument when `path` is empty, relative, or has a ".."
// component (the message quotes the path).
result<std::string> normalize_host_path(std::string_view path);

// Where host path `host` (normalised, absolute) really lives: install_root
// joined with `host` minus its leading "/".
std::filesystem::path real_path(const std::filesystem::path& install_root, std::string_view host);

// Checks that the existing directory `dir` resolves, following every symlink,
// to `canonical_root` or below it. `canonical_root` must itself be canonical
// (std::filesystem::canonical of the install root); when it is "/" every
// directory passes without a system call.
// Errors: invalid_argument naming `dir` and where it leads; io_error when it
// cannot be resolved (ENOENT included: callers decide what a missing
// directory means).
result<void> check_inside_root(const std::filesystem::path& canonical_root,
                               const std::filesystem::path& dir);

}  // namespace meshdeploy::agent
