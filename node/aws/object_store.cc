#include "node/aws/object_store.h"

#include "node/deploy/errc.h"
#include "node/deploy/status.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace meshdeploy::aws {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  std::string s;
  s.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

std::string key_hash(std::string_view key) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                     nullptr, 0);
  return hex(h, sizeof h);
}

std::string etag_of(std::string_view bytes) {
  unsigned char h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size(), nullptr, 0);
  return hex(h, sizeof h);
}

error io_error(const std::string& what) { return make_error(deploy::errc::internal, what); }

std::string temp_suffix() {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  return ".tmp-" + hex(b, sizeof b);
}

result<void> write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return io_error(fmt::format("cannot write {}", p.string()));
  return ok();
}

result<std::string> read_small(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return io_error(fmt::format("cannot read {}", p.string()));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<object_info> read_meta(const fs::path& meta) {
  auto text = read_small(meta);
  if (!text) return std::nullopt;
  const json j = json::parse(text.value(), nullptr, false);
  if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned() || !j.contains("etag") || !j["etag"].is_string()) {
    return std::nullopt;
  }
  return object_info{j["key"].get<std::string>(), j["size"].get<std::uint64_t>(),
                     j["etag"].get<std::string>(), j.value("mtimeMs", std::int64_t{0})};
}

bool valid_upload_id(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

object_store::object_store(fs::path root) : root_(std::move(root)) {}

result<void> object_store::validate_bucket(std::string_view b) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  const bool good =
      b.size() >= 3 && b.size() <= 63 && alnum(b.front()) && alnum(b.back()) &&
      std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; }) &&
      b.find("..") == std::string_view::npos;
  if (!good) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("bucket name '{}' is not 3-63 characters of a-z, 0-9, '.' and "
                                  "'-' starting and ending with a letter or digit",
                                  b.substr(0, 80)));
  }
  return ok();
}

result<void> object_store::validate_key(std::string_view key) {
  if (key.empty() || key.size() > max_key_bytes || key.find('\0') != std::string_view::npos) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("object key must be 1-{} bytes without NUL", max_key_bytes));
  }
  return ok();
}

fs::path object_store::bucket_dir(const std::string& bucket) const { return root_ / bucket; }

fs::path object_store::upload_dir(const std::string& bucket, const std::string& id) const {
  return bucket_dir(bucket) / "u" / id;
}

bool object_store::bucket_exists(const std::string& bucket) const {
  std::error_code ec;
  return validate_bucket(bucket) && fs::is_directory(bucket_dir(bucket), ec);
}

result<void> object_store::create_bucket(const std::string& bucket) {
  MESH_CHECK(validate_bucket(bucket));
  std::error_code ec;
  fs::create_directories(bucket_dir(bucket) / "o", ec);
  if (!ec) fs::create_directories(bucket_dir(bucket) / "u", ec);
  if (ec) return io_error(fmt::format("cannot create bucket {}: {}", bucket, ec.message()));
  return ok();
}

std::vector<std::string> object_store::buckets() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec) && validate_bucket(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path object_store::data_path(const std::string& bucket, const std::string& key) const {
  return bucket_dir(bucket) / "o" / (key_hash(key) + ".data");
}

result<object_info> object_store::commit(const std::string& bucket, const std::string& key,
                                         const fs::path& tmp, std::uint64_t size,
                                         std::string etag) {
  const fs::path data = data_path(bucket, key);
  fs::path meta = data;
  meta.replace_extension(".meta");
  object_info info{key, size, "\"" + etag + "\"", deploy::now_ms()};
  const fs::path meta_tmp = meta.string() + temp_suffix();
  MESH_CHECK(write_file(
      meta_tmp,
      json{{"key", info.key}, {"size", info.size}, {"etag", info.etag}, {"mtimeMs", info.mtime_ms}}
          .dump()));
  std::error_code ec;
  fs::rename(tmp, data, ec);
  if (!ec) fs::rename(meta_tmp, meta, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fs::remove(meta_tmp, ec);
    return io_error(fmt::format("cannot store object {}/{}", bucket, key));
  }
  return info;
}

result<object_info> object_store::put(const std::string& bucket, const std::string& key,
                                      std::string_view bytes) {
  MESH_CHECK(validate_key(key));
  MESH_CHECK(create_bucket(bucket));
  const fs::path tmp = data_path(bucket, key).string() + temp_suffix();
  if (auto w = write_file(tmp, bytes); !w) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return w.error();
  }
  return commit(bucket, key, tmp, bytes.size(), etag_of(bytes));
}

result<std::optional<object_info>> object_store::head(const std::string& bucket,
                                                      const std::string& key) const {
  if (!validate_bucket(bucket) || !validate_key(key)) return std::optional<object_info>();
  fs::path meta = data_path(bucket, key);
  meta.replace_extension(".meta");
  std::error_code ec;
  if (!fs::exists(meta, ec)) return std::optional<object_info>();
  auto info = read_meta(meta);
  if (!info || info->key != key) {
    return io_error(fmt::format("object {}/{}: unreadable metadata", bucket, key));
  }
  return info;
}

result<std::string> object_store::read(const std::string& bucket, const std::string& key,
                                       std::uint64_t offset, std::uint64_t length) const {
  std::ifstream in(data_path(bucket, key), std::ios::binary);
  if (!in) return io_error(fmt::format("cannot read object {}/{}", bucket, key));
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(length, '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

result<void> object_store::remove(const std::string& bucket, const std::string& key) {
  if (!validate_bucket(bucket) || !validate_key(key)) return ok();
  fs::path data = data_path(bucket, key);
  fs::path meta = data;
  meta.replace_extension(".meta");
  std::error_code ec;
  fs::remove(meta, ec);
  fs::remove(data, ec);
  return ok();
}

result<list_result> object_store::list(const std::string& bucket, const std::string& prefix,
                                       const std::string& delimiter, const std::string& start_after,
                                       std::size_t max_keys) const {
  std::map<std::string, object_info> all;
  std::error_code ec;
  std::size_t scanned = 0;
  for (fs::directory_iterator it(bucket_dir(bucket) / "o", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (++scanned > 1'000'000) break;  // a bound on a hostile or huge folder
    if (it->path().extension() != ".meta") continue;
    auto info = read_meta(it->path());
    if (!info || !info->key.starts_with(prefix) || info->key <= start_after) continue;
    all.emplace(info->key, std::move(*info));
  }
  list_result out;
  std::size_t n = 0;
  for (auto it = all.begin(); it != all.end(); ++it) {
    const std::string& key = it->first;
    std::string rolled;
    if (!delimiter.empty()) {
      const auto d = key.find(delimiter, prefix.size());
      if (d != std::string::npos) rolled = key.substr(0, d + delimiter.size());
    }
    if (!rolled.empty() && !out.common_prefixes.empty() && out.common_prefixes.back() == rolled) {
      continue;
    }
    if (n == max_keys) {
      out.truncated = true;
      break;
    }
    ++n;
    if (!rolled.empty()) {
      out.common_prefixes.push_back(rolled);
      // Everything under this prefix sorts before the first key after it.
      out.next_start = rolled;
    } else {
      out.objects.push_back(it->second);
      out.next_start = key;
    }
  }
  if (!out.truncated) out.next_start.clear();
  return out;
}

result<std::string> object_store::create_upload(const std::string& bucket, const std::string& key) {
  MESH_CHECK(validate_key(key));
  MESH_CHECK(create_bucket(bucket));
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  const std::string id = hex(b, sizeof b);
  std::error_code ec;
  fs::create_directories(upload_dir(bucket, id), ec);
  if (ec) return io_error(fmt::format("cannot start an upload: {}", ec.message()));
  MESH_CHECK(write_file(upload_dir(bucket, id) / "key", key));
  return id;
}

result<std::string> object_store::put_part(const std::string& bucket, const std::string& upload_id,
                                           std::uint32_t part, std::string_view bytes) {
  std::error_code ec;
  if (!valid_upload_id(upload_id) || !validate_bucket(bucket) ||
      !fs::is_directory(upload_dir(bucket, upload_id), ec)) {
    return make_error(deploy::errc::not_found,
                      fmt::format("no multipart upload '{}'", upload_id.substr(0, 64)));
  }
  if (part < 1 || part > max_parts) {
    return make_error(deploy::errc::invalid_argument,
                      fmt::format("part number {} is outside 1-{}", part, max_parts));
  }
  const fs::path p = upload_dir(bucket, upload_id) / std::to_string(part);
  const fs::path tmp = p.string() + temp_suffix();
  MESH_CHECK(write_file(tmp, bytes));
  const std::string etag = "\"" + etag_of(bytes) + "\"";
  MESH_CHECK(write_file(p.string() + ".etag", etag));
  fs::rename(tmp, p, ec);
  if (ec) return io_error(fmt::format("cannot store part {}: {}", part, ec.message()));
  return etag;
}

result<object_info> object_store::complete_upload(
    const std::string& bucket, const std::string& key, const std::string& upload_id,
    const std::vector<std::pair<std::uint32_t, std::string>>& parts) {
  std::error_code ec;
  if (!valid_upload_id(upload_id) || !validate_bucket(bucket) ||
      !fs::is_directory(upload_dir(bucket, upload_id), ec)) {
    return make_error(deploy::errc::not_found,
                      fmt::format("no multipart upload '{}'", upload_id.substr(0, 64)));
  }
  const fs::path dir = upload_dir(bucket, upload_id);
  auto stored_key = read_small(dir / "key");
  if (!stored_key || stored_key.value() != key) {
    return make_error(deploy::errc::invalid_argument, "the upload was started for another key");
  }
  if (parts.empty()) {
    return make_error(deploy::errc::invalid_argument, "a multipart upload needs at least one part");
  }
  const fs::path tmp = data_path(bucket, key).string() + temp_suffix();
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  std::uint64_t size = 0;
  std::string etag_bytes;
  std::uint32_t last = 0;
  std::vector<char> buf(1 << 20);
  for (const auto& [n, etag] : parts) {
    if (n <= last) {
      out.close();
      fs::remove(tmp, ec);
      return make_error(deploy::errc::invalid_argument,
                        "the list of parts is not in ascending order (InvalidPartOrder)");
    }
    last = n;
    auto stored = read_small(dir / (std::to_string(n) + ".etag"));
    if (!stored || stored.value() != etag) {
      out.close();
      fs::remove(tmp, ec);
      return make_error(
          deploy::errc::invalid_argument,
          fmt::format("part {} was not uploaded or its ETag differs (InvalidPart)", n));
    }
    etag_bytes += stored.value();
    std::ifstream in(dir / std::to_string(n), std::ios::binary);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      out.write(buf.data(), in.gcount());
      size += static_cast<std::uint64_t>(in.gcount());
    }
  }
  out.close();
  if (!out) {
    fs::remove(tmp, ec);
    return io_error(fmt::format("cannot assemble object {}/{}", bucket, key));
  }
  auto info =
      commit(bucket, key, tmp, size, etag_of(etag_bytes) + "-" + std::to_string(parts.size()));
  if (info) fs::remove_all(dir, ec);
  return info;
}

result<void> object_store::abort_upload(const std::string& bucket, const std::string& upload_id) {
  std::error_code ec;
  if (!valid_upload_id(upload_id) || !validate_bucket(bucket) ||
      !fs::is_directory(upload_dir(bucket, upload_id), ec)) {
    return make_error(deploy::errc::not_found,
                      fmt::format("no multipart upload '{}'", upload_id.substr(0, 64)));
  }
  fs::remove_all(upload_dir(bucket, upload_id), ec);
  return ok();
}

}  // namespace meshdeploy::aws
