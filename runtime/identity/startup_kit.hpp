// A participant's startup folder, as flare-provision writes it and the
// server, a site or an admin reads it:
//   participant.crt  its certificate          participant.key  its key (0600)
//   ca.crt           the project's CA         local.toml       its local configuration
//   crl.pem          (server) revocation list start.sh         runs its program
// The folder is 0700. load_startup_kit() checks that the pieces fit together.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "identity/identity.hpp"

namespace flare::identity {

inline constexpr std::string_view kCertificateFile = "participant.crt";
inline constexpr std::string_view kPrivateKeyFile = "participant.key";
inline constexpr std::string_view kCaCertificateFile = "ca.crt";
inline constexpr std::string_view kRevocationListFile = "crl.pem";
inline constexpr std::string_view kLocalConfigFile = "local.toml";
inline constexpr std::string_view kStartScriptFile = "start.sh";

struct AdminEntry {
  std::string name;  // e-mail
  std::string role;  // project_admin, org_admin, lead, member
  bool operator==(const AdminEntry&) const = default;
};

// local.toml. Every participant: the project, itself, the server's address
// (sites and admins connect to it; the server listens on its port). The
// server's also lists who may take part (sites, admins with their roles) and
// who is refused whatever certificate it shows (denied_participants).
struct LocalConfig {
  std::string project;
  Identity self;
  std::string server_host;
  std::uint16_t server_port = 0;
  int nodes = 1;                                 // sites: flare-client processes
  std::vector<std::string> sites;                // server only
  std::vector<AdminEntry> admins;                // server only
  std::vector<std::string> denied_participants;  // server only
  bool operator==(const LocalConfig&) const = default;
};

std::string render_local_config(const LocalConfig& config);
// Throws IdentityError naming `file`, the line and the key.
LocalConfig parse_local_config(std::string_view text, const std::filesystem::path& file);

struct StartupKit {
  std::filesystem::path folder;  // empty for an in-memory (ephemeral) kit
  LocalConfig config;
  std::string certificate_pem;
  std::string private_key_pem;
  std::string ca_certificate_pem;
  std::string revocation_list_pem;  // server only; may be empty
  const Identity& identity() const { return config.self; }
};

// Reads and checks a startup folder: every file present, the key private to
// its owner (no group or other bits), the key belonging to the certificate,
// the certificate valid under the CA (and not revoked) and naming the
// identity local.toml names. Throws IdentityError naming the file and cause.
StartupKit load_startup_kit(const std::filesystem::path& folder);

}  // namespace flare::identity
