// One rank of a DDP benchmark (bench/ddp/run.sh starts one process per rank).
//   trainer: the cifar10 plugin through the real host services, as flare-worker
//            runs it; prints the timed round's images/s (all ranks).
//   comm:    LitNet or a 25M-parameter MLP under the SDK's DataParallel; prints
//            ms per step with gradient reduction, without it (no_sync), and of
//            the all-reduce of all buckets on its own.
#include <flare/plugin.hpp>
#include <flare/torch/data_parallel.hpp>

#include "plugin_host/host_services.hpp"
#include "collectives/process_group_collectives.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
  return args;
}

// transport: "shm" (the default on one host) or "gloo" (the Gloo mesh and
// ProcessGroupGloo, as before shared memory).
std::unique_ptr<flare::host::Collectives> form_group(int rank, int world, int port,
                                                     const std::string& transport) {
  if (world == 1) return std::make_unique<flare::host::SingleRankCollectives>();
  flare::collectives::ProcessGroupOptions options;
  options.master_port = port;
  options.rank = rank;
  options.world_size = world;
  options.shared_memory = transport != "gloo";
  return std::make_unique<flare::collectives::ProcessGroupCollectives>(options);
}

std::string transport_of(const std::map<std::string, std::string>& a) {
  return a.count("transport") ? a.at("transport") : "shm";
}

void check(const flare_host_services* host, flare_error* error) {
  if (!error) return;
  const std::string message = host->error_message(error);
  host->error_release(error);
  throw std::runtime_error(message);
}

int run_trainer(const std::map<std::string, std::string>& a, int rank, int world, int port) {
  void* library = ::dlopen(a.at("plugin").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) throw std::runtime_error(::dlerror());
  auto entry = reinterpret_cast<flare_plugin_entry_fn>(::dlsym(library, FLARE_PLUGIN_ENTRY_SYMBOL));
  const auto& api = *static_cast<const flare_trainer_api_v1*>(entry(FLARE_ABI_VERSION_MAJOR)->api);
  auto group = form_group(rank, world, port, transport_of(a));
  flare::host::HostServices services({.log = [](flare_log_level, std::string_view) {}},
                                     group.get());
  const std::string data = a.at("data");
  flare_worker_info worker{};
  worker.struct_size = sizeof(worker);
  worker.site_name = "bench";
  worker.num_sites = 1;
  worker.rank = rank;
  worker.world_size = world;
  worker.local_rank = rank;
  worker.local_world_size = world;
  worker.device = {kDLCPU, 0};
  worker.num_threads = 1;
  worker.data_dir = data.c_str();
  worker.work_dir = data.c_str();
  const std::string config = "{\"max_train\": " + a.at("max_train") + "}";
  flare_trainer* trainer = nullptr;
  const auto* host = services.table();
  check(host, api.create(config.c_str(), &worker, host, &trainer));
  const int rounds = std::stoi(a.count("rounds") ? a.at("rounds") : "2");
  std::vector<double> timed;  // images/s of rounds 1.. (round 0 also loads the data)
  for (int round = 0; round < rounds; ++round) {
    flare_round_info info{sizeof(flare_round_info), round, rounds};
    flare_train_result result{};
    result.struct_size = sizeof(result);
    group->barrier();
    const auto start = Clock::now();
    check(host, api.train(trainer, &info, &result));
    group->barrier();
    const double s = seconds_since(start);
    if (round > 0) timed.push_back(result.num_samples / s);
    if (rank == 0)
      std::printf("round %d: %.0f images in %.3f s: %.0f images/s\n", round, result.num_samples,
                  s, result.num_samples / s);
  }
  // The median: this VM's speed drifts by 10-15% from one second to the next.
  std::sort(timed.begin(), timed.end());
  if (rank == 0 && !timed.empty())
    std::printf("median of rounds 1-%d: %.0f images/s\n", rounds - 1, timed[timed.size() / 2]);
  api.destroy(trainer);
  return 0;
}

struct LitNetImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{register_module("conv1", torch::nn::Conv2d(3, 6, 5))};
  torch::nn::Conv2d conv2{register_module("conv2", torch::nn::Conv2d(6, 16, 5))};
  torch::nn::Linear fc1{register_module("fc1", torch::nn::Linear(400, 120))};
  torch::nn::Linear fc2{register_module("fc2", torch::nn::Linear(120, 84))};
  torch::nn::Linear fc3{register_module("fc3", torch::nn::Linear(84, 10))};
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    x = torch::relu(fc1(x.flatten(1)));
    return fc3(torch::relu(fc2(x)));
  }
};

// 3072 -> 4096 -> 3072 -> 10: 25.2M parameters.
struct WideMlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{register_module("fc1", torch::nn::Linear(3072, 4096))};
  torch::nn::Linear fc2{register_module("fc2", torch::nn::Linear(4096, 3072))};
  torch::nn::Linear fc3{register_module("fc3", torch::nn::Linear(3072, 10))};
  torch::Tensor forward(torch::Tensor x) {
    return fc3(torch::relu(fc2(torch::relu(fc1(x.flatten(1))))));
  }
};

int run_comm(const std::map<std::string, std::string>& a, int rank, int world, int port) {
  torch::set_num_threads(1);
  const std::string name = a.at("model");
  std::shared_ptr<torch::nn::Module> model;
  std::function<torch::Tensor(torch::Tensor)> forward;
  if (name == "litnet") {
    auto m = std::make_shared<LitNetImpl>();
    forward = [m](torch::Tensor x) { return m->forward(x); };
    model = m;
  } else {
    auto m = std::make_shared<WideMlpImpl>();
    forward = [m](torch::Tensor x) { return m->forward(x); };
    model = m;
  }
  auto group = form_group(rank, world, port, transport_of(a));
  flare::host::HostServices services({}, group.get());
  flare::Host host(services.table());
  flare::torch_sdk::DataParallel ddp(model->parameters(), host, world);
  int64_t numel = ddp.flat_parameters().numel();
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  const torch::Tensor y = torch::randint(0, 10, {4}, torch::kLong);
  const int steps = std::stoi(a.count("steps") ? a.at("steps") : "50");
  auto timed = [&](bool sync) {
    double waiting = 0;
    group->barrier();
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      ddp.begin_micro_batch(true, sync);
      torch::nn::functional::cross_entropy(forward(x), y).backward();
      const auto wait_start = Clock::now();
      ddp.finish_step(false);
      waiting += seconds_since(wait_start);
    }
    group->barrier();
    return std::make_pair(seconds_since(start) * 1000 / steps, waiting * 1000 / steps);
  };
  timed(true);  // warm-up
  const auto [with_sync, exposed] = timed(true);
  const auto [no_sync, unused] = timed(false);
  torch::Tensor buffer = ddp.flat_gradients().clone();
  int64_t shape = buffer.numel();
  DLTensor view = flare::torch_sdk::to_dl_view(buffer, &shape);
  group->barrier();
  const auto start = Clock::now();
  for (int s = 0; s < steps; ++s) host.all_reduce(view);
  const double reduce_ms = seconds_since(start) * 1000 / steps;
  if (rank == 0)
    std::printf(
        "%s (%lld parameters, %zu buckets, %d ranks, batch 4 per rank): step %.3f ms with "
        "reduction, %.3f ms without (no_sync); waiting for reductions after backward %.3f ms; "
        "all-reduce of all gradients alone %.3f ms; communication share of the step %.0f%%\n",
        name.c_str(), static_cast<long long>(numel), ddp.num_buckets(), world, with_sync, no_sync,
        exposed, reduce_ms, 100.0 * (with_sync - no_sync) / with_sync);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse(argc, argv);
    const int rank = std::stoi(args.at("rank")), world = std::stoi(args.at("world"));
    const int port = args.count("port") ? std::stoi(args.at("port")) : 0;
    return args.at("mode") == "trainer" ? run_trainer(args, rank, world, port)
                                        : run_comm(args, rank, world, port);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_bench: %s\n", e.what());
    return 1;
  }
}
