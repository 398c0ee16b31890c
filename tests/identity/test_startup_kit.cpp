#include <doctest/doctest.h>
#include <sys/stat.h>

#include <ctime>

#include "identity/certificate_authority.hpp"
#include "identity/ephemeral.hpp"
#include "identity/peer_check.hpp"
#include "identity/startup_kit.hpp"
#include "temp_folder.hpp"

using namespace flare::identity;
using flare::testing::TempFolder;
using flare::testing::write_bytes;

namespace {

const std::time_t kNow = std::time(nullptr);

LocalConfig server_config() {
  LocalConfig config;
  config.project = "example";
  config.self = {Role::server, "fl.example.com"};
  config.server_host = "fl.example.com";
  config.server_port = 8002;
  config.sites = {"site-1", "site-2"};
  config.admins = {{"admin@org.com", "project_admin"}};
  config.denied_participants = {"site-3"};
  return config;
}

// A site's startup folder as flare-provision lays it out.
void write_site_folder(const std::filesystem::path& folder, const CertificateAuthority& ca,
                       const std::string& name) {
  std::filesystem::create_directories(folder);
  auto issued = ca.issue({{Role::site, name}, "", validity_from(kNow, 365)});
  LocalConfig config;
  config.project = "example";
  config.self = {Role::site, name};
  config.server_host = "fl.example.com";
  config.server_port = 8002;
  config.nodes = 2;
  write_bytes(folder / kLocalConfigFile, render_local_config(config));
  write_bytes(folder / kCertificateFile, issued.certificate_pem);
  write_bytes(folder / kPrivateKeyFile, issued.private_key_pem);
  ::chmod((folder / kPrivateKeyFile).c_str(), 0600);
  write_bytes(folder / kCaCertificateFile, ca.certificate_pem());
}

}  // namespace

TEST_CASE("a local config reads back as it was written") {
  auto config = server_config();
  CHECK(parse_local_config(render_local_config(config), "local.toml") == config);
}

TEST_CASE("a bad local config names the file, the line and the key") {
  std::string text = render_local_config(server_config());
  text.replace(text.find("port = 8002"), 11, "port = 99999");
  CHECK_THROWS_WITH_AS(parse_local_config(text, "x/local.toml"),
                       doctest::Contains("x/local.toml:9: server.port: expected an integer from 1 "
                                         "to 65535"),
                       IdentityError);
}

TEST_CASE("a startup folder loads into a kit naming its identity, config and pieces") {
  TempFolder dir;
  auto ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_site_folder(dir.path(), ca, "site-1");
  auto kit = load_startup_kit(dir.path());
  CHECK(kit.identity() == Identity{Role::site, "site-1"});
  CHECK(kit.config.nodes == 2);
  CHECK(kit.config.server_host == "fl.example.com");
  CHECK(kit.ca_certificate_pem == ca.certificate_pem());
  CHECK(kit.private_key_pem.find("PRIVATE KEY") != std::string::npos);
}

TEST_CASE("a startup folder whose key others can read is refused, naming the mode") {
  TempFolder dir;
  auto ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_site_folder(dir.path(), ca, "site-1");
  ::chmod((dir / std::string(kPrivateKeyFile)).c_str(), 0640);
  CHECK_THROWS_WITH_AS(load_startup_kit(dir.path()), doctest::Contains("mode 0640"), IdentityError);
}

TEST_CASE("a startup folder whose key belongs to another certificate is refused") {
  TempFolder dir;
  auto ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_site_folder(dir.path(), ca, "site-1");
  write_bytes(dir / std::string(kPrivateKeyFile),
              ca.issue({{Role::site, "site-1"}, "", validity_from(kNow, 1)}).private_key_pem);
  CHECK_THROWS_WITH_AS(load_startup_kit(dir.path()), doctest::Contains("not the key of"),
                       IdentityError);
}

TEST_CASE(
    "a startup folder whose certificate names another participant than its config is refused") {
  TempFolder dir;
  auto ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_site_folder(dir.path(), ca, "site-1");
  auto other = ca.issue({{Role::site, "site-2"}, "", validity_from(kNow, 365)});
  write_bytes(dir / std::string(kCertificateFile), other.certificate_pem);
  write_bytes(dir / std::string(kPrivateKeyFile), other.private_key_pem);
  CHECK_THROWS_WITH_AS(load_startup_kit(dir.path()),
                       doctest::Contains("names flare://site/site-2, but"), IdentityError);
}

TEST_CASE("a startup folder with a certificate from another CA is refused with the reason") {
  TempFolder dir;
  auto ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_site_folder(dir.path(), ca, "site-1");
  auto other_ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  write_bytes(dir / std::string(kCaCertificateFile), other_ca.certificate_pem());
  CHECK_THROWS_WITH_AS(load_startup_kit(dir.path()), doctest::Contains("other_ca"), IdentityError);
}

TEST_CASE("ephemeral provisioning gives a server and each site a kit their CA vouches for") {
  auto federation = provision_ephemeral("127.0.0.1", 8002, {"site-1", "site-2"});
  PeerVerifier verifier(federation.ca_certificate_pem);
  auto server = verifier.check(federation.server.certificate_pem, Role::server);
  CHECK(server.accepted());
  CHECK(server.identity == Identity{Role::server, "127.0.0.1"});
  CHECK(federation.server.config.sites == std::vector<std::string>{"site-1", "site-2"});
  REQUIRE(federation.sites.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    auto check = verifier.check(federation.sites[i].certificate_pem, Role::site);
    CHECK(check.accepted());
    CHECK(check.identity == federation.sites[i].identity());
    CHECK(federation.sites[i].config.server_port == 8002);
  }
  CHECK(federation.sites[1].identity().name == "site-2");
  auto another = provision_ephemeral("127.0.0.1", 8002, {"site-1"});
  CHECK(verifier.check(another.sites[0].certificate_pem).refusal == Refusal::other_ca);
}
