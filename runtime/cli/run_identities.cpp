#include "cli/run_identities.hpp"

namespace flare::cli {

RunIdentities::RunIdentities(const std::filesystem::path& tls_root, const std::string& job_name)
    : root_(tls_root), ca_("flare-run CA for " + job_name) {
  std::filesystem::create_directories(root_);
  std::filesystem::permissions(root_, std::filesystem::perms::owner_all);
}

server::ServerTls RunIdentities::server_tls() {
  return {.tls = ca_.settings_for(ca_.issue({"server", "flare-run"}))};
}

std::filesystem::path RunIdentities::site_dir(const std::string& site) {
  const auto dir = root_ / site;
  transport::write_tls_dir(dir, ca_.settings_for(ca_.issue({"site", site})));
  return dir;
}

}  // namespace flare::cli
