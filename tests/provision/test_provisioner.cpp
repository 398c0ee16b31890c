#include <doctest/doctest.h>
#include <sys/stat.h>

#include <map>

#include "identity/peer_check.hpp"
#include "identity/startup_kit.hpp"
#include "provision/output_folder.hpp"
#include "provision/provisioner.hpp"
#include "temp_folder.hpp"

using namespace flare::provision;
using namespace flare::identity;
using flare::testing::read_bytes;
using flare::testing::TempFolder;
namespace fs = std::filesystem;

namespace {

Project example_project() {
  Project project;
  project.name = "example";
  project.server_name = "fl.example.com";
  project.sites = {{"site-1", "hospital-a", 2}, {"site-2", "", 1}};
  project.admins = {{"admin@org.com", "org-a", "project_admin"}};
  return project;
}

struct FileState {
  std::string bytes;
  unsigned mode = 0;
  long long mtime_ns = 0;
  bool operator==(const FileState&) const = default;
};

// Every file and folder under `root`: content, permission bits, modification time.
std::map<std::string, FileState> snapshot(const fs::path& root) {
  std::map<std::string, FileState> state;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    struct stat info {};
    ::stat(entry.path().c_str(), &info);
    FileState file{entry.is_regular_file() ? read_bytes(entry.path()) : "",
                   static_cast<unsigned>(info.st_mode & 07777),
                   info.st_mtim.tv_sec * 1000000000LL + info.st_mtim.tv_nsec};
    state[fs::relative(entry.path(), root).string()] = file;
  }
  return state;
}

unsigned mode_of(const fs::path& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return info.st_mode & 07777;
}

ProvisionOutcome run(const Project& project, const fs::path& output,
                     std::vector<std::string> reissue = {}, std::vector<std::string> revoke = {}) {
  return provision(project, {output, std::move(reissue), std::move(revoke), 0});
}

}  // namespace

TEST_CASE(
    "every participant gets a private startup folder that loads, and the CA key stays in ca/") {
  TempFolder dir;
  auto outcome = run(example_project(), dir.path());
  CHECK(outcome.created_ca);
  CHECK(outcome.issued ==
        std::vector<std::string>{"fl.example.com", "site-1", "site-2", "admin@org.com"});
  fs::path root = dir / "example";
  CHECK(mode_of(root) == 0700);
  CHECK(mode_of(root / "ca") == 0700);
  CHECK(mode_of(root / "ca" / "ca.key") == 0600);
  for (std::string name : {"fl.example.com", "site-1", "site-2", "admin@org.com"}) {
    CAPTURE(name);
    fs::path startup = root / name / "startup";
    CHECK(mode_of(root / name) == 0700);
    CHECK(mode_of(startup) == 0700);
    CHECK(mode_of(startup / kPrivateKeyFile) == 0600);
    CHECK(mode_of(startup / kStartScriptFile) == 0700);
    CHECK_FALSE(fs::exists(startup / "ca.key"));
    auto kit = load_startup_kit(startup);
    CHECK(kit.identity().name == name);
    CHECK(kit.ca_certificate_pem == read_bytes(root / "ca" / "ca.crt"));
    CHECK(kit.config.server_host == "fl.example.com");
    CHECK(kit.config.server_port == 8002);
  }
  auto server = load_startup_kit(root / "fl.example.com" / "startup");
  CHECK(server.identity().role == Role::server);
  CHECK(server.config.sites == std::vector<std::string>{"site-1", "site-2"});
  CHECK(server.config.admins ==
        std::vector<flare::identity::AdminEntry>{{"admin@org.com", "project_admin"}});
  CHECK(server.config.denied_participants.empty());
  CHECK(load_startup_kit(root / "site-1" / "startup").config.nodes == 2);
  CHECK(read_bytes(root / "site-1" / "startup" / "start.sh").find("flare-client\" --startup") !=
        std::string::npos);
  CHECK(read_bytes(root / "fl.example.com" / "startup" / "start.sh").find("flare-server\"") !=
        std::string::npos);
  CHECK(read_bytes(root / "admin@org.com" / "startup" / "start.sh").find("flare-admin\"") !=
        std::string::npos);
}

TEST_CASE("re-running with the same project issues nothing and changes no byte, mode or time") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto before = snapshot(dir.path());
  auto outcome = run(example_project(), dir.path());
  CHECK_FALSE(outcome.created_ca);
  CHECK(outcome.issued.empty());
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("a site added to the project is the only one issued, and the server's config lists it") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto before = snapshot(dir.path());
  auto project = example_project();
  project.sites.push_back({"site-3", "", 1});
  auto outcome = run(project, dir.path());
  CHECK(outcome.issued == std::vector<std::string>{"site-3"});
  auto after = snapshot(dir.path());
  for (const auto& [path, state] : before) {
    CAPTURE(path);
    // The server's site list grows; folders gain entries (and new times).
    if (path == "example/fl.example.com/startup/local.toml" || fs::is_directory(dir / path)) {
      continue;
    }
    CHECK(after.at(path) == state);
  }
  CHECK(load_startup_kit(dir / "example/site-3/startup").identity() ==
        Identity{Role::site, "site-3"});
  CHECK(load_startup_kit(dir / "example/fl.example.com/startup").config.sites ==
        std::vector<std::string>{"site-1", "site-2", "site-3"});
}

TEST_CASE("a participant removed from the project keeps its folder and is reported") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto project = example_project();
  project.sites.pop_back();
  auto outcome = run(project, dir.path());
  CHECK(outcome.left_alone == std::vector<std::string>{"site-2"});
  CHECK(fs::exists(dir / "example/site-2/startup/participant.key"));
  CHECK(load_startup_kit(dir / "example/fl.example.com/startup").config.sites ==
        std::vector<std::string>{"site-1"});
}

TEST_CASE("a participant whose role changed is refused and nothing is written") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto before = snapshot(dir.path());
  auto project = example_project();
  project.server_name = "site-2";  // site-2 would become the server
  project.sites.pop_back();
  CHECK_THROWS_WITH_AS(run(project, dir.path()),
                       "site-2 was provisioned as a site and the project file now makes it a "
                       "server; re-run with --reissue site-2 to issue it anew",
                       ProvisionRefused);
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("a new server name is refused unless reissued, then every site points to it") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto before = snapshot(dir.path());
  auto project = example_project();
  project.server_name = "fl2.example.com";
  CHECK_THROWS_WITH_AS(run(project, dir.path()),
                       doctest::Contains("the server was provisioned as fl.example.com and the "
                                         "project file now names fl2.example.com"),
                       ProvisionRefused);
  CHECK(snapshot(dir.path()) == before);
  auto outcome = run(project, dir.path(), {"fl2.example.com"});
  CHECK(outcome.issued == std::vector<std::string>{"fl2.example.com"});
  CHECK(load_startup_kit(dir / "example/site-1/startup").config.server_host == "fl2.example.com");
  CHECK(load_startup_kit(dir / "example/fl2.example.com/startup").identity().role == Role::server);
  auto after = snapshot(dir.path());
  CHECK(run(project, dir.path()).left_alone == std::vector<std::string>{"fl.example.com"});
  CHECK(snapshot(dir.path()) == after);  // the rename, once done, is not refused again
}

TEST_CASE("--reissue gives that participant alone a new key and certificate") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto before = snapshot(dir.path());
  auto outcome = run(example_project(), dir.path(), {"site-1"});
  CHECK(outcome.reissued == std::vector<std::string>{"site-1"});
  auto after = snapshot(dir.path());
  CHECK(after.at("example/site-1/startup/participant.key") !=
        before.at("example/site-1/startup/participant.key"));
  CHECK(after.at("example/site-1/startup/participant.crt") !=
        before.at("example/site-1/startup/participant.crt"));
  CHECK(after.at("example/site-2/startup/participant.crt") ==
        before.at("example/site-2/startup/participant.crt"));
  CHECK(load_startup_kit(dir / "example/site-1/startup").identity().name == "site-1");
  CHECK_THROWS_WITH_AS(run(example_project(), dir.path(), {"site-9"}),
                       "--reissue site-9: not a participant of the project file", ProvisionRefused);
}

TEST_CASE(
    "--revoke lists the certificate in the CA's CRL and the name in the server's denied list") {
  TempFolder dir;
  run(example_project(), dir.path());
  auto revoked_certificate = read_bytes(dir / "example/site-2/startup/participant.crt");
  auto outcome = run(example_project(), dir.path(), {}, {"site-2"});
  CHECK(outcome.revoked == std::vector<std::string>{"site-2"});

  auto server = load_startup_kit(dir / "example/fl.example.com/startup");
  CHECK(server.config.denied_participants == std::vector<std::string>{"site-2"});
  CHECK(server.revocation_list_pem == read_bytes(dir / "example/ca/crl.pem"));
  PeerVerifier by_crl(server.ca_certificate_pem, server.revocation_list_pem);
  CHECK(by_crl.check(revoked_certificate).refusal == Refusal::revoked);
  CHECK(by_crl.check(read_bytes(dir / "example/site-1/startup/participant.crt")).accepted());
  PeerVerifier by_name(server.ca_certificate_pem, {}, server.config.denied_participants);
  CHECK(by_name.check(revoked_certificate).refusal == Refusal::revoked);

  auto before = snapshot(dir.path());
  CHECK(run(example_project(), dir.path(), {}, {"site-2"}).revoked.empty());
  CHECK(run(example_project(), dir.path()).revoked.empty());
  CHECK(snapshot(dir.path()) == before);
  CHECK_THROWS_WITH_AS(run(example_project(), dir.path(), {}, {"site-9"}),
                       doctest::Contains("--revoke site-9: no certificate was issued"),
                       ProvisionRefused);
}

TEST_CASE("a folder replaced by a write that fails part-way keeps its old content") {
  TempFolder dir;
  replace_folder(dir / "startup", {{"local.toml", {"old", 0600}}});
  FolderContent broken{{"a.crt", {"new", 0644}}, {"missing/b.key", {"new", 0600}}};
  CHECK_THROWS(replace_folder(dir / "startup", broken));
  CHECK(read_bytes(dir / "startup/local.toml") == "old");
  CHECK(dir.entries() == std::vector<std::string>{"startup"});  // no staging folder left
}

TEST_CASE("a participant folder holding a certificate flare-provision did not issue is refused") {
  TempFolder dir;
  run(example_project(), dir.path());
  flare::testing::write_bytes(dir / "example/site-1/startup/participant.crt", "junk");
  CHECK_THROWS_WITH_AS(run(example_project(), dir.path()),
                       doctest::Contains("not a certificate flare-provision issued"),
                       ProvisionRefused);
}
