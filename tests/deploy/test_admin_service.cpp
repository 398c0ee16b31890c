// The long-running server's admin service and job desk over real gRPC with
// mutual TLS: who may do what (roles from the server's config, identities
// from certificates), what a refused submission says, files streamed byte
// for byte, and the audit of each.
#include <doctest/doctest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "deploy/deploy_services.hpp"
#include "deploy/job_folder.hpp"
#include "identity/certificate_authority.hpp"
#include "server/rpc_service.hpp"
#include "audit_lines.hpp"
#include "temp_folder.hpp"
#include "transport/server_connection.hpp"
#include "transport/tls_settings.hpp"

using namespace flare;
using namespace std::chrono_literals;
namespace v1 = flare::deploy::v1;

namespace {

const std::string kJob = R"(
[job]
name = "mnist-like"
num_rounds = 2
[clients]
count = 2
devices = 1
accelerator = "cpu"
[data]
dir = "/data/here"
[trainer]
plugin = "cifar10"
[aggregator]
path = ")" FLARE_FEDAVG_PLUGIN R"("
)";

struct Deployment {
  testing::TempFolder dir;
  identity::CertificateAuthority ca = identity::CertificateAuthority::create(
      "test", identity::validity_from(std::time(nullptr) - 60, 1));
  transport::TlsSettings as(identity::Role role, const std::string& name) const {
    const auto issued = ca.issue(
        {.identity = {role, name}, .validity = identity::validity_from(std::time(nullptr) - 60, 1)});
    return {ca.certificate_pem(), issued.certificate_pem, issued.private_key_pem};
  }
  std::filesystem::path jobs_dir = dir.path() / "jobs";
  std::filesystem::path audit_file = dir.path() / "audit.jsonl";
  server::AuditLog audit{audit_file};
  deploy::JobTable table;
  deploy::JobDeskService desk{table, &audit, {.project_sites = {"site-1", "site-2"},
                                              .poll_wait = 100ms}};
  deploy::AdminService admin{table, &audit,
                             {.admin_roles = {{"boss@org.com", "project_admin"},
                                              {"lead@org.com", "lead"},
                                              {"other-lead@org.com", "lead"},
                                              {"member@org.com", "member"}},
                              .server = {.project_sites = {"site-1", "site-2"}},
                              .jobs_dir = jobs_dir}};
  server::ServerTls tls{.tls = as(identity::Role::server, "127.0.0.1")};
  server::RpcServer rpc{{&desk, &admin}, "127.0.0.1", 0, server::server_credentials(tls, &audit)};

  std::shared_ptr<grpc::Channel> channel(const transport::TlsSettings& who) const {
    return grpc::CreateCustomChannel(rpc.address(), transport::channel_credentials(who),
                                     transport::channel_arguments(5s));
  }
  std::unique_ptr<v1::Admin::Stub> admin_as(const std::string& name) const {
    return v1::Admin::NewStub(channel(as(identity::Role::admin, name)));
  }
  std::vector<nlohmann::json> audit_lines(const std::string& event) const {
    return flare::testing::audit_lines(audit_file, event);
  }
};

grpc::Status submit(v1::Admin::Stub& admin, const std::string& toml, v1::JobSummary& summary) {
  grpc::ClientContext context;
  v1::JobSubmission request;
  request.set_job_toml(toml);
  request.set_file_name("/home/admin/jobs/mnist.toml");
  return admin.SubmitJob(&context, request, &summary);
}

grpc::Status list(v1::Admin::Stub& admin, v1::JobList& jobs, const std::string& id = "") {
  grpc::ClientContext context;
  v1::JobRef request;
  request.set_job_id(id);
  return admin.ListJobs(&context, request, &jobs);
}

grpc::Status abort_job(v1::Admin::Stub& admin, const std::string& id) {
  grpc::ClientContext context;
  v1::JobRef request;
  request.set_job_id(id);
  v1::JobSummary summary;
  return admin.AbortJob(&context, request, &summary);
}

// The file a download streams, or its status.
std::pair<grpc::Status, std::string> download(v1::Admin::Stub& admin, const std::string& id,
                                              const std::string& which) {
  grpc::ClientContext context;
  v1::ModelRequest request;
  request.set_job_id(id);
  request.set_which(which);
  auto reader = admin.DownloadModel(&context, request);
  std::string bytes;
  v1::FileChunk chunk;
  while (reader->Read(&chunk)) bytes += chunk.data();
  return {reader->Finish(), bytes};
}

}  // namespace

TEST_CASE("an admin submits a job: it is checked, stored and listed, and the audit says who") {
  Deployment d;
  auto boss = d.admin_as("boss@org.com");
  v1::JobSummary job;
  REQUIRE(submit(*boss, kJob, job).ok());
  CHECK(job.job_id() == "job-1");
  CHECK(job.name() == "mnist-like");
  CHECK(job.state() == "queued");
  CHECK(job.num_rounds() == 2);
  CHECK(job.submitted_by() == "boss@org.com");
  CHECK(job.waiting_for() == "site-1 is not online");
  REQUIRE(job.sites_size() == 2);
  CHECK(job.sites(1) == "site-2");
  // The folder holds the resolved job, owner-only.
  const deploy::JobFolder folder(d.jobs_dir / "job-1");
  CHECK(std::filesystem::status(folder.root()).permissions() == std::filesystem::perms::owner_all);
  const auto stored = jobspec::load_job(folder.job_file());
  CHECK(stored.num_rounds == 2);
  CHECK(stored.data_dir == "/data/here");

  v1::JobList jobs;
  REQUIRE(list(*boss, jobs).ok());
  REQUIRE(jobs.jobs_size() == 1);
  CHECK(jobs.jobs(0).job_id() == "job-1");
  const auto submitted = d.audit_lines("job_submitted");
  REQUIRE(submitted.size() == 1);
  CHECK(submitted[0]["identity"] == "admin/boss@org.com");
  CHECK(submitted[0]["job"] == "job-1");
}

TEST_CASE("a job spec that does not load is refused with its file, key and expectation") {
  Deployment d;
  auto boss = d.admin_as("boss@org.com");
  v1::JobSummary job;
  const auto status = submit(*boss, "[job]\nnum_rounds = 'many'\n", job);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("mnist.toml") != std::string::npos);
  CHECK(status.error_message().find("job.num_rounds") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d.jobs_dir / "job-1"));
  CHECK(d.audit_lines("request_refused").size() == 1);
}

TEST_CASE("a job naming a site outside the project, or an aggregator not installed, is refused") {
  Deployment d;
  auto boss = d.admin_as("boss@org.com");
  v1::JobSummary job;
  auto status = submit(*boss, kJob + "[sites.site-3]\ndevices = 1\n", job);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  std::string three_sites = kJob;
  three_sites.replace(three_sites.find("count = 2"), 9, "count = 3");
  status = submit(*boss, three_sites, job);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("site 'site-3', which is not a site of this project "
                                    "(site-1, site-2)") != std::string::npos);
  std::string missing = kJob;
  missing.replace(missing.find("path = "), 7, "path = \"/nowhere/libx.so\" #");
  status = submit(*boss, missing, job);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("aggregator") != std::string::npos);
}

TEST_CASE("roles: a site may not administer, a member only lists, a lead acts on its own jobs") {
  Deployment d;
  v1::JobSummary job;
  auto as_site = v1::Admin::NewStub(d.channel(d.as(identity::Role::site, "site-1")));
  auto status = submit(*as_site, kJob, job);
  CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(status.error_message() == "only an admin may call SubmitJob; the caller is site/site-1");

  auto stranger = d.admin_as("stranger@org.com");
  CHECK(submit(*stranger, kJob, job).error_code() == grpc::StatusCode::PERMISSION_DENIED);

  auto member = d.admin_as("member@org.com");
  CHECK(submit(*member, kJob, job).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  auto lead = d.admin_as("lead@org.com");
  REQUIRE(submit(*lead, kJob, job).ok());
  v1::JobList jobs;
  CHECK(list(*member, jobs).ok());
  CHECK(abort_job(*member, job.job_id()).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  auto other_lead = d.admin_as("other-lead@org.com");
  status = abort_job(*other_lead, job.job_id());
  CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(status.error_message() == "role lead may only act on its own jobs");
  CHECK(abort_job(*lead, job.job_id()).ok());
  REQUIRE(list(*member, jobs, job.job_id()).ok());
  CHECK(jobs.jobs(0).state() == "aborted");
  CHECK(jobs.jobs(0).failure() == "aborted by admin lead@org.com");
  // Aborting again: the job has ended.
  CHECK(abort_job(*lead, job.job_id()).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(abort_job(*lead, "job-42").error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(d.audit_lines("request_refused").size() == 5);
  CHECK(d.audit_lines("job_aborted").size() == 1);
}

TEST_CASE("a model downloads byte for byte; a model that is not there is NOT_FOUND") {
  Deployment d;
  auto boss = d.admin_as("boss@org.com");
  v1::JobSummary job;
  REQUIRE(submit(*boss, kJob, job).ok());
  auto [status, bytes] = download(*boss, job.job_id(), "final");
  CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);

  // 9 MiB + 3 bytes: three parts, the last a short one.
  std::string model((9 << 20) + 3, '\0');
  std::mt19937 random(7);
  for (auto& c : model) c = static_cast<char>(random());
  const deploy::JobFolder folder(d.jobs_dir / job.job_id());
  std::filesystem::create_directories(folder.models_dir());
  std::ofstream(folder.models_dir() / "global_round_1.safetensors") << "older";
  std::ofstream(folder.models_dir() / "global_round_2.safetensors", std::ios::binary) << model;
  std::tie(status, bytes) = download(*boss, job.job_id(), "final");
  REQUIRE(status.ok());
  CHECK(bytes == model);
  std::tie(status, bytes) = download(*boss, job.job_id(), "1");
  REQUIRE(status.ok());
  CHECK(bytes == "older");
  CHECK(download(*boss, job.job_id(), "best").first.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(download(*boss, job.job_id(), "../x").first.error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(d.audit_lines("model_downloaded").size() == 2);
}

TEST_CASE("a site asks for jobs as itself only, and is offered a running job once") {
  Deployment d;
  auto boss = d.admin_as("boss@org.com");
  v1::JobSummary job;
  REQUIRE(submit(*boss, kJob, job).ok());
  auto site = [&](identity::Role role, const std::string& name) {
    return v1::JobDesk::NewStub(d.channel(d.as(role, name)));
  };
  auto next_job = [](v1::JobDesk::Stub& desk, v1::JobOffer& offer) {
    grpc::ClientContext context;
    v1::JobPoll poll;
    return desk.NextJob(&context, poll, &offer);
  };
  v1::JobOffer offer;
  CHECK(next_job(*site(identity::Role::admin, "boss@org.com"), offer).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  CHECK(next_job(*site(identity::Role::site, "site-9"), offer).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  auto one = site(identity::Role::site, "site-1");
  auto two = site(identity::Role::site, "site-2");
  REQUIRE(next_job(*one, offer).ok());
  CHECK(offer.job_id().empty());
  REQUIRE(next_job(*two, offer).ok());
  const auto start = d.table.next_to_start();
  REQUIRE(start);
  d.table.started(start->id, 8123);
  REQUIRE(next_job(*one, offer).ok());
  CHECK(offer.job_id() == job.job_id());
  CHECK(offer.port() == 8123);
  CHECK(jobspec::load_job_text(offer.job_toml(), "offer.toml").num_rounds == 2);
  REQUIRE(next_job(*one, offer).ok());
  CHECK(offer.job_id().empty());
}
