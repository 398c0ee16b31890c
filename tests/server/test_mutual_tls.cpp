// The server over mutual TLS on loopback, with certificates made here: a
// request is taken only from the site its certificate names, a certificate
// the project's CA did not issue, or an expired, revoked or denied one, never
// reaches the service, and each refusal and accepted model is in the audit
// trail (what it holds, and that its file is the owner's alone).
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/sha.h>

#include "identity/certificate_authority.hpp"
#include "tls_served_job.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using namespace std::chrono_literals;
using identity::Role;

namespace {

const std::time_t kNow = std::time(nullptr);
constexpr std::time_t kDay = 24 * 3600;

// A project's CA (provisioning's), issuing a participant's TLS settings.
struct TestCa {
  explicit TestCa(const std::string& project)
      : ca(identity::CertificateAuthority::create(project, identity::validity_from(kNow - 10 * kDay, 30))) {}
  transport::TlsSettings issue(Role role, const std::string& name,
                               identity::Validity validity = identity::validity_from(kNow - 60, 7)) const {
    auto issued = ca.issue({{role, name}, "", validity});
    return {ca.certificate_pem(), issued.certificate_pem, issued.private_key_pem};
  }
  std::string revocation_list(const std::vector<std::string>& certificates) const {
    std::vector<identity::RevokedCertificate> revoked;
    for (const auto& pem : certificates) revoked.push_back({identity::certificate_serial_hex(pem), kNow});
    return ca.revocation_list_pem(revoked, kNow);
  }
  identity::CertificateAuthority ca;
};

// Two sites s1, s2 and a server, all from one CA; s3 is issued but denied,
// s4 issued and then revoked.
struct TlsJob : testing::TlsServedJob {
  TlsJob() : TlsServedJob({"s1", "s2"}) { serve(tls); }

  TestCa ca{"test"};
  transport::TlsSettings s1 = ca.issue(Role::site, "s1");
  transport::TlsSettings s2 = ca.issue(Role::site, "s2");
  transport::TlsSettings s3 = ca.issue(Role::site, "s3");
  transport::TlsSettings s4 = ca.issue(Role::site, "s4");
  server::ServerTls tls{.tls = ca.issue(Role::server, "test-server"),
                        .crl_pem = ca.revocation_list({s4.cert_pem}),
                        .denied = {"s3"}};

  std::unique_ptr<transport::ServerConnection> connect(const std::string& site,
                                                       const transport::TlsSettings& settings) {
    return std::make_unique<transport::ServerConnection>(rpc->address(), site, 5s, settings);
  }
};

using testing::register_as;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a site's certificate speaks for that site alone, and each refusal is audited") {
  TlsJob job;
  auto stub = job.stub(job.s1);
  REQUIRE(register_as(*stub, "s1").ok());

  const auto forged = register_as(*stub, "s2");
  CHECK(forged.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(contains(forged.error_message(), "flare://site/s1"));
  CHECK(contains(forged.error_message(), "may not speak for site 's2'"));

  // A failure, progress and an update for s2, each from s1's certificate.
  v1::Failure failure;
  failure.set_site("s2");
  failure.set_cause("forged");
  v1::Ack ack;
  grpc::ClientContext failure_context;
  CHECK(stub->ReportFailure(&failure_context, failure, &ack).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  v1::Progress progress;
  progress.set_site("s2");
  grpc::ClientContext progress_context;
  CHECK(stub->ReportProgress(&progress_context, progress, &ack).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext upload_context;
  auto writer = stub->SubmitUpdate(&upload_context, &ack);
  v1::UploadPart header;
  header.mutable_update()->set_site("s2");
  writer->Write(header);
  writer->WritesDone();
  CHECK(writer->Finish().error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // The job is untouched: s2 registers with its own certificate.
  CHECK(register_as(*job.stub(job.s2), "s2").ok());

  const auto refused = job.audit_lines("request_refused");
  REQUIRE(refused.size() == 4);
  for (const auto& line : refused) {
    CHECK(line["identity"] == "site/s1");
    CHECK(line["claimed_site"] == "s2");
    CHECK(contains(line["peer"], "127.0.0.1"));
  }
  CHECK(refused[0]["call"] == "Register");
  CHECK(refused[1]["call"] == "ReportFailure");
  CHECK(refused[2]["call"] == "ReportProgress");
  CHECK(refused[3]["call"] == "SubmitUpdate");
  const auto connections = job.audit_lines("connection");
  REQUIRE(connections.size() == 2);
  CHECK(connections[0]["identity"] == "site/s1");
  CHECK(connections[1]["identity"] == "site/s2");
}

TEST_CASE("certificates not issued, expired, revoked or denied fail the handshake, with the reason audited") {
  TlsJob job;
  // Same project name, another key.
  auto forged = TestCa("test").issue(Role::site, "s1");
  // It trusts the project's CA (its certificate is public), but is not from it.
  forged.ca_pem = job.s1.ca_pem;
  struct Impostor {
    std::string name;
    transport::TlsSettings settings;
    std::string refusal;
    std::string reason;
  };
  const std::vector<Impostor> impostors{
      {"another CA", forged, "other_ca", "not by this project's CA"},
      {"expired", job.ca.issue(Role::site, "s1", {kNow - 2 * kDay, kNow - kDay}), "expired",
       "expired at"},
      {"revoked", job.s4, "revoked", "on the CA's revocation list"},
      {"denied", job.s3, "revoked", "flare://site/s3 is denied by the server's configuration"},
  };
  for (const auto& impostor : impostors) {
    CAPTURE(impostor.name);
    const auto status = register_as(*job.stub(impostor.settings), "s1");
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    const auto refused = job.audit_lines("handshake_refused");
    REQUIRE(!refused.empty());
    CHECK(refused.back()["refusal"] == impostor.refusal);
    CHECK(contains(refused.back()["reason"], impostor.reason));
  }
  CHECK(job.audit_lines("handshake_refused").size() >= impostors.size());
  // The site's own client says where to look.
  CHECK_THROWS_WITH_AS(job.connect("s1", impostors[1].settings)->wait_until_reachable(1s),
                       doctest::Contains("may have refused this site's certificate"),
                       transport::TransportError);
  // None reached the service.
  CHECK(job.audit_lines("connection").empty());
  CHECK(job.audit_lines("request_refused").empty());
}

TEST_CASE("a client without a certificate is not served") {
  TlsJob job;
  namespace x = grpc::experimental;
  x::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(
      std::make_shared<x::StaticDataCertificateProvider>(job.s1.ca_pem));
  options.watch_root_certs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(std::make_shared<x::NoOpCertificateVerifier>());
  options.set_check_call_host(false);
  auto stub = v1::FlareServer::NewStub(grpc::CreateCustomChannel(
      job.rpc->address(), x::TlsCredentials(options), transport::channel_arguments(5s)));
  CHECK(register_as(*stub, "s1").error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(job.audit_lines("connection").empty());
  const auto refused = job.audit_lines("handshake_refused");
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["reason"] == "no client certificate");
  CHECK(refused[0]["refusal"] == "no_certificate");
  // Nor one speaking plaintext to the TLS port.
  auto plain = v1::FlareServer::NewStub(grpc::CreateCustomChannel(
      job.rpc->address(), grpc::InsecureChannelCredentials(), transport::channel_arguments(5s)));
  CHECK(register_as(*plain, "s1").error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(job.audit_lines("connection").empty());
}

TEST_CASE("a site checks that it reached the project's server, not another participant") {
  TlsJob job;
  // A "server" holding a site's certificate from the same CA.
  server::ServerTls posing{.tls = job.s2};
  server::RpcServer impostor{job.service, "127.0.0.1", 0,
                             server::server_credentials(posing, nullptr)};
  transport::ServerConnection site(impostor.address(), "s1", 5s, job.s1);
  CHECK_THROWS_AS(site.register_site(1), transport::TransportError);
  CHECK(job.audit_lines("connection").empty());
}

TEST_CASE("each accepted model is audited with its site, round, size and SHA-256") {
  TlsJob job;
  auto s1 = job.connect("s1", job.s1);
  auto s2 = job.connect("s2", job.s2);
  s1->register_site(1);
  s2->register_site(1);
  REQUIRE(s1->next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
  auto initial = testing::ControllerJob::weights(1.5f);
  s1->submit_initial_model(tensor::views_of(initial));
  for (auto* site : {s1.get(), s2.get()}) {
    REQUIRE(site->next_task().task.kind() == v1::Task::TRAIN);
    auto update = testing::ControllerJob::weights(site == s1.get() ? 2.0f : 4.0f);
    v1::UpdateHeader header;
    header.set_round(0);
    header.set_num_samples(10);
    site->submit_update(header, tensor::views_of(update), {});
  }

  auto sha256_of = [](float w) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(&w), sizeof(w), digest);
    std::string hex;
    for (unsigned char b : digest) {
      static constexpr char kHex[] = "0123456789abcdef";
      hex += kHex[b >> 4];
      hex += kHex[b & 15];
    }
    return hex;
  };
  const auto initial_lines = job.audit_lines("initial_model_accepted");
  REQUIRE(initial_lines.size() == 1);
  CHECK(initial_lines[0]["site"] == "s1");
  CHECK(initial_lines[0]["sha256"] == sha256_of(1.5f));
  const auto updates = job.audit_lines("update_accepted");
  REQUIRE(updates.size() == 2);
  CHECK(updates[0]["site"] == "s1");
  CHECK(updates[0]["round"] == 0);
  CHECK(updates[0]["bytes"] == sizeof(float));
  CHECK(updates[0]["sha256"] == sha256_of(2.0f));
  CHECK(updates[1]["site"] == "s2");
  CHECK(updates[1]["sha256"] == sha256_of(4.0f));

  struct stat st {};
  REQUIRE(::stat(job.audit_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("text a remote party chose reaches the audit printable and bounded") {
  TlsJob job;
  auto stub = job.stub(job.s1);
  REQUIRE(register_as(*stub, "\x1b[2J" + std::string(10000, 'x')).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  const auto refused = job.audit_lines("request_refused");
  REQUIRE(refused.size() == 1);
  const std::string claimed = refused[0]["claimed_site"];
  CHECK(claimed.find('\x1b') == std::string::npos);
  CHECK(claimed.starts_with("\\x1b[2J"));
  CHECK(claimed.size() < 300);
  const std::string reason = refused[0]["reason"];
  CHECK(reason.find('\x1b') == std::string::npos);
  CHECK(reason.size() < 300);
}

TEST_CASE("a TLS folder whose key others may read is refused, naming the file") {
  testing::TempFolder dir;
  transport::write_tls_dir(dir.path() / "s1", TestCa("test").issue(Role::site, "s1"));
  struct stat st {};
  REQUIRE(::stat((dir.path() / "s1" / "participant.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(transport::load_tls_dir(dir.path() / "s1").cert_pem.find("BEGIN CERTIFICATE") !=
        std::string::npos);
  std::filesystem::permissions(dir.path() / "s1" / "participant.key",
                               std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  CHECK_THROWS_WITH_AS(transport::load_tls_dir(dir.path() / "s1"),
                       doctest::Contains("participant.key may be read by others"), std::runtime_error);
  CHECK_THROWS_WITH_AS(transport::load_tls_dir(dir.path() / "missing"),
                       doctest::Contains("missing/ca.crt"), std::runtime_error);
}
