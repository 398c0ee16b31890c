// Turning a project into folders: the CA under <out>/<project>/ca/ (its key
// never leaves it) and one startup folder per participant under
// <out>/<project>/<name>/startup/. Re-running is safe: what exists and still
// matches the project is kept byte for byte; only new participants (and
// those named by --reissue) get certificates. See docs/deploying.md.
#pragma once

#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "provision/project_file.hpp"

namespace flare::provision {

struct ProvisionRequest {
  std::filesystem::path output;      // the project's folder is output/<project name>
  std::vector<std::string> reissue;  // participants to issue a new certificate and key
  std::vector<std::string> revoke;   // participants to put on the CRL and the denied list
  std::time_t now = 0;               // 0: the current time
};

struct ProvisionOutcome {
  std::filesystem::path project_folder;
  bool created_ca = false;
  std::vector<std::string> issued;      // new participants
  std::vector<std::string> reissued;    // --reissue
  std::vector<std::string> revoked;     // newly revoked by this run
  std::vector<std::string> left_alone;  // folders of participants no longer in the project
};

// A request that would silently change who someone is (a participant's role,
// the server's name) or names someone unknown; nothing has been written.
class ProvisionRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

ProvisionOutcome provision(const Project& project, const ProvisionRequest& request);

}  // namespace flare::provision
