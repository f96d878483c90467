#include "node/swarm/disk_store.h"

#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace meshdeploy::swarm {

namespace fs = std::filesystem;

disk_store::disk_store(
    blob_store& blobs,
    std::function<std::optional<held_bundle>(const std::string&, const std::string&)> locate)
    : blobs_(blobs), locate_(std::move(locate)) {}

std::optional<seed_info> disk_store::seed(const std::string& app, const std::string& id) {
  auto held = locate_(app, id);
  if (!held) return std::nullopt;
  seed_info out;
  out.origin = held->origin;
  if (auto stored = blobs_.load_manifest(id)) {
    out.manifest = std::move(*stored);
  } else {
    // A bundle pushed here (or stored before the swarm): hash it once and keep the manifest.
    auto m = manifest_of_file(held->file);
    if (!m) {
      spdlog::warn("swarm: cannot hash {}: {}", held->file.string(), m.error().message);
      return std::nullopt;
    }
    out.manifest = encode_manifest(m.value());
    if (auto s = blobs_.save_manifest(id, out.manifest); !s) {
      spdlog::warn("swarm: {}", s.error().message);
    }
  }
  seeds_[id] = held->file;
  return out;
}

result<void> disk_store::read_seed(const std::string& app, const std::string& id, const manifest& m,
                                   std::size_t index, std::span<std::byte> out) {
  auto it = seeds_.find(id);
  if (it == seeds_.end()) {
    auto held = locate_(app, id);
    if (!held) {
      return make_error(deploy::errc::not_found,
                        fmt::format("bundle {} of '{}' is not held here", id, app));
    }
    it = seeds_.emplace(id, held->file).first;
  }
  return swarm::read_piece(it->second, m, index, out);
}

result<std::vector<bool>> disk_store::open_download(const bundle_ref& ref, const manifest& m,
                                                    std::span<const std::byte> encoded) {
  MESH_CHECK(blobs_.save_manifest(ref.id, encoded));
  parts_.erase(ref.id);
  MESH_TRY(auto part, blobs_.open_part(ref.id, m));
  auto held = part.held();
  parts_.insert_or_assign(ref.id, std::move(part));
  return held;
}

result<void> disk_store::write_piece(const std::string& id, std::size_t index,
                                     std::span<const std::byte> data) {
  auto it = parts_.find(id);
  if (it == parts_.end()) {
    return make_error(deploy::errc::internal, fmt::format("no download of bundle {} is open", id));
  }
  return it->second.write(index, data);
}

result<void> disk_store::read_piece(const std::string& id, std::size_t index,
                                    std::span<std::byte> out) {
  auto it = parts_.find(id);
  if (it == parts_.end()) {
    return make_error(deploy::errc::internal, fmt::format("no download of bundle {} is open", id));
  }
  return it->second.read(index, out);
}

result<fs::path> disk_store::finish_download(const bundle_ref& ref) {
  auto it = parts_.find(ref.id);
  if (it == parts_.end()) {
    return make_error(deploy::errc::internal,
                      fmt::format("no download of bundle {} is open", ref.id));
  }
  const fs::path path = it->second.path();
  auto closed = it->second.close();
  parts_.erase(it);
  if (!closed) {
    blobs_.remove_part(ref.id);
    return closed.error();
  }
  return path;
}

void disk_store::close_download(const std::string& id, bool discard) {
  parts_.erase(id);
  if (discard) blobs_.remove_part(id);
}

std::vector<std::string> disk_store::open_ids() const {
  std::vector<std::string> out;
  for (const auto& [id, p] : parts_) out.push_back(id);
  return out;
}

}  // namespace meshdeploy::swarm
