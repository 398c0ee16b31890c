// The server and its participants from the startup folders flare-provision's
// library writes, over real gRPC: the server takes its certificate, the CA,
// crl.pem and local.toml's denied_participants from its folder, so a revoked
// or denied participant, and an admin speaking as a site, are refused with
// their reason in the audit, while a good site is served.
#include <doctest/doctest.h>

#include <fstream>

#include "identity/startup_kit.hpp"
#include "provision/provisioner.hpp"
#include "tls_served_job.hpp"

using namespace flare;
using testing::register_as;

namespace {

// Three sites and an admin, provisioned; site-3 revoked (crl.pem), site-2
// then denied by name in the server's local.toml, as its operator would.
struct ProvisionedJob : testing::TlsServedJob {
  ProvisionedJob() : TlsServedJob({"site-1", "site-2"}) {
    provision::Project project;
    project.name = "example";
    project.server_name = "localhost";
    project.sites = {{"site-1", "a", 1}, {"site-2", "b", 1}, {"site-3", "c", 1}};
    project.admins = {{"admin@org.com", "a", "project_admin"}};
    provision::provision(project, {dir.path() / "out", {}, {}, 0});
    provision::provision(project, {dir.path() / "out", {}, {"site-3"}, 0});
    auto server_kit = identity::load_startup_kit(startup("localhost"));
    // Only the CRL refuses site-3 here: the denied list is checked after it.
    server_kit.config.denied_participants = {"site-2"};
    std::ofstream(startup("localhost") / identity::kLocalConfigFile)
        << identity::render_local_config(server_kit.config);
    // As the long-running flare-server does.
    serve(server::server_tls_from_kit(identity::load_startup_kit(startup("localhost"))));
  }

  std::filesystem::path startup(const std::string& participant) const {
    return dir.path() / "out" / "example" / participant / "startup";
  }
  transport::TlsSettings kit_tls(const std::string& participant) const {
    return transport::tls_settings_from_kit(identity::load_startup_kit(startup(participant)));
  }
  grpc::Status register_with(const transport::TlsSettings& tls, const std::string& site) {
    return register_as(*stub(tls), site);
  }
};

}  // namespace

TEST_CASE("a server from its startup folder serves a provisioned site") {
  ProvisionedJob job;
  CHECK(job.register_with(job.kit_tls("site-1"), "site-1").ok());
  const auto connections = job.audit_lines("connection");
  REQUIRE(connections.size() == 1);
  CHECK(connections[0]["identity"] == "site/site-1");
  CHECK(job.audit_lines("handshake_refused").empty());
}

TEST_CASE("a server from its startup folder refuses a revoked and a denied site, naming why") {
  ProvisionedJob job;
  // A startup folder is a TLS folder: site-3's as flare-client --tls-dir reads it.
  const auto revoked = transport::load_tls_dir(job.startup("site-3"));
  CHECK(job.register_with(revoked, "site-3").error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(job.register_with(job.kit_tls("site-2"), "site-2").error_code() ==
        grpc::StatusCode::UNAVAILABLE);
  const auto refused = job.audit_lines("handshake_refused");
  REQUIRE(refused.size() == 2);
  CHECK(refused[0]["certificate"] == "flare://site/site-3");
  CHECK(refused[0]["refusal"] == "revoked");
  CHECK(refused[0]["reason"].get<std::string>().find("on the CA's revocation list") !=
        std::string::npos);
  CHECK(refused[1]["certificate"] == "flare://site/site-2");
  CHECK(refused[1]["refusal"] == "revoked");
  CHECK(refused[1]["reason"] == "flare://site/site-2 is denied by the server's configuration");
  CHECK(job.audit_lines("connection").empty());
}

TEST_CASE("an admin's certificate may not make a site's request") {
  ProvisionedJob job;
  const auto status = job.register_with(job.kit_tls("admin@org.com"), "site-1");
  CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  const auto refused = job.audit_lines("request_refused");
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["identity"] == "admin/admin@org.com");
  CHECK(refused[0]["claimed_site"] == "site-1");
  CHECK(refused[0]["reason"] == "the caller is flare://admin/admin@org.com, not a site");
  // The job is untouched: site-1 itself still registers.
  CHECK(job.register_with(job.kit_tls("site-1"), "site-1").ok());
}

TEST_CASE("only a server's startup folder gives a server's TLS") {
  ProvisionedJob job;
  CHECK_THROWS_WITH_AS(
      server::server_tls_from_kit(identity::load_startup_kit(job.startup("site-1"))),
      doctest::Contains("flare://site/site-1's, not a server's"), identity::IdentityError);
  const auto tls = server::server_tls_from_kit(identity::load_startup_kit(job.startup("localhost")));
  CHECK(tls.denied == std::vector<std::string>{"site-2"});
  CHECK(tls.crl_pem.find("BEGIN X509 CRL") != std::string::npos);
}
