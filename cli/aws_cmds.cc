#include "cli/aws_cmds.h"

#include "cli/security_cmds.h"
#include "cli/signer.h"
#include "node/aws/access_keys.h"
#include "node/records/errc.h"
#include "node/security/identity.h"
#include "node/security/verifier.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sys/stat.h>

namespace meshdeploy::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct access_key_args {
  std::string operator_name, admin_key, out;
  std::vector<std::string> allow;
};

// The credentials file's JSON, or an empty table when it does not exist yet.
result<json> read_credentials(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return json{{"accessKeys", json::array()}};
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || (st.st_mode & 077) != 0) {
    return make_error(records::errc::permission_denied,
                      fmt::format("{}: others may read this secret file; chmod 600 {}",
                                  file.string(), file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("accessKeys") || !j["accessKeys"].is_array()) {
    return make_error(
        records::errc::malformed,
        fmt::format("{}: not a credentials file (no 'accessKeys' list)", file.string()));
  }
  return j;
}

int access_key_create(const globals& g, const access_key_args& a) {
  if (a.allow.empty()) {
    print_error(
        "give at least one --allow ACTION:RESOURCE (e.g. 'define:app/web', "
        "'deploy:app/web/*', 'read:*')");
    return exit_usage;
  }
  auto admin = admin_for_grant(a.allow, a.admin_key);
  if (!admin) return exit_usage;
  const fs::path out = a.out;
  auto creds = read_credentials(out);
  if (!creds) {
    print_error(creds.error().message);
    return exit_usage;
  }
  const std::string id = aws::new_access_key_id();
  const std::string secret = aws::new_secret_access_key();
  const security::identity ident = security::generate_identity(a.operator_name);
  const std::string key_name = fmt::format("{}-{}.key", a.operator_name, id);
  const fs::path key_file = (out.has_parent_path() ? out.parent_path() : fs::path(".")) / key_name;
  if (auto s = security::save_identity(ident, key_file); !s) {
    print_error(s.error().message);
    return exit_usage;
  }
  // The access key's identity gets its own admin-signed grant: revoking it revokes the key.
  const client c(g.api);
  records::grant_payload gp;
  gp.operator_name = a.operator_name;
  gp.operator_key = ident.pub;
  gp.allow = a.allow;
  auto rec = sign_for_node(c, admin.value(), gp);
  if (!rec) return fail_transport(rec.error());
  auto r =
      check_reply(c.call("POST", "/v1/records", json{{"record", record_hex(rec.value())}}.dump()));
  if (r.code != exit_ok) return r.code;

  json j = std::move(creds).value();
  j["accessKeys"].push_back({{"accessKeyId", id},
                             {"secretAccessKey", secret},
                             {"operator", a.operator_name},
                             {"identityFile", key_name}});
  const std::string text = j.dump(2) + "\n";
  const fs::path tmp = out.string() + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  if (auto w =
          security::write_new_file(tmp, std::as_bytes(std::span(text.data(), text.size())), 0600);
      !w) {
    print_error(w.error().message);
    return exit_failed;
  }
  fs::rename(tmp, out, ec);
  if (ec) {
    print_error(fmt::format("cannot write {}: {}", out.string(), ec.message()));
    return exit_failed;
  }
  if (g.json()) {
    print_json({{"accessKeyId", id},
                {"secretAccessKey", secret},
                {"operator", a.operator_name},
                {"credentialsFile", out.string()},
                {"identityFile", key_file.string()}});
    return exit_ok;
  }
  std::printf(
      "Access key for operator '%s' (shown once; also in %s, 0600):\n"
      "  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n"
      "Its grant allows:",
      a.operator_name.c_str(), out.string().c_str(), id.c_str(), secret.c_str());
  for (const auto& p : a.allow) std::printf(" %s", p.c_str());
  std::printf(
      "\nCopy %s and %s to the nodes that serve the AWS API and start them with\n"
      "  --aws-credentials %s [--s3-api HOST:PORT]\n",
      out.string().c_str(), key_file.string().c_str(), out.string().c_str());
  return exit_ok;
}

}  // namespace

void add_aws_commands(CLI::App& root, globals& g, int& code) {
  auto a = std::make_shared<access_key_args>();
  auto* ak = root.add_subcommand("access-key", "AWS access keys for the CodeDeploy/S3 API")
                 ->require_subcommand(1);
  auto* create = ak->add_subcommand(
      "create",
      "Create an AWS access key acting as operator NAME with the rights --allow gives it: a new\n"
      "operator key pair, an admin-signed grant for it (submitted through --api), and an entry\n"
      "in the credentials file --out that nodes load with --aws-credentials. Prints the access\n"
      "key id and secret once. Revoke with: meshdeploy grant --operator KEYFILE.pub --revoke\n"
      "(the key file's public key).\n\n"
      "Example:\n"
      "  meshdeploy access-key create --admin-key admin.key --operator ci --allow 'define:app/*'\n"
      "      --allow 'deploy:app/*' --allow 'stop:app/*' --allow 'read:*' --out aws-creds.json");
  create->add_option("--operator", a->operator_name, "Operator name the key acts as")->required();
  create->add_option("--admin-key", a->admin_key, "The cluster admin's secret key file")
      ->required();
  create->add_option("--allow", a->allow, "A grant pattern ACTION:RESOURCE (repeatable)");
  create->add_option("--out", a->out, "Credentials file to create or add the key to")->required();
  create->callback([&g, &code, a] { code = access_key_create(g, *a); });
}

}  // namespace meshdeploy::cli
