#include "node/aws/sigv4.h"

#include "node/api/url.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace meshdeploy::aws {
namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr std::size_t max_authorization_bytes = 8192;
constexpr std::size_t max_signed_headers = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Trims and collapses each run of spaces and tabs inside the value into one space.
std::string canonical_header_value(std::string_view v) {
  v = trim(v);
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

bool is_lower_hex(std::string_view s, std::size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string canonical_uri(std::string_view path, uri_style style) {
  if (path.empty()) return "/";
  if (style == uri_style::s3) {
    // Segments as the client encoded them, decoded and encoded once; empty segments are part
    // of an S3 key and stay.
    std::string out;
    std::size_t pos = 0;
    while (pos <= path.size()) {
      const std::size_t slash = path.find('/', pos);
      const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
      out += uri_encode(api::percent_decode(path.substr(pos, end - pos), false), false);
      if (slash == std::string_view::npos) break;
      out += '/';
      pos = slash + 1;
    }
    return out;
  }
  // Remove "." and ".." segments and empty ones (RFC 3986 5.2.4 and AWS's "//" case), then
  // encode the path as sent once more.
  std::vector<std::string_view> segs;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view seg = path.substr(pos, slash - pos);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    pos = slash + 1;
  }
  std::string normalized;
  for (const auto& s : segs) {
    normalized += '/';
    normalized += s;
  }
  if (normalized.empty()) return "/";
  if (path.back() == '/') normalized += '/';
  return uri_encode(normalized, true);
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      params.emplace_back(uri_encode(api::percent_decode(pair.substr(0, eq), false), false),
                          eq == std::string_view::npos
                              ? std::string()
                              : uri_encode(api::percent_decode(pair.substr(eq + 1), false), false));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

error fail(errc e, std::string message) { return make_error(e, std::move(message)); }

}  // namespace

std::string credential_scope::to_string() const {
  return fmt::format("{}/{}/{}/aws4_request", date, region, service);
}

result<authorization> parse_authorization(std::string_view header) {
  if (header.size() > max_authorization_bytes) {
    return fail(errc::incomplete_signature, "Authorization header is too long");
  }
  header = trim(header);
  if (header.substr(0, algorithm.size()) != algorithm ||
      (header.size() > algorithm.size() && header[algorithm.size()] != ' ')) {
    return fail(errc::incomplete_signature,
                "Authorization header requires the AWS4-HMAC-SHA256 algorithm");
  }
  header.remove_prefix(algorithm.size());
  authorization a;
  bool have_credential = false;
  bool have_headers = false;
  bool have_signature = false;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view part = trim(header.substr(0, comma));
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return fail(errc::incomplete_signature,
                  fmt::format("Authorization header element '{}' is not key=value", part));
    }
    const std::string_view key = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    if (key == "Credential") {
      // AKID/DATE/REGION/SERVICE/aws4_request; the key id itself has no '/'.
      std::vector<std::string_view> f;
      std::size_t pos = 0;
      while (f.size() < 6) {
        const std::size_t slash = value.find('/', pos);
        f.push_back(value.substr(pos, slash == std::string_view::npos ? value.npos : slash - pos));
        if (slash == std::string_view::npos) break;
        pos = slash + 1;
      }
      if (f.size() != 5 || f[4] != "aws4_request" || f[0].empty() || f[1].size() != 8 ||
          !std::all_of(f[1].begin(), f[1].end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          f[2].empty() || f[3].empty()) {
        return fail(errc::incomplete_signature,
                    fmt::format("Credential '{}' is not ACCESS_KEY/YYYYMMDD/REGION/SERVICE/"
                                "aws4_request",
                                value));
      }
      a.scope = credential_scope{std::string(f[0]), std::string(f[1]), std::string(f[2]),
                                 std::string(f[3])};
      have_credential = true;
    } else if (key == "SignedHeaders") {
      std::size_t pos = 0;
      while (pos <= value.size()) {
        const std::size_t semi = value.find(';', pos);
        const std::string_view name =
            value.substr(pos, semi == std::string_view::npos ? value.npos : semi - pos);
        if (name.empty() || lower(name) != name) {
          return fail(
              errc::incomplete_signature,
              fmt::format("SignedHeaders '{}' must be lower-case names separated by ';'", value));
        }
        a.signed_headers.emplace_back(name);
        if (a.signed_headers.size() > max_signed_headers) {
          return fail(errc::incomplete_signature, "SignedHeaders lists too many headers");
        }
        if (semi == std::string_view::npos) break;
        pos = semi + 1;
      }
      if (!std::is_sorted(a.signed_headers.begin(), a.signed_headers.end()) ||
          std::adjacent_find(a.signed_headers.begin(), a.signed_headers.end()) !=
              a.signed_headers.end()) {
        return fail(errc::incomplete_signature,
                    fmt::format("SignedHeaders '{}' must be sorted and without repeats", value));
      }
      have_headers = true;
    } else if (key == "Signature") {
      if (!is_lower_hex(value, 64)) {
        return fail(errc::incomplete_signature, "Signature must be 64 lower-case hex digits");
      }
      a.signature = std::string(value);
      have_signature = true;
    } else {
      return fail(errc::incomplete_signature,
                  fmt::format("Authorization header has an unknown element '{}'", key));
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (!have_credential)
    return fail(errc::incomplete_signature, "Authorization header requires a Credential");
  if (!have_headers)
    return fail(errc::incomplete_signature, "Authorization header requires SignedHeaders");
  if (!have_signature)
    return fail(errc::incomplete_signature, "Authorization header requires a Signature");
  return a;
}

std::string sha256_hex(std::string_view data) {
  mac h;
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return to_hex(h);
}

mac hmac_sha256(std::string_view key, std::string_view message) {
  // crypto_auth_hmacsha256_init takes keys of any length (hashing long ones, as HMAC does).
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  mac out;
  crypto_auth_hmacsha256_final(&st, out.data());
  return out;
}

std::string to_hex(const mac& m) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (std::uint8_t b : m) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string canonical_request(std::string_view method, std::string_view target,
                              const header_list& headers,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash, uri_style style) {
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  std::string out;
  out += method;
  out += '\n';
  out += canonical_uri(path, style);
  out += '\n';
  out += canonical_query(query);
  out += '\n';
  for (const auto& name : signed_headers) {
    out += name;
    out += ':';
    bool first = true;
    for (const auto& [n, v] : headers) {
      if (!iequals(n, name)) continue;
      if (!first) out += ',';
      out += canonical_header_value(v);
      first = false;
    }
    out += '\n';
  }
  out += '\n';
  for (std::size_t i = 0; i < signed_headers.size(); ++i) {
    if (i) out += ';';
    out += signed_headers[i];
  }
  out += '\n';
  out += payload_hash;
  return out;
}

std::string string_to_sign(std::string_view amz_date, const credential_scope& scope,
                           std::string_view canonical) {
  return fmt::format("{}\n{}\n{}\n{}", algorithm, amz_date, scope.to_string(),
                     sha256_hex(canonical));
}

mac signing_key(std::string_view secret, const credential_scope& scope) {
  const std::string k_secret = "AWS4" + std::string(secret);
  const mac k_date = hmac_sha256(k_secret, scope.date);
  const mac k_region = hmac_sha256(
      std::string_view(reinterpret_cast<const char*>(k_date.data()), k_date.size()), scope.region);
  const mac k_service =
      hmac_sha256(std::string_view(reinterpret_cast<const char*>(k_region.data()), k_region.size()),
                  scope.service);
  return hmac_sha256(
      std::string_view(reinterpret_cast<const char*>(k_service.data()), k_service.size()),
      "aws4_request");
}

std::string signature(std::string_view secret, const credential_scope& scope,
                      std::string_view sts) {
  const mac key = signing_key(secret, scope);
  return to_hex(
      hmac_sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), sts));
}

std::optional<std::int64_t> parse_amz_date(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto y = num(0, 4), mo = num(4, 2), d = num(6, 2), h = num(9, 2), mi = num(11, 2),
             se = num(13, 2);
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *se > 60) {
    return std::nullopt;
  }
  // Days from civil (H. Hinnant's algorithm), so no time zone or locale is involved.
  const int yy = *y - (*mo <= 2 ? 1 : 0);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(*mo + (*mo > 2 ? -3 : 9)) + 2) / 5 +
                       static_cast<unsigned>(*d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return days * 86400 + *h * 3600 + *mi * 60 + *se;
}

result<verified_request> verify(const request_view& req, const secret_lookup& lookup,
                                std::int64_t now_s, const verify_options& options) {
  const std::string* auth_header = find_header(req.headers, "authorization");
  if (auth_header == nullptr) {
    return fail(errc::missing_authentication, "Missing Authentication Token");
  }
  MESH_TRY(authorization a, parse_authorization(*auth_header));
  if (a.scope.service != options.service) {
    return fail(
        errc::incomplete_signature,
        fmt::format("Credential should be scoped to correct service: '{}'", options.service));
  }
  const std::string* amz_date = find_header(req.headers, "x-amz-date");
  if (amz_date == nullptr) {
    return fail(errc::incomplete_signature, "Authorization requires the X-Amz-Date header");
  }
  const auto when = parse_amz_date(*amz_date);
  if (!when) {
    return fail(errc::incomplete_signature,
                fmt::format("X-Amz-Date '{}' is not YYYYMMDDTHHMMSSZ", *amz_date));
  }
  if (amz_date->substr(0, 8) != a.scope.date) {
    return fail(
        errc::incomplete_signature,
        fmt::format("Credential should be scoped to a valid date: '{}'", amz_date->substr(0, 8)));
  }
  const std::int64_t skew = *when > now_s ? *when - now_s : now_s - *when;
  if (skew > options.max_skew.count()) {
    return fail(errc::request_time_skewed,
                fmt::format("Signature expired: the request time {} is more than {} s from the "
                            "server time",
                            *amz_date, options.max_skew.count()));
  }
  if (std::find(a.signed_headers.begin(), a.signed_headers.end(), "host") ==
      a.signed_headers.end()) {
    return fail(errc::incomplete_signature, "SignedHeaders must include host");
  }
  for (const auto& name : a.signed_headers) {
    if (find_header(req.headers, name) == nullptr) {
      return fail(errc::incomplete_signature,
                  fmt::format("signed header '{}' is not in the request", name));
    }
  }
  std::string payload_hash;
  if (const std::string* h = find_header(req.headers, "x-amz-content-sha256")) {
    if (*h == "UNSIGNED-PAYLOAD") {
      payload_hash = *h;
    } else if (h->starts_with("STREAMING-")) {
      return fail(
          errc::unsupported_payload,
          fmt::format("X-Amz-Content-Sha256 '{}' (aws-chunked uploads) is not supported", *h));
    } else {
      const std::string actual = sha256_hex(req.body);
      if (lower(*h) != actual) {
        return fail(errc::content_sha256_mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed");
      }
      payload_hash = *h;
    }
  } else {
    payload_hash = sha256_hex(req.body);
  }
  const std::optional<std::string> secret = lookup(a.scope.access_key_id);
  if (!secret) {
    return fail(errc::unknown_access_key,
                fmt::format("The security token included in the request is invalid (access key "
                            "'{}' is unknown)",
                            a.scope.access_key_id));
  }
  const std::string canonical = canonical_request(req.method, req.target, req.headers,
                                                  a.signed_headers, payload_hash, options.style);
  const std::string expected =
      signature(*secret, a.scope, string_to_sign(*amz_date, a.scope, canonical));
  if (sodium_memcmp(expected.data(), a.signature.data(), expected.size()) != 0) {
    return fail(errc::invalid_signature,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.");
  }
  return verified_request{a.scope.access_key_id, a.scope.region};
}

std::string sign(std::string_view secret, const credential_scope& scope, std::string_view amz_date,
                 std::string_view method, std::string_view target, const header_list& headers,
                 const std::vector<std::string>& signed_headers, std::string_view payload_hash,
                 uri_style style) {
  const std::string canonical =
      canonical_request(method, target, headers, signed_headers, payload_hash, style);
  std::string names;
  for (const auto& n : signed_headers) names += (names.empty() ? "" : ";") + n;
  return fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", algorithm,
                     scope.access_key_id, scope.to_string(), names,
                     signature(secret, scope, string_to_sign(amz_date, scope, canonical)));
}

}  // namespace meshdeploy::aws
