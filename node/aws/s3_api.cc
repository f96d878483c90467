#include "node/aws/s3_api.h"

#include "node/api/url.h"
#include "node/aws/sigv4.h"
#include "node/deploy/errc.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <ctime>
#include <map>

namespace meshdeploy::aws {

namespace {

struct s3_error {
  unsigned status;
  std::string code;
  std::string message;
};

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string request_id() {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  std::string s;
  for (unsigned char c : b) s += fmt::format("{:02X}", c);
  return s;
}

api::api_response xml(unsigned status, std::string body) {
  api::api_response r;
  r.status = status;
  r.content_type = "application/xml";
  r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + body;
  r.headers.emplace_back("x-amz-request-id", request_id());
  return r;
}

api::api_response error_xml(const s3_error& e, std::string_view resource) {
  return xml(e.status, fmt::format("<Error><Code>{}</Code><Message>{}</Message><Resource>{}"
                                   "</Resource></Error>",
                                   e.code, xml_escape(e.message), xml_escape(resource)));
}

api::api_response empty(unsigned status) {
  api::api_response r;
  r.status = status;
  r.content_type = "application/xml";
  r.headers.emplace_back("x-amz-request-id", request_id());
  return r;
}

std::string http_date(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string iso_date(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

const std::string* header(const api::api_request& req, std::string_view name) {
  return api::find_header(req.headers, name);
}

s3_error from(const error& e) {
  if (e.code.category() == aws_category()) {
    const auto shape = error_shape(static_cast<errc>(e.code.value()), api_flavour::s3);
    return {shape.status, std::string(shape.code), e.message};
  }
  if (e.code == make_error_code(deploy::errc::invalid_argument)) {
    return {400, "InvalidArgument", e.message};
  }
  if (e.code == make_error_code(deploy::errc::not_found)) {
    return {404, "NoSuchUpload", e.message};
  }
  return {500, "InternalError", e.message};
}

// The <PartNumber>/<ETag> pairs of a CompleteMultipartUpload body, in order. Only these two
// elements are read; anything malformed is MalformedXML.
std::optional<std::vector<std::pair<std::uint32_t, std::string>>> parse_parts(
    std::string_view body) {
  std::vector<std::pair<std::uint32_t, std::string>> out;
  std::size_t pos = 0;
  auto element = [&](std::string_view name, std::size_t from,
                     std::size_t to) -> std::optional<std::string> {
    const std::string open = fmt::format("<{}>", name), close = fmt::format("</{}>", name);
    const auto a = body.find(open, from);
    if (a == std::string_view::npos || a > to) return std::nullopt;
    const auto b = body.find(close, a);
    if (b == std::string_view::npos || b > to) return std::nullopt;
    return std::string(body.substr(a + open.size(), b - a - open.size()));
  };
  while (true) {
    const auto start = body.find("<Part>", pos);
    if (start == std::string_view::npos) break;
    const auto end = body.find("</Part>", start);
    if (end == std::string_view::npos) return std::nullopt;
    auto num = element("PartNumber", start, end);
    auto etag = element("ETag", start, end);
    if (!num || !etag || num->empty() || num->size() > 5 ||
        !std::all_of(num->begin(), num->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    std::string e = *etag;
    // Clients send the ETag quoted, sometimes as &quot;.
    for (std::size_t q; (q = e.find("&quot;")) != std::string::npos;) e.replace(q, 6, "\"");
    if (e.empty() || e.front() != '"') e = "\"" + e + "\"";
    out.emplace_back(static_cast<std::uint32_t>(std::stoul(*num)), e);
    if (out.size() > max_parts) return std::nullopt;
    pos = end + 7;
  }
  if (out.empty()) return std::nullopt;  // S3: a completion lists at least one part
  return out;
}

class s3_api {
 public:
  explicit s3_api(s3_context ctx) : ctx_(std::move(ctx)) {}

  api::api_response handle(const api::api_request& req) const {
    const auto q = req.target.find('?');
    const std::string path = req.target.substr(0, q);
    const api::parsed_target t = api::parse_target(req.target);
    auto lookup = [this](const std::string& id) -> std::optional<std::string> {
      if (const access_key* k = ctx_.keys.find(id)) return k->secret;
      return std::nullopt;
    };
    if (auto v = verify({req.method, req.target, req.headers, req.body}, lookup,
                        ctx_.now_ms() / 1000, {uri_style::s3, "s3"});
        !v) {
      return error_xml(from(v.error()), path);
    }
    // Path style: /BUCKET/KEY; virtual-host style: Host BUCKET.localhost[:PORT], path /KEY.
    std::string bucket, key;
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    std::string host = header(req, "host") ? *header(req, "host") : std::string();
    host = host.substr(0, host.rfind(':') == std::string::npos || host.back() == ']'
                              ? host.size()
                              : host.rfind(':'));
    if (host.size() > 10 && host.ends_with(".localhost")) {
      bucket = host.substr(0, host.size() - 10);
      key = api::percent_decode(rest, false);
    } else {
      const auto slash = rest.find('/');
      bucket = api::percent_decode(rest.substr(0, slash), false);
      if (slash != std::string_view::npos) key = api::percent_decode(rest.substr(slash + 1), false);
    }
    auto has = [&](const char* k) { return t.query.count(k) > 0; };
    auto query = [&](const char* k) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string() : it->second;
    };
    const std::string& m = req.method;
    if (bucket.empty()) {
      if (m == "GET") return list_buckets();
      return error_xml({405, "MethodNotAllowed", "no such operation on the service"}, path);
    }
    if (auto b = object_store::validate_bucket(bucket); !b) {
      return error_xml({400, "InvalidBucketName", b.error().message}, path);
    }
    if (key.empty()) {
      if (m == "PUT") {
        if (auto c = ctx_.objects.create_bucket(bucket); !c)
          return error_xml(from(c.error()), path);
        api::api_response r = empty(200);
        r.headers.emplace_back("Location", "/" + bucket);
        return r;
      }
      if (!ctx_.objects.bucket_exists(bucket)) {
        if (m == "HEAD") return empty(404);
        return error_xml({404, "NoSuchBucket", "The specified bucket does not exist"}, path);
      }
      if (m == "HEAD") return empty(200);
      if (m == "GET" && has("location")) {
        return xml(200, "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>");
      }
      if (m == "GET") return list_objects(bucket, t.query);
      return error_xml({501, "NotImplemented", fmt::format("{} on a bucket is not supported", m)},
                       path);
    }
    if (auto k = object_store::validate_key(key); !k) {
      return error_xml({400, "KeyTooLongError", k.error().message}, path);
    }
    if (m == "PUT" && header(req, "x-amz-copy-source")) {
      return error_xml({501, "NotImplemented", "CopyObject is not supported"}, path);
    }
    if (m == "PUT" && has("partNumber") && has("uploadId")) {
      std::uint32_t n = 0;
      const std::string pn = query("partNumber");
      if (pn.empty() || pn.size() > 5 ||
          !std::all_of(pn.begin(), pn.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return error_xml({400, "InvalidArgument", "partNumber must be 1-10000"}, path);
      }
      n = static_cast<std::uint32_t>(std::stoul(pn));
      auto etag = ctx_.objects.put_part(bucket, query("uploadId"), n, req.body);
      if (!etag) return error_xml(from(etag.error()), path);
      api::api_response r = empty(200);
      r.headers.emplace_back("ETag", etag.value());
      return r;
    }
    if (m == "PUT") {
      auto info = ctx_.objects.put(bucket, key, req.body);
      if (!info) return error_xml(from(info.error()), path);
      api::api_response r = empty(200);
      r.headers.emplace_back("ETag", info.value().etag);
      return r;
    }
    if (m == "POST" && has("uploads")) {
      auto id = ctx_.objects.create_upload(bucket, key);
      if (!id) return error_xml(from(id.error()), path);
      return xml(200, fmt::format("<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
                                  "doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}"
                                  "</UploadId></InitiateMultipartUploadResult>",
                                  xml_escape(bucket), xml_escape(key), id.value()));
    }
    if (m == "POST" && has("uploadId")) {
      auto parts = parse_parts(req.body);
      if (!parts) {
        return error_xml({400, "MalformedXML", "the CompleteMultipartUpload body is malformed"},
                         path);
      }
      auto info = ctx_.objects.complete_upload(bucket, key, query("uploadId"), *parts);
      if (!info) {
        s3_error e = from(info.error());
        if (e.code == "InvalidArgument") e.code = "InvalidPart";
        return error_xml(e, path);
      }
      return xml(200, fmt::format("<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
                                  "doc/2006-03-01/\"><Location>/{}/{}</Location><Bucket>{}</Bucket>"
                                  "<Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
                                  xml_escape(bucket), xml_escape(key), xml_escape(bucket),
                                  xml_escape(key), xml_escape(info.value().etag)));
    }
    if (m == "DELETE" && has("uploadId")) {
      if (auto a = ctx_.objects.abort_upload(bucket, query("uploadId")); !a) {
        return error_xml(from(a.error()), path);
      }
      return empty(204);
    }
    if (m == "DELETE") {
      if (auto d = ctx_.objects.remove(bucket, key); !d) return error_xml(from(d.error()), path);
      return empty(204);
    }
    if (m == "GET" || m == "HEAD") return get_object(req, bucket, key, m == "HEAD", path);
    return error_xml({405, "MethodNotAllowed", fmt::format("{} is not supported", m)}, path);
  }

 private:
  api::api_response list_buckets() const {
    std::string body =
        "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>"
        "meshdeploy</ID><DisplayName>meshdeploy</DisplayName></Owner><Buckets>";
    for (const auto& b : ctx_.objects.buckets()) {
      body += fmt::format("<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
                          xml_escape(b), iso_date(0));
    }
    body += "</Buckets></ListAllMyBucketsResult>";
    return xml(200, body);
  }

  api::api_response list_objects(const std::string& bucket,
                                 const std::map<std::string, std::string>& q) const {
    auto get = [&](const char* k) {
      auto it = q.find(k);
      return it == q.end() ? std::string() : it->second;
    };
    std::size_t max_keys = 1000;
    if (const std::string mk = get("max-keys"); !mk.empty()) {
      if (mk.size() > 7 ||
          !std::all_of(mk.begin(), mk.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return error_xml({400, "InvalidArgument", "max-keys must be a number"}, "/" + bucket);
      }
      max_keys = std::min<std::size_t>(1000, std::stoul(mk));
    }
    const std::string prefix = get("prefix"), delimiter = get("delimiter");
    const std::string token = get("continuation-token");
    std::string start = get("start-after");
    if (!token.empty()) start = std::max(start, token);
    auto list = ctx_.objects.list(bucket, prefix, delimiter, start, max_keys);
    if (!list) return error_xml(from(list.error()), "/" + bucket);
    const auto& l = list.value();
    std::string body = fmt::format(
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name>"
        "<Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys><IsTruncated>{}"
        "</IsTruncated>",
        xml_escape(bucket), xml_escape(prefix), l.objects.size() + l.common_prefixes.size(),
        max_keys, l.truncated ? "true" : "false");
    if (!delimiter.empty()) body += fmt::format("<Delimiter>{}</Delimiter>", xml_escape(delimiter));
    if (!token.empty()) {
      body += fmt::format("<ContinuationToken>{}</ContinuationToken>", xml_escape(token));
    }
    if (l.truncated) {
      body += fmt::format("<NextContinuationToken>{}</NextContinuationToken>",
                          xml_escape(l.next_start));
    }
    for (const auto& o : l.objects) {
      body += fmt::format(
          "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size>"
          "<StorageClass>STANDARD</StorageClass></Contents>",
          xml_escape(o.key), iso_date(o.mtime_ms), xml_escape(o.etag), o.size);
    }
    for (const auto& p : l.common_prefixes) {
      body += fmt::format("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", xml_escape(p));
    }
    body += "</ListBucketResult>";
    return xml(200, body);
  }

  api::api_response get_object(const api::api_request& req, const std::string& bucket,
                               const std::string& key, bool head_only,
                               const std::string& path) const {
    auto info = ctx_.objects.head(bucket, key);
    if (!info) return error_xml(from(info.error()), path);
    if (!info.value()) {
      if (head_only) return empty(404);
      return error_xml({404, "NoSuchKey", "The specified key does not exist."}, path);
    }
    const object_info& o = *info.value();
    std::uint64_t first = 0, last = o.size == 0 ? 0 : o.size - 1;
    bool ranged = false;
    if (const std::string* range = header(req, "range"); range && o.size > 0) {
      // bytes=A-B, bytes=A-, bytes=-N (one range).
      std::string_view r = *range;
      bool good = r.starts_with("bytes=") && r.find(',') == std::string_view::npos;
      if (good) {
        r.remove_prefix(6);
        const auto dash = r.find('-');
        const std::string a(r.substr(0, dash));
        const std::string b(dash == std::string_view::npos ? "" : r.substr(dash + 1));
        auto digits = [](const std::string& s) {
          return !s.empty() && s.size() <= 19 &&
                 std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
        };
        if (dash == std::string_view::npos || (a.empty() && !digits(b)) ||
            (!a.empty() && !digits(a)) || (!b.empty() && !digits(b))) {
          good = false;
        } else if (a.empty()) {
          const std::uint64_t n = std::stoull(b);
          first = n >= o.size ? 0 : o.size - n;
        } else {
          first = std::stoull(a);
          if (!b.empty()) last = std::min<std::uint64_t>(last, std::stoull(b));
        }
        if (good && (first >= o.size || first > last)) {
          return error_xml({416, "InvalidRange", "The requested range is not satisfiable"}, path);
        }
        ranged = good;
      }
    }
    const std::uint64_t length = o.size == 0 ? 0 : last - first + 1;
    api::api_response r;
    r.status = ranged ? 206 : 200;
    r.content_type = "binary/octet-stream";
    r.headers.emplace_back("ETag", o.etag);
    r.headers.emplace_back("Last-Modified", http_date(o.mtime_ms));
    r.headers.emplace_back("Accept-Ranges", "bytes");
    r.headers.emplace_back("x-amz-request-id", request_id());
    if (ranged) {
      r.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, last, o.size));
    }
    if (head_only) {
      r.headers.emplace_back("Content-Length", std::to_string(length));
      return r;
    }
    if (length > max_s3_get_bytes) {
      return error_xml({400, "InvalidRequest",
                        fmt::format("objects over {} bytes are served in ranges (Range header)",
                                    max_s3_get_bytes)},
                       path);
    }
    auto bytes = ctx_.objects.read(bucket, key, first, length);
    if (!bytes) return error_xml(from(bytes.error()), path);
    r.body = std::move(bytes).value();
    return r;
  }

  s3_context ctx_;
};

}  // namespace

std::string s3_route(const api::api_request& req) {
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));
  while (path.starts_with('/')) path.remove_prefix(1);
  if (path.empty()) return "S3:service";
  const auto slash = path.find('/');
  return slash == std::string_view::npos || slash + 1 == path.size() ? "S3:bucket" : "S3:object";
}

api::router::route_handler make_s3_routes(s3_context ctx) {
  auto api = std::make_shared<s3_api>(std::move(ctx));
  return [api](const api::api_request& req) -> std::optional<api::api_response> {
    return api->handle(req);
  };
}

}  // namespace meshdeploy::aws
