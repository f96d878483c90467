#include "cli/security_cmds.h"

#include "cli/signer.h"
#include "node/records/errc.h"
#include "node/security/cluster_init.h"
#include "node/security/identity.h"
#include "node/security/verifier.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

namespace meshdeploy::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct security_args {
  std::string dir, operator_name = "operator";
  std::string name, out;
  std::string admin_key, operator_pub, submit_file;
  std::vector<std::string> allow;
  bool revoke = false;
};

// An operator's public key: a .pub file (security::load_public_key) or 64 hex chars.
result<std::pair<std::string, records::public_key>> read_operator(const std::string& text) {
  std::error_code ec;
  if (fs::exists(text, ec)) return security::load_public_key(text);
  auto k = records::public_key_from_hex(text);
  if (!k) {
    return make_error(records::errc::malformed,
                      fmt::format("--operator '{}' is neither a public key file nor 64 hex "
                                  "characters",
                                  text));
  }
  return std::pair{std::string(), k.value()};
}

int cluster_init(const globals& g, const security_args& a) {
  auto files = security::init_cluster(a.dir, a.operator_name);
  if (!files) {
    print_error(files.error().message);
    return exit_usage;
  }
  const auto& f = files.value();
  if (g.json()) {
    print_json({{"keyring", f.keyring},
                {"adminKey", f.admin_key},
                {"adminPub", f.admin_pub},
                {"operatorKey", f.operator_key},
                {"operatorPub", f.operator_pub},
                {"grant", f.grant}});
    return exit_ok;
  }
  std::printf(
      "Created the keys of a new cluster in %s (all files 0600):\n"
      "  %s  cluster keyring: copy to every node (--keyring)\n"
      "  %s  admin public key: copy to every node (--admin-pub)\n"
      "  %s  admin SECRET key: signs grants; keep it offline, never on a node\n"
      "  %s  operator '%s' secret key: for the operator's CLI (--identity / "
      "MESHDEPLOY_IDENTITY)\n"
      "  %s  operator public key\n"
      "  %s  admin-signed grant giving '%s' every right (*:*)\n\n"
      "Start nodes with:\n"
      "  meshdeploy node run --keyring %s --admin-pub %s --grant %s ...\n"
      "(--grant is needed on one node only; the grant spreads to the others.)\n",
      a.dir.c_str(), f.keyring.string().c_str(), f.admin_pub.string().c_str(),
      f.admin_key.string().c_str(), f.operator_key.string().c_str(), a.operator_name.c_str(),
      f.operator_pub.string().c_str(), f.grant.string().c_str(), a.operator_name.c_str(),
      f.keyring.string().c_str(), f.admin_pub.string().c_str(), f.grant.string().c_str());
  return exit_ok;
}

int operator_create(const globals& g, const security_args& a) {
  const security::identity id = security::generate_identity(a.name);
  if (auto s = security::save_identity(id, a.out); !s) {
    print_error(s.error().message);
    return exit_usage;
  }
  const std::string pub_file = a.out + ".pub";
  if (auto s = security::save_public_key(a.name, id.pub, pub_file); !s) {
    print_error(s.error().message);
    return exit_usage;
  }
  const std::string hex = records::to_hex(id.pub);
  if (g.json()) {
    print_json({{"name", a.name}, {"key", a.out}, {"publicKeyFile", pub_file}, {"publicKey", hex}});
    return exit_ok;
  }
  std::printf(
      "Created operator '%s': secret key %s (0600), public key %s\n  %s\n"
      "Ask the cluster admin for a grant, e.g.:\n"
      "  meshdeploy grant --admin-key admin.key --operator %s --allow 'deploy:app/web/*' "
      "--allow 'read:*'\n",
      a.name.c_str(), a.out.c_str(), pub_file.c_str(), hex.c_str(), pub_file.c_str());
  return exit_ok;
}

int grant(const globals& g, const security_args& a) {
  const client c(g.api);
  std::string hex;
  if (!a.submit_file.empty()) {
    std::ifstream in(a.submit_file, std::ios::binary);
    if (!in) {
      print_error(fmt::format("cannot read grant file {}", a.submit_file));
      return exit_usage;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    auto r = records::decode(std::as_bytes(std::span(bytes.data(), bytes.size())));
    if (!r || r.value().type != records::record_type::grant) {
      print_error(fmt::format("{} is not a grant record{}", a.submit_file,
                              r ? "" : ": " + r.error().message));
      return exit_usage;
    }
    hex = record_hex(r.value());
  } else {
    if (a.admin_key.empty() || a.operator_pub.empty() || (a.allow.empty() && !a.revoke)) {
      print_error(
          "give --admin-key FILE --operator PUB and --allow ACTION:RESOURCE (or "
          "--revoke), or --submit FILE");
      return exit_usage;
    }
    auto admin = admin_for_grant(a.allow, a.admin_key);
    if (!admin) return exit_usage;
    auto op = read_operator(a.operator_pub);
    if (!op) {
      print_error(op.error().message);
      return exit_usage;
    }
    records::grant_payload gp;
    gp.operator_name = op.value().first;
    gp.operator_key = op.value().second;
    gp.allow = a.allow;
    gp.revoked = a.revoke;
    auto rec = sign_for_node(c, admin.value(), gp);
    if (!rec) return fail_transport(rec.error());
    hex = record_hex(rec.value());
  }
  auto r = check_reply(c.call("POST", "/v1/records", json{{"record", hex}}.dump()));
  if (r.code != exit_ok) return r.code;
  if (g.json()) {
    print_json(r.body);
  } else {
    std::printf("Grant %s (version %llu) accepted; it reaches every node within seconds.\n",
                a.revoke ? "revoking every right" : "stored",
                static_cast<unsigned long long>(r.body.value("version", std::uint64_t{0})));
  }
  return exit_ok;
}

}  // namespace

std::optional<security::identity> admin_for_grant(const std::vector<std::string>& allow,
                                                  const std::string& admin_key) {
  for (const auto& p : allow) {
    if (auto v = security::validate_pattern(p); !v) {
      print_error(v.error().message);
      return std::nullopt;
    }
  }
  auto admin = security::load_identity(admin_key);
  if (!admin) {
    print_error(admin.error().message);
    return std::nullopt;
  }
  return std::move(admin.value());
}

void add_security_commands(CLI::App& root, globals& g, int& code) {
  auto a = std::make_shared<security_args>();

  auto* cluster = root.add_subcommand("cluster", "Create a cluster's keys")->require_subcommand(1);
  auto* init = cluster->add_subcommand(
      "init",
      "Create a new cluster's key material in DIR: the gossip keyring, the admin key pair (signs\n"
      "grants; keep the secret half offline), a first operator key pair and an admin-signed\n"
      "grant giving that operator every right. Refuses to overwrite existing files.\n\n"
      "Example:\n  meshdeploy cluster init --dir ./cluster --operator alice");
  init->add_option("--dir", a->dir, "Directory to create the files in")->required();
  init->add_option("--operator", a->operator_name, "Name of the first operator")
      ->default_str("operator");
  init->callback([&g, &code, a] { code = cluster_init(g, *a); });

  auto* op = root.add_subcommand("operator", "Operator keys")->require_subcommand(1);
  auto* create = op->add_subcommand(
      "create",
      "Create an operator key pair: FILE (secret, 0600) and FILE.pub (give it to the admin).\n\n"
      "Example:\n  meshdeploy operator create --name bob --out bob.key");
  create->add_option("--name", a->name, "Operator name")->required();
  create->add_option("--out", a->out, "Secret key file to create")->required();
  create->callback([&g, &code, a] { code = operator_create(g, *a); });

  auto* gr = root.add_subcommand(
      "grant",
      "Give an operator rights (an admin-signed grant record that replaces the previous one),\n"
      "or revoke them all. Patterns are ACTION:RESOURCE: actions define, deploy, stop, read or\n"
      "*; resources app/APP, app/APP/GROUP, config/NAME, with * matching anything.\n\n"
      "Examples:\n"
      "  meshdeploy grant --admin-key admin.key --operator bob.key.pub --allow 'deploy:app/web/*'\n"
      "  meshdeploy grant --admin-key admin.key --operator bob.key.pub --revoke\n"
      "  meshdeploy grant --submit cluster/alice.grant");
  gr->add_option("--admin-key", a->admin_key, "The admin's secret key file");
  gr->add_option("--operator", a->operator_pub, "Operator public key file or hex");
  gr->add_option("--allow", a->allow, "ACTION:RESOURCE the operator may do (repeatable)");
  gr->add_flag("--revoke", a->revoke, "Revoke every right of the operator");
  gr->add_option("--submit", a->submit_file, "Submit an existing grant record file instead");
  gr->callback([&g, &code, a] { code = grant(g, *a); });
}

}  // namespace meshdeploy::cli
