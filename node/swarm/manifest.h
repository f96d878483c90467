// A bundle's piece manifest (DESIGN §6, docs/swarm.md): the bundle is cut into
// fixed-size pieces and the manifest lists each piece's BLAKE2b-256 hash. The
// manifest is named by the BLAKE2b-256 of its encoding, and that name travels
// inside the operator-signed revision record (revision_payload::manifest), so a
// manifest fetched from any peer, and then every piece, is verified before use.
//
// Wire (msgpack): [1, size:u64, piece_size:u32, hashes:bin]  (hashes = 32 bytes per piece)
#pragma once

#include "storage/result.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace meshdeploy::swarm {

// 256 KiB: small enough that the pipeline term of T* = S/B + (log2 N) * c/B stays under 2% of
// S/B for a 64 MiB bundle on 16 hosts (docs/swarm.md "Piece size"), large enough that a 1 GiB
// bundle has 4,096 pieces (128 KiB of hashes, a 512-byte bitfield).
inline constexpr std::uint32_t default_piece_size = 256u * 1024u;
inline constexpr std::uint32_t min_piece_size = 16u * 1024u;
inline constexpr std::uint32_t max_piece_size = 16u * 1024u * 1024u;
// A manifest may describe at most this many pieces (decoders refuse more): 16 GiB at 256 KiB.
inline constexpr std::size_t max_pieces = 65536;

using piece_hash = std::array<std::byte, 32>;

struct manifest {
  std::uint64_t size = 0;  // bundle bytes
  std::uint32_t piece_size = default_piece_size;
  std::vector<piece_hash> pieces;  // in bundle order; ceil(size / piece_size) of them

  [[nodiscard]] std::size_t piece_count() const { return pieces.size(); }
  // Byte offset and length of piece `i` (< piece_count()); the last piece may be shorter.
  [[nodiscard]] std::uint64_t piece_offset(std::size_t i) const;
  [[nodiscard]] std::uint32_t piece_length(std::size_t i) const;
  friend bool operator==(const manifest&, const manifest&) = default;
};

piece_hash hash_piece(std::span<const std::byte> data);

std::vector<std::byte> encode_manifest(const manifest& m);
// Errors: invalid_argument naming what is wrong (not msgpack, wrong version, piece size outside
// [min_piece_size, max_piece_size], hash bytes not 32 * ceil(size / piece_size), more than
// max_pieces pieces, trailing bytes).
result<manifest> decode_manifest(std::span<const std::byte> bytes);
// BLAKE2b-256 hex of an encoded manifest: the name signed into revision records.
std::string manifest_id(std::span<const std::byte> encoded);

// Reads `file` and hashes it piece by piece. Errors: io_error naming the file.
result<manifest> manifest_of_file(const std::filesystem::path& file,
                                  std::uint32_t piece_size = default_piece_size);

}  // namespace meshdeploy::swarm
