#include "identity/startup_kit.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "identity/openssl_handles.hpp"
#include "identity/peer_check.hpp"

namespace flare::identity {
namespace {

std::string toml_string(std::string_view text) {
  std::ostringstream out;
  out << toml::value<std::string>(std::string(text));
  return out.str();
}

std::string string_list(const std::vector<std::string>& items) {
  std::string text = "[";
  for (std::size_t i = 0; i < items.size(); ++i)
    text += std::string(i ? ", " : "") + toml_string(items[i]);
  return text + "]";
}

class ConfigReader {
 public:
  ConfigReader(const toml::table& root, const std::filesystem::path& file)
      : root_(root), file_(file) {}

  [[noreturn]] void fail(const toml::node* node, std::string_view key,
                         std::string_view expected) const {
    std::string where = file_.string();
    if (node != nullptr) where += ":" + std::to_string(node->source().begin.line);
    throw IdentityError(where + ": " + std::string(key) + ": expected " + std::string(expected));
  }

  const toml::node* at(std::string_view key) const { return root_.at_path(key).node(); }

  std::string string(std::string_view key) const {
    const toml::node* node = at(key);
    if (node == nullptr || !node->is_string() || node->as_string()->get().empty()) {
      fail(node, key, "a non-empty string");
    }
    return node->as_string()->get();
  }

  std::int64_t integer(std::string_view key, std::int64_t low, std::int64_t high,
                       std::int64_t fallback) const {
    const toml::node* node = at(key);
    if (node == nullptr) return fallback;
    if (!node->is_integer() || node->as_integer()->get() < low ||
        node->as_integer()->get() > high) {
      fail(node, key, "an integer from " + std::to_string(low) + " to " + std::to_string(high));
    }
    return node->as_integer()->get();
  }

  std::vector<std::string> strings(std::string_view key) const {
    std::vector<std::string> items;
    const toml::node* node = at(key);
    if (node == nullptr) return items;
    if (!node->is_array()) fail(node, key, "an array of strings");
    for (const auto& item : *node->as_array()) {
      if (!item.is_string()) fail(&item, key, "an array of strings");
      items.push_back(item.as_string()->get());
    }
    return items;
  }

 private:
  const toml::table& root_;
  const std::filesystem::path& file_;
};

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IdentityError(file.string() + ": cannot read (missing or not readable)");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void require_private(const std::filesystem::path& file) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) throw IdentityError(file.string() + ": cannot stat");
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info.st_mode & 07777);
    throw IdentityError(file.string() + ": a private key readable by others (mode " + mode +
                        "); expected 0600 (chmod 600 it)");
  }
}

}  // namespace

std::string render_local_config(const LocalConfig& config) {
  std::string text =
      "# Written by flare-provision; re-running it rewrites this file.\n"
      "[participant]\n"
      "project = " +
      toml_string(config.project) +
      "\n"
      "role = " +
      toml_string(role_name(config.self.role)) +
      "\n"
      "name = " +
      toml_string(config.self.name) + "\n";
  if (config.self.role == Role::site) text += "nodes = " + std::to_string(config.nodes) + "\n";
  text +=
      "\n[server]\n"
      "host = " +
      toml_string(config.server_host) +
      "\n"
      "port = " +
      std::to_string(config.server_port) + "\n";
  if (config.self.role == Role::server) {
    text +=
        "\n[federation]\n"
        "sites = " +
        string_list(config.sites) +
        "\n"
        "# Refused whatever certificate they show (flare-provision --revoke NAME).\n"
        "denied_participants = " +
        string_list(config.denied_participants) + "\n";
    for (const auto& admin : config.admins) {
      text += "\n[[federation.admins]]\nname = " + toml_string(admin.name) +
              "\nrole = " + toml_string(admin.role) + "\n";
    }
  }
  return text;
}

LocalConfig parse_local_config(std::string_view text, const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    throw IdentityError(file.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                        std::string(e.description()));
  }
  ConfigReader reader(root, file);
  LocalConfig config;
  config.project = reader.string("participant.project");
  auto role = parse_role(reader.string("participant.role"));
  if (!role)
    reader.fail(reader.at("participant.role"), "participant.role",
                "\"server\", \"site\" or \"admin\"");
  config.self = {*role, reader.string("participant.name")};
  config.nodes = static_cast<int>(reader.integer("participant.nodes", 1, 1024, 1));
  config.server_host = reader.string("server.host");
  config.server_port = static_cast<std::uint16_t>(reader.integer("server.port", 1, 65535, 0));
  if (config.server_port == 0) reader.fail(nullptr, "server.port", "an integer from 1 to 65535");
  config.sites = reader.strings("federation.sites");
  config.denied_participants = reader.strings("federation.denied_participants");
  if (const toml::node* admins = reader.at("federation.admins")) {
    if (!admins->is_array_of_tables())
      reader.fail(admins, "federation.admins", "[[federation.admins]] tables");
    for (const auto& item : *admins->as_array()) {
      const auto& table = *item.as_table();
      auto name = table["name"].value<std::string>();
      auto admin_role = table["role"].value<std::string>();
      if (!name || !admin_role) reader.fail(&item, "federation.admins", "name and role strings");
      config.admins.push_back({*name, *admin_role});
    }
  }
  return config;
}

StartupKit load_startup_kit(const std::filesystem::path& folder) {
  StartupKit kit;
  kit.folder = folder;
  auto config_file = folder / kLocalConfigFile;
  kit.config = parse_local_config(read_file(config_file), config_file);
  kit.certificate_pem = read_file(folder / kCertificateFile);
  require_private(folder / kPrivateKeyFile);
  kit.private_key_pem = read_file(folder / kPrivateKeyFile);
  kit.ca_certificate_pem = read_file(folder / kCaCertificateFile);
  if (kit.config.self.role == Role::server) {
    kit.revocation_list_pem = read_file(folder / kRevocationListFile);
  }

  auto certificate = detail::read_certificate(kit.certificate_pem);
  if (!certificate)
    throw IdentityError((folder / kCertificateFile).string() + ": not a certificate");
  auto key = detail::read_key_pem(kit.private_key_pem, (folder / kPrivateKeyFile).string());
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    ERR_clear_error();
    throw IdentityError((folder / kPrivateKeyFile).string() + ": not the key of " +
                        (folder / kCertificateFile).string());
  }
  PeerVerifier verifier(kit.ca_certificate_pem, kit.revocation_list_pem);
  PeerCheck check = verifier.check(kit.certificate_pem, kit.config.self.role);
  if (!check.accepted()) {
    throw IdentityError((folder / kCertificateFile).string() + ": " +
                        std::string(refusal_name(check.refusal)) + ": " + check.reason);
  }
  if (check.identity != kit.config.self) {
    throw IdentityError((folder / kCertificateFile).string() + ": names " +
                        identity_uri(*check.identity) + ", but " + config_file.string() +
                        " names " + identity_uri(kit.config.self));
  }
  return kit;
}

}  // namespace flare::identity
