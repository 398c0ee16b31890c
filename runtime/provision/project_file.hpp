// The project file flare-provision reads (docs/deploying.md shows one):
//   [project]  name, certificate_days (365), ca_days (3650)
//   [server]   name (its DNS name or IP address), port (8002), org
//   [sites.<name>]    org, nodes (1)
//   [admins."<e-mail>"]  org, role (project_admin | org_admin | lead | member)
// Validated like a job spec: a problem names file:line, the key, what was
// expected and what was found; unknown keys are errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::provision {

struct SiteEntry {
  std::string name;
  std::string organisation;
  int nodes = 1;
};

struct AdminEntry {
  std::string name;  // e-mail
  std::string organisation;
  std::string role = "member";
};

struct Project {
  std::string name;
  int certificate_days = 365;
  int ca_days = 3650;
  std::string server_name;
  std::string server_organisation;
  std::uint16_t server_port = 8002;  // sites and admins both connect here
  std::vector<SiteEntry> sites;      // ordered by name
  std::vector<AdminEntry> admins;
};

class ProjectFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Project read_project_file(const std::filesystem::path& file);

}  // namespace flare::provision
