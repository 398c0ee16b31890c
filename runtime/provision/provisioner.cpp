#include "provision/provisioner.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

#include "identity/certificate_authority.hpp"
#include "identity/startup_kit.hpp"
#include "provision/output_folder.hpp"

namespace flare::provision {
namespace {

namespace fs = std::filesystem;
using identity::CertificateAuthority;
using identity::Identity;
using identity::LocalConfig;
using identity::Role;

constexpr std::string_view kCaKeyFile = "ca.key";
constexpr std::string_view kRevokedFile = "revoked.toml";

struct Participant {
  Identity identity;
  std::string organisation;
  LocalConfig config;
};

std::string program_of(Role role) {
  switch (role) {
    case Role::server: return "flare-server";
    case Role::site: return "flare-client";
    case Role::admin: return "flare-admin";
  }
  return "?";
}

std::string start_script(const Participant& participant, const std::string& project) {
  return "#!/bin/sh\n"
         "# Starts " +
         std::string(identity::role_name(participant.identity.role)) + " " +
         participant.identity.name + " of project " + project +
         " with this startup folder (written by flare-provision).\n"
         "# FLARE_BIN: the folder holding the flare programs (default: found on PATH).\n"
         "here=$(cd \"$(dirname \"$0\")\" && pwd)\n"
         "exec \"${FLARE_BIN:+$FLARE_BIN/}" +
         program_of(participant.identity.role) + "\" --startup \"$here\" \"$@\"\n";
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<Participant> participants_of(const Project& project) {
  LocalConfig common;
  common.project = project.name;
  common.server_host = project.server_name;
  common.server_port = project.server_port;

  std::vector<Participant> all;
  Participant server{{Role::server, project.server_name}, project.server_organisation, common};
  server.config.self = server.identity;
  for (const auto& site : project.sites) server.config.sites.push_back(site.name);
  for (const auto& admin : project.admins) server.config.admins.push_back({admin.name, admin.role});
  all.push_back(server);
  for (const auto& site : project.sites) {
    Participant p{{Role::site, site.name}, site.organisation, common};
    p.config.self = p.identity;
    p.config.nodes = site.nodes;
    all.push_back(p);
  }
  for (const auto& admin : project.admins) {
    Participant p{{Role::admin, admin.name}, admin.organisation, common};
    p.config.self = p.identity;
    all.push_back(p);
  }
  return all;
}

struct RevokedEntry {
  std::string name;
  std::string serial_hex;
  std::time_t revoked_at = 0;
};

std::vector<RevokedEntry> read_revoked(const fs::path& file) {
  std::vector<RevokedEntry> entries;
  auto text = read_if_present(file);
  if (!text) return entries;
  try {
    auto root = toml::parse(*text, file.string());
    if (auto* list = root["revoked"].as_array()) {
      for (const auto& item : *list) {
        const auto* table = item.as_table();
        auto name = table ? (*table)["name"].value<std::string>() : std::nullopt;
        auto serial = table ? (*table)["serial"].value<std::string>() : std::nullopt;
        auto at = table ? (*table)["revoked_at"].value<std::int64_t>() : std::nullopt;
        if (!name || !serial || !at) {
          throw ProvisionRefused(file.string() + ":" + std::to_string(item.source().begin.line) +
                                 ": revoked: expected name, serial and revoked_at");
        }
        entries.push_back({*name, *serial, static_cast<std::time_t>(*at)});
      }
    }
  } catch (const toml::parse_error& e) {
    throw ProvisionRefused(file.string() + ": " + std::string(e.description()));
  }
  return entries;
}

std::string render_revoked(const std::vector<RevokedEntry>& entries) {
  std::ostringstream out;
  out << "# Participants revoked by flare-provision --revoke (the CRL crl.pem lists their\n"
         "# certificates; the server's local.toml denies their names).\n";
  for (const auto& entry : entries) {
    out << "\n[[revoked]]\nname = " << toml::value<std::string>(entry.name)
        << "\nserial = " << toml::value<std::string>(entry.serial_hex)
        << "\nrevoked_at = " << entry.revoked_at << "\n";
  }
  return out.str();
}

class ProjectFolder {
 public:
  ProjectFolder(const Project& project, const ProvisionRequest& request)
      : project_(project),
        request_(request),
        root_(request.output / project.name),
        now_(request.now != 0 ? request.now : std::time(nullptr)),
        participants_(participants_of(project)) {}

  ProvisionOutcome run() {
    check_request();
    ProvisionOutcome outcome;
    outcome.project_folder = root_;
    outcome.left_alone = folders_not_in_project();
    make_private_folder(root_);
    outcome.created_ca = load_or_create_ca();
    revoked_ = read_revoked(ca_folder() / kRevokedFile);

    for (const auto& participant : participants_) {
      const auto& name = participant.identity.name;
      if (!existing_identity(name)) {
        issue(participant);
        outcome.issued.push_back(name);
      } else if (listed(request_.reissue, name)) {
        issue(participant);
        outcome.reissued.push_back(name);
      }
    }
    outcome.revoked = revoke();
    for (const auto& participant : participants_) refresh(participant);
    return outcome;
  }

 private:
  fs::path startup(const std::string& name) const { return root_ / name / "startup"; }
  fs::path ca_folder() const { return root_ / "ca"; }

  std::optional<Identity> existing_identity(const std::string& name) const {
    auto pem = read_if_present(startup(name) / identity::kCertificateFile);
    if (!pem) return std::nullopt;
    auto claimed = identity::claimed_identity(*pem);
    if (!claimed) {
      throw ProvisionRefused((startup(name) / identity::kCertificateFile).string() +
                             ": not a certificate flare-provision issued; move the folder away "
                             "or re-run with --reissue " +
                             name);
    }
    return claimed;
  }

  const Participant* find(const std::string& name) const {
    for (const auto& p : participants_) {
      if (p.identity.name == name) return &p;
    }
    return nullptr;
  }

  // Everything that would change who someone is is refused before any write.
  void check_request() const {
    for (const auto& name : request_.reissue) {
      if (!find(name)) {
        throw ProvisionRefused("--reissue " + name + ": not a participant of the project file");
      }
    }
    for (const auto& name : request_.revoke) {
      if (!existing_identity(name)) {
        throw ProvisionRefused("--revoke " + name + ": no certificate was issued to " + name +
                               " under " + root_.string());
      }
    }
    bool have_ca = fs::exists(ca_folder() / identity::kCaCertificateFile);
    for (const auto& participant : participants_) {
      const auto& name = participant.identity.name;
      auto existing = existing_identity(name);
      if (!existing) continue;
      if (!have_ca) {
        throw ProvisionRefused(startup(name).string() + " exists but " + ca_folder().string() +
                               " has no CA: certificates issued now would not be trusted by it");
      }
      if (existing->role != participant.identity.role && !listed(request_.reissue, name)) {
        throw ProvisionRefused(name + " was provisioned as a " +
                               std::string(identity::role_name(existing->role)) +
                               " and the project file now makes it a " +
                               std::string(identity::role_name(participant.identity.role)) +
                               "; re-run with --reissue " + name + " to issue it anew");
      }
    }
    // A server folder under another name, and none yet under the file's: a rename.
    bool server_issued = existing_identity(project_.server_name).has_value();
    for (const auto& other : folders_not_in_project()) {
      auto existing = existing_identity(other);
      if (existing && existing->role == Role::server && !server_issued &&
          !listed(request_.reissue, project_.server_name)) {
        throw ProvisionRefused("the server was provisioned as " + other +
                               " and the project file now names " + project_.server_name +
                               "; re-run with --reissue " + project_.server_name +
                               " to issue the new server (every site's local.toml then points "
                               "to it)");
      }
    }
  }

  std::vector<std::string> folders_not_in_project() const {
    std::vector<std::string> names;
    if (!fs::exists(root_)) return names;
    for (const auto& entry : fs::directory_iterator(root_)) {
      auto name = entry.path().filename().string();
      if (!entry.is_directory() || name == "ca" || name.starts_with(".")) continue;
      if (!find(name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  bool load_or_create_ca() {
    auto certificate = read_if_present(ca_folder() / identity::kCaCertificateFile);
    auto key = read_if_present(ca_folder() / kCaKeyFile);
    if (certificate && key) {
      authority_.emplace(CertificateAuthority::load(*certificate, *key));
      return false;
    }
    if (certificate || key) {
      throw ProvisionRefused(ca_folder().string() + ": holds only one of " +
                             std::string(identity::kCaCertificateFile) + " and " +
                             std::string(kCaKeyFile) + "; restore the other from a backup");
    }
    auto created = CertificateAuthority::create(project_.name,
                                                identity::validity_from(now_, project_.ca_days));
    FolderContent content;
    content[std::string(kCaKeyFile)] = {created.private_key_pem(), 0600};
    content[std::string(identity::kCaCertificateFile)] = {created.certificate_pem(), 0644};
    content[std::string(identity::kRevocationListFile)] = {created.revocation_list_pem({}, now_),
                                                           0644};
    replace_folder(ca_folder(), content);
    authority_.emplace(std::move(created));
    return true;
  }

  void issue(const Participant& participant) {
    auto issued = authority_->issue({participant.identity, participant.organisation,
                                     identity::validity_from(now_, project_.certificate_days)});
    FolderContent content = shared_files(participant);
    content[std::string(identity::kCertificateFile)] = {issued.certificate_pem, 0644};
    content[std::string(identity::kPrivateKeyFile)] = {issued.private_key_pem, 0600};
    make_private_folder(root_ / participant.identity.name);
    replace_folder(startup(participant.identity.name), content);
  }

  // The files that follow the project rather than the participant's key.
  FolderContent shared_files(const Participant& participant) const {
    FolderContent content;
    LocalConfig config = participant.config;
    for (const auto& entry : revoked_) config.denied_participants.push_back(entry.name);
    if (participant.identity.role != Role::server) config.denied_participants.clear();
    content[std::string(identity::kLocalConfigFile)] = {identity::render_local_config(config),
                                                        0600};
    content[std::string(identity::kStartScriptFile)] = {start_script(participant, project_.name),
                                                        0700};
    content[std::string(identity::kCaCertificateFile)] = {authority_->certificate_pem(), 0644};
    if (participant.identity.role == Role::server) {
      content[std::string(identity::kRevocationListFile)] = {
          *read_if_present(ca_folder() / identity::kRevocationListFile), 0644};
    }
    return content;
  }

  void refresh(const Participant& participant) {
    for (const auto& [name, file] : shared_files(participant)) {
      write_if_changed(startup(participant.identity.name) / name, file.first, file.second);
    }
  }

  std::vector<std::string> revoke() {
    auto file = ca_folder() / kRevokedFile;
    std::vector<std::string> newly;
    for (const auto& name : request_.revoke) {
      auto pem = read_if_present(startup(name) / identity::kCertificateFile);
      auto serial = identity::certificate_serial_hex(*pem);
      bool known = std::any_of(revoked_.begin(), revoked_.end(),
                               [&](const RevokedEntry& e) { return e.serial_hex == serial; });
      if (known) continue;
      revoked_.push_back({name, serial, now_});
      newly.push_back(name);
    }
    if (newly.empty()) return newly;
    std::vector<identity::RevokedCertificate> serials;
    for (const auto& entry : revoked_) serials.push_back({entry.serial_hex, entry.revoked_at});
    // The CRL first: were the run cut here, revoked.toml still lacks the names and
    // a re-run signs them again.
    write_if_changed(ca_folder() / identity::kRevocationListFile,
                     authority_->revocation_list_pem(serials, now_), 0644);
    write_if_changed(file, render_revoked(revoked_), 0600);
    return newly;
  }

  const Project& project_;
  const ProvisionRequest& request_;
  fs::path root_;
  std::time_t now_;
  std::vector<Participant> participants_;
  std::optional<CertificateAuthority> authority_;
  std::vector<RevokedEntry> revoked_;
};

}  // namespace

ProvisionOutcome provision(const Project& project, const ProvisionRequest& request) {
  return ProjectFolder(project, request).run();
}

}  // namespace flare::provision
