// The objects the S3 front end (node/aws/s3_api.h) holds: this node's local files, under
// <data-dir>/aws/s3/<bucket>/. An object becomes a revision in the mesh only when a CodeDeploy
// call names it (node/aws/revision_source.h); the store itself does not replicate.
//
// Layout: <root>/<bucket>/o/<h>.data and <h>.meta, h = BLAKE2b-256 hex of the key (so any key,
// up to 1024 bytes, is a safe file name); .meta is JSON {key, size, etag, mtimeMs}. Multipart
// uploads: <root>/<bucket>/u/<upload id>/<part number> with <part number>.etag. Writes go to a
// temporary file renamed into place, so a reader sees the old or the new object.
//
// Threading: methods may be called from any thread; concurrent writes of one key end with one
// of the writers' objects (rename is atomic). No method throws.
#pragma once

#include "storage/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::aws {

struct object_info {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;  // quoted, as S3 sends it
  std::int64_t mtime_ms = 0;
};

struct list_result {
  std::vector<object_info> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_start;  // the last key or prefix returned, when truncated
};

inline constexpr std::size_t max_key_bytes = 1024;
inline constexpr std::uint32_t max_parts = 10000;

class object_store {
 public:
  explicit object_store(std::filesystem::path root);
  object_store(const object_store&) = delete;
  object_store& operator=(const object_store&) = delete;

  // S3's rules: 3..63 of [a-z0-9.-], starting and ending with a letter or digit. Errors:
  // deploy::errc::invalid_argument naming the name.
  static result<void> validate_bucket(std::string_view bucket);
  // 1..1024 bytes, no NUL.
  static result<void> validate_key(std::string_view key);

  bool bucket_exists(const std::string& bucket) const;
  result<void> create_bucket(const std::string& bucket);
  std::vector<std::string> buckets() const;

  // Stores `bytes` as the object (creating the bucket). Errors: internal on filesystem failure.
  result<object_info> put(const std::string& bucket, const std::string& key,
                          std::string_view bytes);
  // nullopt when there is no such object.
  result<std::optional<object_info>> head(const std::string& bucket, const std::string& key) const;
  // Where the object's bytes live (whether or not it exists).
  std::filesystem::path data_path(const std::string& bucket, const std::string& key) const;
  // `length` bytes from `offset` (clamped to the object's end).
  result<std::string> read(const std::string& bucket, const std::string& key, std::uint64_t offset,
                           std::uint64_t length) const;
  result<void> remove(const std::string& bucket, const std::string& key);
  // Keys > start_after beginning with prefix, sorted; with a delimiter, keys that have it after
  // the prefix are rolled up into common prefixes. At most max_keys entries (objects and
  // prefixes together).
  result<list_result> list(const std::string& bucket, const std::string& prefix,
                           const std::string& delimiter, const std::string& start_after,
                           std::size_t max_keys) const;

  // Multipart upload. Errors: not_found (no such upload), invalid_argument (part number outside
  // 1..10000, a listed part missing or its ETag different, parts not ascending).
  result<std::string> create_upload(const std::string& bucket, const std::string& key);
  result<std::string> put_part(const std::string& bucket, const std::string& upload_id,
                               std::uint32_t part, std::string_view bytes);
  result<object_info> complete_upload(
      const std::string& bucket, const std::string& key, const std::string& upload_id,
      const std::vector<std::pair<std::uint32_t, std::string>>& parts);
  result<void> abort_upload(const std::string& bucket, const std::string& upload_id);

 private:
  std::filesystem::path bucket_dir(const std::string& bucket) const;
  std::filesystem::path upload_dir(const std::string& bucket, const std::string& id) const;
  result<object_info> commit(const std::string& bucket, const std::string& key,
                             const std::filesystem::path& tmp, std::uint64_t size,
                             std::string etag);

  std::filesystem::path root_;
};

}  // namespace meshdeploy::aws
