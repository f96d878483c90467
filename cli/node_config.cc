#include "cli/node_config.h"

#include "gossip/config.h"
#include "node/api/host_check.h"
#include "node/deploy/registry.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <set>

namespace meshdeploy::cli {

namespace {

constexpr std::size_t max_config_bytes = 1 << 20;
constexpr std::string_view env_prefix = "MESHDEPLOY_NODE_";

error config_error(std::string message) {
  return error{boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
               std::move(message)};
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// A HOST:PORT with a numeric port; the node resolves and binds it later.
std::string check_host_port(const std::string& v, bool port_zero_ok) {
  const auto colon = v.rfind(':');
  std::uint64_t port = 0;
  if (colon == std::string::npos || colon == 0 || !parse_u64(v.substr(colon + 1), port) ||
      port > 65535 || (port == 0 && !port_zero_ok)) {
    return fmt::format("'{}' is not HOST:PORT (for example 10.0.0.5:7946)", v);
  }
  return "";
}

// Setters shared by several rows of the table.
using setter = std::function<std::string(node::node_options&, const std::vector<std::string>&)>;

setter text(std::string node::node_options::*field, bool may_be_empty = false) {
  return [field, may_be_empty](node::node_options& o, const std::vector<std::string>& v) {
    if (v[0].empty() && !may_be_empty) return std::string("must not be empty");
    o.*field = v[0];
    return std::string();
  };
}

setter path(std::filesystem::path node::node_options::*field) {
  return [field](node::node_options& o, const std::vector<std::string>& v) {
    if (v[0].empty()) return std::string("must not be empty");
    o.*field = v[0];
    return std::string();
  };
}

setter address(std::string* (*field)(node::node_options&), bool port_zero_ok,
               bool may_be_empty = false) {
  return [=](node::node_options& o, const std::vector<std::string>& v) {
    if (v[0].empty() && may_be_empty) {
      field(o)->clear();
      return std::string();
    }
    if (auto why = check_host_port(v[0], port_zero_ok); !why.empty()) return why;
    *field(o) = v[0];
    return std::string();
  };
}

template <class Int>
setter count(Int* (*field)(node::node_options&)) {
  return [field](node::node_options& o, const std::vector<std::string>& v) {
    std::uint64_t n = 0;
    if (!parse_u64(v[0], n) || n > std::numeric_limits<Int>::max()) {
      return fmt::format("'{}' is not a whole number from 0 to {}", v[0],
                         std::numeric_limits<Int>::max());
    }
    *field(o) = static_cast<Int>(n);
    return std::string();
  };
}

setter bytes(std::uint64_t* (*field)(node::node_options&)) {
  return [field](node::node_options& o, const std::vector<std::string>& v) {
    std::uint64_t n = 0;
    if (!parse_byte_size(v[0], n)) {
      return fmt::format("'{}' is not a byte size (a number with an optional K, M or G suffix)",
                         v[0]);
    }
    *field(o) = n;
    return std::string();
  };
}

setter one_of(std::string node::node_options::*field, std::vector<std::string> allowed) {
  return [field, allowed](node::node_options& o, const std::vector<std::string>& v) {
    if (std::find(allowed.begin(), allowed.end(), v[0]) == allowed.end()) {
      return fmt::format("'{}' is not one of {}", v[0], fmt::join(allowed, ", "));
    }
    o.*field = v[0];
    return std::string();
  };
}

bool parse_bool(const std::string& s, bool& out) {
  std::string l;
  for (char c : s) l.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (l == "true" || l == "yes" || l == "on" || l == "1") {
    out = true;
  } else if (l == "false" || l == "no" || l == "off" || l == "0") {
    out = false;
  } else {
    return false;
  }
  return true;
}

std::vector<node_setting> make_table() {
  const node::node_options d;
  using o_t = node::node_options;
  std::vector<node_setting> t;
  auto add = [&](std::string key, std::string help, std::string def, setter apply) {
    t.push_back(node_setting{std::move(key), std::move(help), std::move(def), false, false,
                             std::move(apply)});
  };
  auto add_list = [&](std::string key, std::string help, setter apply) {
    t.push_back(node_setting{std::move(key), std::move(help), "", true, false, std::move(apply)});
  };
  add("name", "Host name in the mesh (default: the host name)", "", text(&o_t::name, true));
  add("data-dir", "Where the node keeps its state", d.data_dir.string(), path(&o_t::data_dir));
  add("api",
      "Address the HTTP API listens on, HOST:PORT (port 0 picks one; it is written to "
      "DATA_DIR/api.addr)",
      d.api, address([](o_t& o) { return &o.api; }, true));
  add_list("api-allowed-host",
           "A name the API, console and AWS front ends answer to in the Host header, besides IP "
           "addresses and localhost (repeatable; others get 421, against DNS rebinding)",
           [](o_t& o, const std::vector<std::string>& v) {
             o.api_allowed_hosts.clear();
             for (const auto& s : v) {
               if (!api::valid_allowed_host(s)) {
                 return fmt::format(
                     "'{}' is not a host name (letters, digits, '-' and '.'; no "
                     "port)",
                     s);
               }
               o.api_allowed_hosts.push_back(s);
             }
             return std::string();
           });
  add_list("tag", "A tag KEY=VALUE of this host (repeatable)",
           [](o_t& o, const std::vector<std::string>& v) {
             o.tags.clear();
             for (const auto& s : v) {
               auto parsed = deploy::parse_tag(s);
               if (!parsed) return parsed.error().message;
               o.tags.push_back(parsed.value());
             }
             return std::string();
           });
  add("aws-credentials",
      "Access keys of the AWS-compatible API (meshdeploy access-key create); without it the AWS "
      "API is off",
      "", path(&o_t::aws_credentials));
  add("aws-api",
      "Also serve the CodeDeploy API alone on HOST:PORT (it is always on the api port too when "
      "aws-credentials is given; bound address in DATA_DIR/aws-api.addr)",
      "", address([](o_t& o) { return &o.aws_api; }, true, true));
  add("s3-api",
      "Serve the S3 subset for bundles on HOST:PORT (aws s3 cp ... --endpoint-url "
      "http://HOST:PORT; bound address in DATA_DIR/s3-api.addr)",
      "", address([](o_t& o) { return &o.s3_api; }, true, true));
  add("install-root", "Prefix for every appspec destination (for several nodes on one machine)",
      d.install_root.string(), path(&o_t::install_root));
  add("max-bundle-size",
      "Refuse bundles that unpack to more than this many bytes (suffixes K, M, G)", "8G",
      bytes([](o_t& o) { return &o.bundle_limits.max_total_bytes; }));
  add("max-bundle-entries", "Refuse bundles with more entries than this",
      std::to_string(d.bundle_limits.max_entries),
      count<std::uint64_t>([](o_t& o) { return &o.bundle_limits.max_entries; }));
  add("max-upload-rate",
      "Bytes per second this node sends to other nodes' bundle downloads at most (suffixes K, "
      "M, G: 6M is about 50 Mbit/s; 0: unlimited)",
      "0", bytes([](o_t& o) { return &o.max_upload_rate; }));
  add("max-download-rate",
      "Bytes per second this node downloads bundles at most (suffixes K, M, G; 0: unlimited)", "0",
      bytes([](o_t& o) { return &o.max_download_rate; }));
  add("keyring", "Cluster keyring file (required; from `meshdeploy cluster init`)", "",
      path(&o_t::keyring_file));
  add("admin-pub",
      "The cluster admin's public key file (required; grants must carry its signature)", "",
      path(&o_t::admin_pub_file));
  add_list("grant",
           "An admin-signed grant record file to load at start (repeatable; e.g. the one "
           "`cluster init` makes)",
           [](o_t& o, const std::vector<std::string>& v) {
             o.grant_files.clear();
             for (const auto& s : v) {
               if (s.empty()) return std::string("a grant file name must not be empty");
               o.grant_files.emplace_back(s);
             }
             return std::string();
           });
  add("bind", "Gossip UDP+TCP address HOST:PORT", d.gossip.bind,
      address([](o_t& o) { return &o.gossip.bind; }, true));
  add("advertise", "Address other nodes reach this one at (default: --bind)", "",
      address([](o_t& o) { return &o.gossip.advertise; }, false, true));
  add_list("join", "A node to join, HOST:PORT (repeatable)",
           [](o_t& o, const std::vector<std::string>& v) {
             o.gossip.join.clear();
             for (const auto& s : v) {
               if (auto why = check_host_port(s, false); !why.empty()) return why;
               o.gossip.join.push_back(s);
             }
             return std::string();
           });
  add("cluster", "Cluster name, bound into every packet's authentication", d.gossip.cluster_id,
      [](o_t& o, const std::vector<std::string>& v) {
        if (v[0].empty()) return std::string("must not be empty");
        o.gossip.cluster_id = v[0];
        return std::string();
      });
  add("gossip-profile", "Protocol timing: lan (memberlist LAN defaults) or local (one machine)",
      "lan", [](o_t& o, const std::vector<std::string>& v) {
        if (v[0] != "lan" && v[0] != "local") return fmt::format("'{}' is not lan or local", v[0]);
        o.gossip.cfg = v[0] == "local" ? gossip::config::local() : gossip::config::lan();
        return std::string();
      });
  add("retention-days", "Prune deployment records older than this many days ...",
      std::to_string(d.retention_days),
      count<std::uint32_t>([](o_t& o) { return &o.retention_days; }));
  add("retention-per-group", "... beyond this many newest deployments per group",
      std::to_string(d.retention_per_group),
      count<std::uint32_t>([](o_t& o) { return &o.retention_per_group; }));
  add("progress-deadline",
      "Seconds a target waits at the rollout gate with no progress in the deployment before it "
      "fails the deployment as timed out (0: never; it frees no token)",
      std::to_string(d.progress_deadline_s),
      count<std::uint32_t>([](o_t& o) { return &o.progress_deadline_s; }));
  t.push_back(node_setting{
      "catch-up",
      "Deploy a matching group's last successful revision to this host when it lacks it "
      "(catch-up, CodeDeploy's Auto Scaling behaviour); --no-catch-up turns it off",
      "true", false, true, [](o_t& o, const std::vector<std::string>& v) {
        if (!parse_bool(v[0], o.catch_up)) return fmt::format("'{}' is not true or false", v[0]);
        return std::string();
      }});
  add("catch-up-delay",
      "Longest wait after start before catch-up judges what this host lacks; it judges sooner "
      "once its records match a peer's",
      std::to_string(d.catch_up_delay_s),
      count<std::uint32_t>([](o_t& o) { return &o.catch_up_delay_s; }));
  add("log-level", "trace, debug, info, warn or error", d.log_level,
      one_of(&o_t::log_level, {"trace", "debug", "info", "warn", "error"}));
  add("log-format",
      "text (for people) or json (one JSON object per line, for log collectors; "
      "docs/operations.md)",
      d.log_format, one_of(&o_t::log_format, {"text", "json"}));
  return t;
}

const node_setting* find_setting(std::string_view key) {
  for (const auto& s : node_settings()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

// A hint for a near miss: the YAML key spelt with dashes, or the flag's name.
std::string did_you_mean(const std::string& key) {
  std::string dashed = key;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  if (find_setting(dashed) && yaml_key(dashed) != key) {
    return fmt::format(" (did you mean {}?)", yaml_key(dashed));
  }
  return " (see `meshdeploy node run --help` for the settings)";
}

}  // namespace

const std::vector<node_setting>& node_settings() {
  static const std::vector<node_setting> table = make_table();
  return table;
}

std::string yaml_key(std::string_view key) {
  std::string s(key);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::string env_name(std::string_view key) {
  std::string s(env_prefix);
  for (char c : key) {
    s.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return s;
}

bool parse_byte_size(std::string_view text, std::uint64_t& out) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::uint64_t n = 0;
  if (!parse_u64(text.substr(0, digits), n)) return false;
  std::string unit;
  for (char c : text.substr(digits)) {
    unit.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  int shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KB" || unit == "KIB") {
    shift = 10;
  } else if (unit == "M" || unit == "MB" || unit == "MIB") {
    shift = 20;
  } else if (unit == "G" || unit == "GB" || unit == "GIB") {
    shift = 30;
  } else if (unit == "T" || unit == "TB" || unit == "TIB") {
    shift = 40;
  } else {
    return false;
  }
  if (shift > 0 && n > (std::numeric_limits<std::uint64_t>::max() >> shift)) return false;
  out = n << shift;
  return true;
}

result<raw_settings> parse_node_config(std::string_view text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return config_error(fmt::format("{}:{}: not valid YAML: {}", name, e.mark.line + 1, e.msg));
  }
  raw_settings out;
  if (root.IsNull()) return out;  // an empty file (or only comments)
  if (!root.IsMap()) {
    return config_error(fmt::format("{}:{}: the file must be a mapping of settings (key: value)",
                                    name, root.Mark().line + 1));
  }
  for (const auto& kv : root) {
    const int line = kv.first.Mark().line + 1;
    if (!kv.first.IsScalar()) {
      return config_error(fmt::format("{}:{}: a key must be a plain name", name, line));
    }
    const std::string key = kv.first.Scalar();
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    const node_setting* s = yaml_key(flag) == key ? find_setting(flag) : nullptr;
    if (s == nullptr) {
      return config_error(
          fmt::format("{}:{}: unknown key '{}'{}", name, line, key, did_you_mean(key)));
    }
    if (out.count(s->key)) {
      return config_error(fmt::format("{}:{}: key '{}' appears twice (first at {})", name, line,
                                      key, out[s->key].origin));
    }
    raw_setting r;
    r.origin = fmt::format("{}:{}", name, line);
    const YAML::Node& v = kv.second;
    if (v.IsScalar()) {
      r.values.push_back(v.Scalar());
    } else if (v.IsSequence() && s->list) {
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          return config_error(fmt::format("{}:{}: {}: each item must be a plain value", name,
                                          item.Mark().line + 1, key));
        }
        r.values.push_back(item.Scalar());
      }
    } else if (v.IsNull()) {
      return config_error(fmt::format("{}:{}: {}: has no value (remove the line for the default)",
                                      name, line, key));
    } else {
      return config_error(fmt::format("{}:{}: {}: must be {}", name, line, key,
                                      s->list ? "a value or a list of values" : "a single value"));
    }
    out[s->key] = std::move(r);
  }
  return out;
}

result<raw_settings> load_node_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return config_error(fmt::format(
        "{}: cannot read the config file (does it exist and is it readable?)", file.string()));
  }
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_config_bytes) {
      return config_error(
          fmt::format("{}: larger than 1 MiB: not a node config file", file.string()));
    }
  }
  return parse_node_config(text, file.string());
}

std::string config_file_from_env(const std::vector<std::string>& environment) {
  const std::string prefix = env_name("config") + "=";
  for (const auto& e : environment) {
    if (e.rfind(prefix, 0) == 0) return e.substr(prefix.size());
  }
  return "";
}

result<raw_settings> node_settings_from_env(const std::vector<std::string>& environment) {
  raw_settings out;
  for (const auto& e : environment) {
    if (e.rfind(env_prefix, 0) != 0) continue;
    const auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = e.substr(0, eq), value = e.substr(eq + 1);
    if (name == env_name("config")) continue;
    const node_setting* s = nullptr;
    for (const auto& cand : node_settings()) {
      if (env_name(cand.key) == name) s = &cand;
    }
    if (s == nullptr) {
      return config_error(fmt::format(
          "{}: not a setting of `meshdeploy node run` (unset it, or see `meshdeploy node run "
          "--help` for the names)",
          name));
    }
    raw_setting r;
    r.origin = name;
    if (s->list) {
      std::size_t pos = 0;
      while (pos <= value.size()) {
        auto comma = value.find(',', pos);
        if (comma == std::string::npos) comma = value.size();
        if (comma > pos) r.values.push_back(value.substr(pos, comma - pos));
        pos = comma + 1;
      }
    } else {
      r.values.push_back(value);
    }
    out[s->key] = std::move(r);
  }
  return out;
}

result<node::node_options> resolve_node_options(const raw_settings& file, const raw_settings& env,
                                                const raw_settings& flags) {
  node::node_options o;
  for (const auto& s : node_settings()) {
    const raw_setting* r = nullptr;
    for (const raw_settings* src : {&flags, &env, &file}) {
      if (auto it = src->find(s.key); it != src->end()) {
        r = &it->second;
        break;
      }
    }
    if (r == nullptr) continue;
    if (!s.list && r->values.size() != 1) {
      return config_error(fmt::format("{}: {}: give one value", r->origin, s.key));
    }
    if (auto why = s.apply(o, r->values); !why.empty()) {
      return config_error(fmt::format("{}: {}: {}", r->origin, s.key, why));
    }
  }
  if (o.keyring_file.empty() || o.admin_pub_file.empty()) {
    return config_error(fmt::format(
        "a node needs a keyring and the admin public key (--keyring FILE and --admin-pub FILE, "
        "or {} and {}, or keys {} and {} in the config file): there is no unauthenticated mode "
        "(make them with: meshdeploy cluster init --dir DIR)",
        env_name("keyring"), env_name("admin-pub"), yaml_key("keyring"), yaml_key("admin-pub")));
  }
  return o;
}

}  // namespace meshdeploy::cli
