// The addresses of the live members a node last saw, kept in <data-dir>/peers so that a node
// restarted without --join (the first node of a cluster, or one whose gossip port changed) finds
// the cluster again: at start they are added to the join seeds (memberlist/Serf snapshot style).
//
// Format: one HOST:PORT per line, at most max_peer_snapshot lines. Hostile input is tolerated: a
// line that is not HOST:PORT is skipped (and named in the log by the caller).
//
// Thread safety: plain functions; the caller serialises writes to one path.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace meshdeploy::mesh {

inline constexpr std::size_t max_peer_snapshot = 64;

// The addresses in `path` (none when it is missing or unreadable); `skipped` counts bad lines.
std::vector<std::string> load_peer_snapshot(const std::filesystem::path& path,
                                            std::size_t* skipped = nullptr);

// Replaces `path` atomically (temporary file + rename) with up to max_peer_snapshot addresses.
// Returns false (and leaves the old file) when the write fails.
bool save_peer_snapshot(const std::filesystem::path& path, const std::vector<std::string>& peers);

}  // namespace meshdeploy::mesh
