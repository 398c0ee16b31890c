// What a cut at half of a 64 MiB model costs: the bytes sent after the cut
// and the transfer's time, for an upload resumed from the last acknowledged
// part against one started over (the server let the cut upload go: the
// grace period was 1 ms), and for a resumed download. The real RpcService,
// Controller and fedavg on loopback, the cut a real reset from the tests'
// proxy (tests/support/cutting_proxy.hpp).
//   build/bin/flare-bench-transfers
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#include <spdlog/sinks/null_sink.h>

#include "controller_job.hpp"
#include "cutting_proxy.hpp"
#include "server/rpc_service.hpp"
#include "transport/server_connection.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using namespace std::chrono_literals;
using testing::CuttingProxy;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kModelBytes = 64 * kMiB;

std::vector<tensor::OwnedTensor> model(float value) {
  std::vector<tensor::OwnedTensor> tensors;
  for (int i = 0; i < 4; ++i) {
    const int64_t n = static_cast<int64_t>(kModelBytes / 4 / sizeof(float));
    tensor::OwnedTensor t{"t" + std::to_string(i), {kDLFloat, 32, 1}, {n}, {}};
    t.data.resize(n * sizeof(float));
    auto* v = reinterpret_cast<float*>(t.data.data());
    std::fill(v, v + n, value);
    tensors.push_back(std::move(t));
  }
  return tensors;
}

struct Figures {
  double after_cut_mib;
  double seconds;
};

enum class Transfer { Upload, Download };

Figures cut_at_half(Transfer transfer, std::chrono::milliseconds grace,
                    std::chrono::milliseconds blackout) {
  testing::ControllerJob job({"s1"}, 1);
  auto quiet = std::make_shared<spdlog::logger>("quiet",
                                                std::make_shared<spdlog::sinks::null_sink_mt>());
  server::RpcService service(job.controller, quiet, v1::RAW, {}, grace);
  server::RpcServer rpc(service, "127.0.0.1", 0);
  CuttingProxy proxy(rpc.bound_port());
  transport::ServerConnection site(proxy.address(), "s1", 30s);
  site.set_log(quiet);
  site.register_site(1);
  REQUIRE(site.next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
  auto initial = model(1), update = model(2);
  site.submit_initial_model(tensor::views_of(initial));
  const auto direction = transfer == Transfer::Upload ? CuttingProxy::kToServer
                                                      : CuttingProxy::kToSite;
  if (transfer == Transfer::Upload) REQUIRE(site.next_task().task.kind() == v1::Task::TRAIN);
  proxy.cut_after(direction, kModelBytes / 2, blackout);
  const auto start = std::chrono::steady_clock::now();
  if (transfer == Transfer::Upload) {
    v1::UpdateHeader header;
    header.set_round(0);
    header.set_num_samples(1);
    site.submit_update(header, tensor::views_of(update), {});
  } else {
    REQUIRE(site.next_task().model.size() == initial.size());
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  REQUIRE(proxy.has_cut());
  const double after_cut =
      static_cast<double>(proxy.bytes_since_armed(direction) - kModelBytes / 2) / kMiB;
  return {after_cut, took.count()};
}

}  // namespace

TEST_CASE("bytes sent after a cut at half of a 64 MiB model") {
  const auto resumed_up = cut_at_half(Transfer::Upload, 30s, 0ms);
  const auto restarted_up = cut_at_half(Transfer::Upload, 1ms, 300ms);
  const auto resumed_down = cut_at_half(Transfer::Download, 30s, 0ms);
  std::printf("| transfer | MiB sent after the cut (the rest: 32) | seconds |\n");
  std::printf("| --- | --- | --- |\n");
  std::printf("| upload, resumed | %.1f | %.2f |\n", resumed_up.after_cut_mib,
              resumed_up.seconds);
  std::printf("| upload, started over | %.1f | %.2f |\n", restarted_up.after_cut_mib,
              restarted_up.seconds);
  std::printf("| download, resumed | %.1f | %.2f |\n", resumed_down.after_cut_mib,
              resumed_down.seconds);
}
