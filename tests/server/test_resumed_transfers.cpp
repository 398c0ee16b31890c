// Model transfers cut mid-way by a real connection reset (a TCP proxy
// between the site's ServerConnection and the real gRPC service) resume from
// the last acknowledged part: the aggregate or the received model is bit for
// bit what an uncut transfer gives, and what is sent after the cut is about
// the rest, not the whole model again. A cut upload the site does not resume
// within the grace period is taken back; one the server no longer holds is
// sent again from the start.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>

#include "controller_job.hpp"
#include "cutting_proxy.hpp"
#include "server/rpc_service.hpp"
#include "storage/safetensors.hpp"
#include "transport/model_stream.hpp"
#include "transport/server_connection.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using namespace std::chrono_literals;
using testing::CuttingProxy;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// 32 MiB in two tensors: 10 parts (2 headers, 8 data parts of 4 MiB).
constexpr uint64_t kModelBytes = 32 * kMiB;

// A model of random float32 values (bit patterns a cut or a misplaced part
// would change), tensors "a" (20 MiB) and "b" (12 MiB).
std::vector<tensor::OwnedTensor> random_model(uint32_t seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> value(-1, 1);
  std::vector<tensor::OwnedTensor> model;
  for (auto [name, mib] : {std::pair{"a", 20}, std::pair{"b", 12}}) {
    const int64_t n = static_cast<int64_t>(mib * kMiB / sizeof(float));
    tensor::OwnedTensor t{name, {kDLFloat, 32, 1}, {n}, {}};
    t.data.resize(n * sizeof(float));
    auto* values = reinterpret_cast<float*>(t.data.data());
    for (int64_t i = 0; i < n; ++i) values[i] = value(random);
    model.push_back(std::move(t));
  }
  return model;
}

std::shared_ptr<spdlog::logger> logger_to(std::ostringstream& out, const std::string& name) {
  return std::make_shared<spdlog::logger>(name,
                                          std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
}

// A served one-round job whose sites talk to the server through a proxy
// that cuts; logs of the server and of each site are kept.
struct CutJob : testing::ControllerJob {
  CutJob(std::vector<std::string> sites, std::chrono::milliseconds grace,
         std::chrono::milliseconds site_answer_timeout = 10s)
      : ControllerJob(sites, 1), service(controller, logger_to(server_log, "server"),
                                         v1::RAW, {}, grace) {
    for (const auto& s : sites) {
      connections.push_back(std::make_unique<transport::ServerConnection>(
          proxy.address(), s, site_answer_timeout));
      connections.back()->set_log(logger_to(site_log, s));
    }
  }
  std::ostringstream server_log, site_log;
  server::RpcService service;
  server::RpcServer rpc{service, "127.0.0.1", 0};
  CuttingProxy proxy{rpc.bound_port()};
  std::vector<std::unique_ptr<transport::ServerConnection>> connections;

  // Every site registered; the first sent `initial`; each took its task.
  void start(std::vector<tensor::OwnedTensor>& initial) {
    for (auto& c : connections) c->register_site(1);
    REQUIRE(connections[0]->next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
    connections[0]->submit_initial_model(tensor::views_of(initial));
  }
  static void send(transport::ServerConnection& site, std::vector<tensor::OwnedTensor>& w) {
    v1::UpdateHeader header;
    header.set_round(0);
    header.set_num_samples(10);
    site.submit_update(header, tensor::views_of(w), {});
  }
  std::vector<tensor::OwnedTensor> aggregate() {
    return storage::load_safetensors(models.global_path(1)).tensors;
  }
};

// The aggregate of `updates` (in order) sent whole, without gRPC: what an
// uncut upload gives.
std::vector<tensor::OwnedTensor> uncut_aggregate(
    const std::vector<tensor::OwnedTensor>& initial,
    const std::vector<std::vector<tensor::OwnedTensor>>& updates) {
  std::vector<std::string> sites;
  for (size_t i = 0; i < updates.size(); ++i) sites.push_back("s" + std::to_string(i + 1));
  testing::ControllerJob job(sites, 1);
  for (const auto& s : sites) job.join(s);
  REQUIRE(job.task(sites[0]).kind == server::TaskKind::SendInitialModel);
  job.controller.accept_initial_model({.site = sites[0], .weights = initial});
  for (const auto& s : sites) REQUIRE(job.task(s).kind == server::TaskKind::Train);
  for (size_t i = 0; i < updates.size(); ++i) {
    job.controller.accept_update(
        {.site = sites[i], .round = 0, .weights = updates[i], .num_samples = 10, .num_steps = 1});
  }
  return storage::load_safetensors(job.models.global_path(1)).tensors;
}

void check_same(const std::vector<tensor::OwnedTensor>& got,
                const std::vector<tensor::OwnedTensor>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].name == expected[i].name);
    CHECK(got[i].shape == expected[i].shape);
    CHECK_MESSAGE(got[i].data == expected[i].data, "tensor ", got[i].name, " differs");
  }
}

}  // namespace

TEST_CASE("an upload cut at 75% resumes after the last part the server acknowledged") {
  CutJob job({"s1"}, 10s);
  auto initial = random_model(1), update = random_model(2);
  job.start(initial);
  REQUIRE(job.connections[0]->next_task().task.kind() == v1::Task::TRAIN);

  job.proxy.cut_after(CuttingProxy::kToServer, kModelBytes * 3 / 4);
  CutJob::send(*job.connections[0], update);

  REQUIRE(job.proxy.has_cut());
  check_same(job.aggregate(), uncut_aggregate(initial, {update}));
  // Starting over would send 24 + 32 MiB; resuming sends the 8 MiB left,
  // what was in flight at the cut (a few parts at most) and no more.
  const uint64_t sent = job.proxy.bytes_since_armed(CuttingProxy::kToServer);
  INFO("bytes sent after arming: ", sent);
  CHECK(sent < kModelBytes + 12 * kMiB);
  CHECK(job.site_log.str().find("resumed upload ") != std::string::npos);
  CHECK(job.server_log.str().find("resumed upload ") != std::string::npos);
  CHECK(job.server_log.str().find(" of 10") != std::string::npos);
}

TEST_CASE("a task download cut at 75% resumes and keeps the tensors received") {
  CutJob job({"s1"}, 10s);
  auto initial = random_model(3);
  job.start(initial);

  job.proxy.cut_after(CuttingProxy::kToSite, kModelBytes * 3 / 4);
  const auto task = job.connections[0]->next_task();

  REQUIRE(job.proxy.has_cut());
  REQUIRE(task.task.kind() == v1::Task::TRAIN);
  check_same(task.model, initial);
  const uint64_t received = job.proxy.bytes_since_armed(CuttingProxy::kToSite);
  INFO("bytes received after arming: ", received);
  CHECK(received < kModelBytes + 12 * kMiB);
  CHECK(job.site_log.str().find("resuming the download of round 1 at part") != std::string::npos);
  CHECK(job.server_log.str().find("resumed download of round 1 to 's1' at part") !=
        std::string::npos);
}

TEST_CASE("a cut upload not resumed within the grace period is taken back") {
  // s1's site gives up after 1 s (its answer timeout) while the proxy refuses
  // it for 3 s; the server holds the cut upload 300 ms.
  CutJob job({"s1", "s2"}, 300ms, 1s);
  auto initial = random_model(4), first = random_model(5), second = random_model(6);
  job.start(initial);
  for (auto& c : job.connections) REQUIRE(c->next_task().task.kind() == v1::Task::TRAIN);

  job.proxy.cut_after(CuttingProxy::kToServer, kModelBytes / 2, 3s);
  CHECK_THROWS_AS(CutJob::send(*job.connections[0], first),
                  transport::ServerUnreachableError);
  // The server took back the half it had folded when the grace period ended,
  // not at the round's close.
  for (int i = 0; i < 100 && job.server_log.str().find("taken back") == std::string::npos; ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(job.server_log.str().find("was not resumed within 300 ms: taken back") !=
        std::string::npos);

  std::this_thread::sleep_for(3s);  // the blackout ends: s1 sends again, whole
  job.connections[0]->wait_until_reachable(10s);
  CutJob::send(*job.connections[0], first);
  CutJob::send(*job.connections[1], second);
  check_same(job.aggregate(), uncut_aggregate(initial, {first, second}));
}

TEST_CASE("a resume of an upload the server no longer holds starts over") {
  // The proxy refuses the site for 1 s after the cut, the server holds a cut
  // upload 200 ms: when the site asks, the upload is gone.
  CutJob job({"s1"}, 200ms, 10s);
  auto initial = random_model(7), update = random_model(8);
  job.start(initial);
  REQUIRE(job.connections[0]->next_task().task.kind() == v1::Task::TRAIN);

  job.proxy.cut_after(CuttingProxy::kToServer, kModelBytes / 2, 1s);
  CutJob::send(*job.connections[0], update);

  check_same(job.aggregate(), uncut_aggregate(initial, {update}));
  CHECK(job.proxy.bytes_since_armed(CuttingProxy::kToServer) >= kModelBytes * 3 / 2);
  CHECK(job.site_log.str().find("is not held by the server") != std::string::npos);
}

TEST_CASE("a resumed stream naming an upload the server does not hold is refused as such") {
  testing::ControllerJob job({"s1"}, 1);
  server::RpcService service{job.controller};
  server::RpcServer rpc{service, "127.0.0.1", 0};
  auto stub = v1::FlareServer::NewStub(grpc::CreateCustomChannel(
      rpc.address(), grpc::InsecureChannelCredentials(), transport::channel_arguments(30s)));
  job.start({"s1"});

  v1::UploadQuery query;
  query.set_site("s1");
  query.set_upload_id("0123456789abcdef0123456789abcdef");
  v1::UploadState state;
  grpc::ClientContext status_context;
  REQUIRE(stub->UploadStatus(&status_context, query, &state).ok());
  CHECK_FALSE(state.parked());

  v1::Ack ack;
  grpc::ClientContext context;
  auto writer = stub->SubmitUpdate(&context, &ack);
  v1::UploadPart resume;
  resume.mutable_resume()->set_site("s1");
  resume.mutable_resume()->set_upload_id(query.upload_id());
  resume.mutable_resume()->set_from_part(3);
  writer->Write(resume);
  writer->WritesDone();
  const auto status = writer->Finish();
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(status.error_message().find("is not held here") != std::string::npos);
}
