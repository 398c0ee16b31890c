// flare-admin as a program, against a fake Admin service on loopback with
// mutual TLS from a provisioned project: each command's output and exit code.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>

#include "common/child_process.hpp"
#include "deployment_doubles.hpp"
#include "transport/deploy.grpc.pb.h"
#include "identity/certificate_authority.hpp"

using namespace flare::testing;
namespace fs = std::filesystem;
namespace v1 = flare::deploy::v1;
using namespace std::chrono_literals;

namespace {

v1::JobSummary summary(const std::string& id, const std::string& state, int64_t done = 0) {
  v1::JobSummary job;
  job.set_job_id(id);
  job.set_name("tiny");
  job.set_state(state);
  job.set_rounds_done(done);
  job.set_num_rounds(5);
  job.add_sites("site-1");
  job.set_submitted_by("admin@org.com");
  job.set_submitted_at(1700000000);
  return job;
}

// A model with every byte value, zeros and escapes included.
std::string model_bytes() {
  std::string bytes(100000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7 + i / 256) % 256);
  return bytes;
}

// Jobs: j1 finished; j2 queued; j3 runs, then fails on the next look; j9 is
// what a submission creates and finishes on the third look.
class FakeAdmin final : public v1::Admin::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::JobSubmission* request,
                         v1::JobSummary* reply) override {
    std::lock_guard lock(mutex_);
    callers_.push_back(caller_name(*context));
    if (request->file_name() == "bad.toml")
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "bad.toml:2: job.num_rounds: expected an integer\x1b[2J, found a string"};
    submitted_ = request->job_toml();
    *reply = summary("j9", "queued");
    return grpc::Status::OK;
  }
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::JobRef* request,
                        v1::JobList* reply) override {
    std::lock_guard lock(mutex_);
    callers_.push_back(caller_name(*context));
    const int look = ++looks_[request->job_id()];
    auto j3 = look >= 2 ? summary("j3", "failed", 2) : summary("j3", "running", 2);
    if (look >= 2) j3.set_failure("site-1 stopped answering");
    auto j9 = summary("j9", look >= 3 ? "finished" : look == 2 ? "running" : "queued",
                      look >= 3 ? 5 : 0);
    auto j2 = summary("j2", "queued");
    j2.set_waiting_for("site-1 is offline");
    for (const auto& job : {summary("j1", "finished", 5), j2, j3, j9})
      if (request->job_id().empty() || request->job_id() == job.job_id())
        *reply->add_jobs() = job;
    return grpc::Status::OK;
  }
  grpc::Status AbortJob(grpc::ServerContext*, const v1::JobRef* request,
                        v1::JobSummary* reply) override {
    if (request->job_id() == "j1")
      return {grpc::StatusCode::FAILED_PRECONDITION, "job j1 has already finished"};
    *reply = summary(request->job_id(), "aborted");
    return grpc::Status::OK;
  }
  grpc::Status GetMetrics(grpc::ServerContext*, const v1::JobRef* request,
                          grpc::ServerWriter<v1::FileChunk>* writer) override {
    if (request->job_id() != "j1") return {grpc::StatusCode::NOT_FOUND, "no job " + request->job_id()};
    return send(writer, "metrics.jsonl", kMetrics, kMetrics.size());
  }
  grpc::Status DownloadModel(grpc::ServerContext*, const v1::ModelRequest* request,
                             grpc::ServerWriter<v1::FileChunk>* writer) override {
    {
      std::lock_guard lock(mutex_);
      asked_for_ = request->which();
    }
    const auto bytes = model_bytes();
    if (request->job_id() == "cut")  // announces it all, sends half
      return send(writer, "best.safetensors", bytes.substr(0, bytes.size() / 2), bytes.size());
    if (request->which() == "7") return {grpc::StatusCode::NOT_FOUND, "round 7 was not kept"};
    return send(writer, "best.safetensors", bytes, bytes.size());
  }

  std::string submitted() { std::lock_guard lock(mutex_); return submitted_; }
  std::string asked_for() { std::lock_guard lock(mutex_); return asked_for_; }
  std::vector<std::string> callers() { std::lock_guard lock(mutex_); return callers_; }

  static inline const std::string kMetrics =
      "{\"kind\":\"global\",\"round\":1,\"val_acc\":0.5}\n{\"kind\":\"job\",\"status\":\"succeeded\"}\n";

 private:
  static grpc::Status send(grpc::ServerWriter<v1::FileChunk>* writer, const std::string& name,
                           const std::string& bytes, std::size_t total) {
    constexpr std::size_t kPart = 16384;
    for (std::size_t at = 0; at == 0 || at < bytes.size(); at += kPart) {
      v1::FileChunk chunk;
      if (at == 0) {
        chunk.set_name(name);
        chunk.set_total_bytes(total);
      }
      chunk.set_data(bytes.substr(at, kPart));
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }

  std::mutex mutex_;
  std::map<std::string, int> looks_;
  std::string submitted_, asked_for_;
  std::vector<std::string> callers_;
};

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome run_admin(const ProvisionedProject& project, const std::vector<std::string>& words,
                  const std::string& startup_name = "admin@org.com") {
  std::vector<std::string> argv{FLARE_ADMIN_BIN, "--startup",
                                project.startup(startup_name).string()};
  argv.insert(argv.end(), words.begin(), words.end());
  const auto out = project.root() / "admin.out";
  fs::remove(out);
  flare::common::ChildProcess admin(argv, out);
  const auto status = admin.wait_for(30s);
  return {status && status->exit_code ? *status->exit_code : -1, read_bytes(out)};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Fixture {
  ProvisionedProject project;
  FakeAdmin admin;
  TlsTestServer server{project.server_startup(), project.port(), {&admin}};
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "submit sends the file and prints the job id") {
  write_bytes(project.root() / "job.toml", "[job]\nname = \"tiny\"\n");
  const auto outcome = run_admin(project, {"submit", (project.root() / "job.toml").string()});
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.output == "submitted job j9 (tiny): queued\n");
  CHECK(admin.submitted() == "[job]\nname = \"tiny\"\n");
  CHECK(admin.callers() == std::vector<std::string>{"admin@org.com"});
}

TEST_CASE_FIXTURE(Fixture, "a refused submission prints the server's reason, made printable, exit 1") {
  write_bytes(project.root() / "bad.toml", "x");
  const auto outcome = run_admin(project, {"submit", (project.root() / "bad.toml").string()});
  CHECK(outcome.exit_code == 1);
  CHECK(has(outcome.output, "INVALID_ARGUMENT: bad.toml:2: job.num_rounds: expected an integer"));
  CHECK(has(outcome.output, "\\x1b[2J"));
  CHECK_FALSE(has(outcome.output, "\x1b"));
}

TEST_CASE_FIXTURE(Fixture, "submit --wait follows the job to its end") {
  write_bytes(project.root() / "job.toml", "[job]\n");
  const auto outcome =
      run_admin(project, {"submit", (project.root() / "job.toml").string(), "--wait"});
  CHECK(outcome.exit_code == 0);
  CHECK(has(outcome.output, "job j9: running\njob j9: finished\nrounds: 5 of 5\n"));
}

TEST_CASE_FIXTURE(Fixture, "list prints every job as a table") {
  const auto outcome = run_admin(project, {"list"});
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.output ==
        "ID  NAME  STATE     ROUNDS  SITES\n"
        "j1  tiny  finished  5/5     site-1\n"
        "j2  tiny  queued    0/5     site-1\n"
        "j3  tiny  running   2/5     site-1\n"
        "j9  tiny  queued    0/5     site-1\n");
}

TEST_CASE_FIXTURE(Fixture, "status shows one job's fields; an unknown job exits 1") {
  const auto queued = run_admin(project, {"status", "j2"});
  CHECK(queued.exit_code == 0);
  CHECK(has(queued.output, "state:        queued\n"));
  CHECK(has(queued.output, "waiting for:  site-1 is offline\n"));
  const auto unknown = run_admin(project, {"status", "nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(has(unknown.output, "knows no job nope"));
}

TEST_CASE_FIXTURE(Fixture, "wait exits 0 for a finished job, 1 for a failed one with its reason") {
  CHECK(run_admin(project, {"wait", "j1"}).exit_code == 0);
  const auto failed = run_admin(project, {"wait", "j3"});
  CHECK(failed.exit_code == 1);
  CHECK(has(failed.output, "job j3: running\njob j3: failed\nfailure: site-1 stopped answering\n"));
}

TEST_CASE_FIXTURE(Fixture, "wait --timeout gives up on a job that stays queued, exit 1") {
  const auto outcome = run_admin(project, {"wait", "j2", "--timeout", "0.5"});
  CHECK(outcome.exit_code == 1);
  CHECK(has(outcome.output, "job j2 is still queued after 0.5 s"));
}

TEST_CASE_FIXTURE(Fixture, "abort prints the job's new state; a refused abort prints why, exit 1") {
  const auto accepted = run_admin(project, {"abort", "j2"});
  CHECK(accepted.exit_code == 0);
  CHECK(accepted.output == "job j2: aborted\n");
  const auto refused = run_admin(project, {"abort", "j1"});
  CHECK(refused.exit_code == 1);
  CHECK(has(refused.output, "FAILED_PRECONDITION: job j1 has already finished"));
}

TEST_CASE_FIXTURE(Fixture, "metrics go to stdout, or exactly to --out") {
  const auto printed = run_admin(project, {"metrics", "j1"});
  CHECK(printed.exit_code == 0);
  CHECK(printed.output == FakeAdmin::kMetrics);
  const auto file = project.root() / "metrics.jsonl";
  CHECK(run_admin(project, {"metrics", "j1", "--out", file.string()}).exit_code == 0);
  CHECK(read_bytes(file) == FakeAdmin::kMetrics);
  CHECK(run_admin(project, {"metrics", "nope"}).exit_code == 1);
}

TEST_CASE_FIXTURE(Fixture, "download writes the model's bytes exactly, owner-only") {
  const auto file = project.root() / "best.safetensors";
  const auto outcome = run_admin(project, {"download", "j1", "--model", "best", "--out", file.string()});
  CHECK(outcome.exit_code == 0);
  CHECK(admin.asked_for() == "best");
  CHECK(read_bytes(file) == model_bytes());
  struct stat info {};
  REQUIRE(::stat(file.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE_FIXTURE(Fixture, "a cut download or a missing model leaves no file") {
  const auto file = project.root() / "model.safetensors";
  const auto cut = run_admin(project, {"download", "cut", "--out", file.string()});
  CHECK(cut.exit_code == 1);
  CHECK(has(cut.output, "ended after 50000 of 100000 bytes"));
  CHECK_FALSE(fs::exists(file));
  const auto missing = run_admin(project, {"download", "j1", "--model", "7", "--out", file.string()});
  CHECK(missing.exit_code == 1);
  CHECK(has(missing.output, "NOT_FOUND: round 7 was not kept"));
  CHECK_FALSE(fs::exists(file));
  for (const auto& entry : fs::directory_iterator(project.root()))  // no temp file left either
    CHECK(entry.path().filename().string().find("model.safetensors") == std::string::npos);
}

TEST_CASE("a site's provisioned certificate shown on the server's port is refused") {
  ProvisionedProject project;
  FakeAdmin admin;
  // A valid certificate of the same CA, but a site's.
  TlsTestServer impostor(project.startup("site-1"), project.port(), {&admin});
  const auto outcome = run_admin(project, {"list"});
  CHECK(outcome.exit_code == 1);
  CHECK(has(outcome.output, "UNAVAILABLE"));
  CHECK(has(outcome.output, "flare://server/"));
  CHECK(admin.callers().empty());
}

// A certificate of `ca` for `id` with extendedKeyUsage serverAuth whatever
// its role (no provisioning issues one to a site): made with openssl's CLI.
flare::identity::IssuedCertificate issue_server_auth(const flare::identity::CertificateAuthority& ca,
                                                     const flare::identity::Identity& id,
                                                     const fs::path& dir) {
  fs::create_directories(dir);
  write_bytes(dir / "ca.crt", ca.certificate_pem());
  write_bytes(dir / "ca.key", ca.private_key_pem());
  write_bytes(dir / "ext", "subjectAltName=URI:" + flare::identity::identity_uri(id) +
                               "\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature"
                               "\nbasicConstraints=critical,CA:FALSE\n");
  const std::string d = dir.string();
  const std::string script =
      "cd '" + d + "' && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem "
      "&& openssl req -new -key k.pem -subj '/CN=" + id.name + "' -out r.csr "
      "&& openssl x509 -req -in r.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -sha256 "
      "-extfile ext -out c.pem 2>/dev/null";
  REQUIRE(std::system(script.c_str()) == 0);
  return {read_bytes(dir / "c.pem"), read_bytes(dir / "k.pem")};
}

// A startup folder holding `issued` as `id`.
fs::path write_kit(const fs::path& dir, const flare::identity::CertificateAuthority& ca,
                   const flare::identity::IssuedCertificate& issued, flare::identity::Identity id,
                   int port) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  write_bytes(dir / "ca.crt", ca.certificate_pem());
  write_bytes(dir / "crl.pem", ca.revocation_list_pem({}, std::time(nullptr)));  // a server's folder holds one
  write_bytes(dir / "participant.crt", issued.certificate_pem);
  write_bytes(dir / "participant.key", issued.private_key_pem);
  fs::permissions(dir / "participant.key", fs::perms::owner_read | fs::perms::owner_write);
  flare::identity::LocalConfig config;
  config.project = "proj";
  config.self = std::move(id);
  config.server_host = "127.0.0.1";
  config.server_port = static_cast<std::uint16_t>(port);
  write_bytes(dir / "local.toml", flare::identity::render_local_config(config));
  return dir;
}

TEST_CASE("the same certificate with a site's identity instead of the server's is refused") {
  TempFolder root;
  const int port = flare::common::free_tcp_port();
  const auto ca = flare::identity::CertificateAuthority::create(
      "proj", flare::identity::validity_from(std::time(nullptr) - 60, 2));
  using flare::identity::Role;
  const flare::identity::Identity admin_id{Role::admin, "admin@org.com"};
  const auto admin_kit = write_kit(
      root / "admin", ca,
      ca.issue({.identity = admin_id,
                .validity = flare::identity::validity_from(std::time(nullptr) - 60, 1)}),
      admin_id, port);
  const auto list = [&] {
    const auto out = root / "out";
    flare::common::ChildProcess admin({FLARE_ADMIN_BIN, "--startup", admin_kit.string(), "list"}, out);
    const auto status = admin.wait_for(30s);
    return Outcome{status && status->exit_code ? *status->exit_code : -1, read_bytes(out)};
  };
  for (const auto& [role, name] : {std::pair{Role::server, std::string("127.0.0.1")},
                                     std::pair{Role::site, std::string("site-1")}}) {
    CAPTURE(name);
    // Both serverAuth, both of the project's CA: only the identity differs.
    const auto kit = write_kit(root / name, ca,
                               issue_server_auth(ca, {role, name}, root / ("issue-" + name)),
                               {role, name}, port);
    FakeAdmin admin;
    TlsTestServer server(kit, port, {&admin});
    const auto outcome = list();
    if (role == Role::server) {
      CHECK(outcome.exit_code == 0);
      CHECK(admin.callers() == std::vector<std::string>{"admin@org.com"});
    } else {
      CHECK(outcome.exit_code == 1);
      CHECK(has(outcome.output, "flare://server/"));
      CHECK(admin.callers().empty());
    }
  }
}

TEST_CASE("a site's startup folder, a missing one and a bad command line exit 2, saying why") {
  ProvisionedProject project;
  const auto site = run_admin(project, {"list"}, "site-1");
  CHECK(site.exit_code == 2);
  CHECK(has(site.output, "needs the startup folder of an admin"));
  CHECK(has(site.output, "flare://site/site-1"));
  const auto missing = run_admin(project, {"list"}, "nobody");
  CHECK(missing.exit_code == 2);
  CHECK(has(missing.output, "local.toml"));
  CHECK(run_admin(project, {}).exit_code == 2);
  CHECK(has(run_admin(project, {"download", "j1"}).output, "download needs --out FILE"));
  CHECK(run_admin(project, {"download", "j1", "--model", "latest", "--out", "x"}).exit_code == 2);
  CHECK(run_admin(project, {"list", "j1"}).exit_code == 2);
}
