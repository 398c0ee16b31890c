#include "devices/device_plan.hpp"

#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "common/child_process.hpp"

#include <algorithm>
#include <thread>

namespace flare::devices {
namespace {

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// What the site asked for, as the job spec spells it.
std::string asked(const jobspec::SiteSpec& site) {
  return "devices = " + jobspec::devices_toml(site) + ", accelerator = " + quoted(site.accelerator) +
         ", backend = " + quoted(site.backend);
}

[[noreturn]] void fail(const jobspec::SiteSpec& site, const std::string& problem) {
  throw DevicePlanError(site.name + " (" + asked(site) + "): " + problem);
}

bool cuda_usable(const DeviceInventory& inventory) {
  return inventory.cuda_built && inventory.cuda_devices > 0;
}

std::string gpus_here(const DeviceInventory& inventory) {
  if (!inventory.cuda_built)
    return "this build of flare has no CUDA support (the LibTorch found at configure time is a "
           "CPU build)";
  if (inventory.cuda_devices <= 0)
    return "no CUDA device is visible on this machine (check the driver and "
           "CUDA_VISIBLE_DEVICES)";
  return "this machine has " + std::to_string(inventory.cuda_devices) +
         " visible CUDA device(s), ids 0 to " + std::to_string(inventory.cuda_devices - 1);
}

[[noreturn]] void fail_cuda(const jobspec::SiteSpec& site, const std::string& need,
                            const DeviceInventory& inventory) {
  std::string advice = "; ask for fewer or other devices";
  if (!cuda_usable(inventory))
    advice = "; run it on the CPU with accelerator = \"cpu\" and a device count";
  fail(site, "it needs " + need + ", but " + gpus_here(inventory) + advice);
}

std::vector<int> plan_cuda_ids(const jobspec::SiteSpec& site, const DeviceInventory& inventory) {
  if (!cuda_usable(inventory)) fail_cuda(site, "CUDA devices", inventory);
  std::vector<int> ids = site.device_ids;
  const int wanted = site.devices_auto ? inventory.cuda_devices : site.devices;
  if (ids.empty()) {
    if (wanted > inventory.cuda_devices)
      fail_cuda(site, std::to_string(wanted) + " CUDA devices", inventory);
    for (int id = 0; id < wanted; ++id) ids.push_back(id);
  }
  for (const int id : ids)
    if (id >= inventory.cuda_devices)
      fail_cuda(site, "CUDA device " + std::to_string(id), inventory);
  return ids;
}

}  // namespace

nlohmann::json to_json(const DeviceInventory& inventory) {
  return {{"cuda_built", inventory.cuda_built},
          {"cuda_devices", inventory.cuda_devices},
          {"cpu_cores", inventory.cpu_cores}};
}

DeviceInventory inventory_from_json(const nlohmann::json& json) {
  return {json.at("cuda_built").get<bool>(), json.at("cuda_devices").get<int>(),
          json.at("cpu_cores").get<int>()};
}

DeviceInventory probe_devices_with(const std::filesystem::path& worker_program) {
  // The worker owns LibTorch; asking it keeps the supervisor free of it.
  const auto out = std::filesystem::temp_directory_path() /
                   ("flare-probe-" + std::to_string(::getpid()) + ".json");
  common::ChildProcess probe({worker_program.string(), "--probe-devices"}, out);
  const auto status = probe.wait_for(std::chrono::seconds(60));
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(out);
  if (!status || !status->success())
    throw std::runtime_error("cannot probe this machine's devices with " +
                             worker_program.string() + ": " +
                             (status ? status->describe() : std::string("no answer in 60 s")) +
                             "\n" + text);
  const auto json = nlohmann::json::parse(text.substr(text.rfind('{')));
  return inventory_from_json(json);
}

DeviceInventory local_devices(const std::filesystem::path& worker_program) {
#if FLARE_WITH_CUDA
  return probe_devices_with(worker_program);
#else
  (void)worker_program;
  return {.cuda_built = false, .cuda_devices = 0, .cpu_cores = usable_cpu_cores()};
#endif
}

int usable_cpu_cores() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int cores = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                        ? CPU_COUNT(&cpus)
                        : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores);
}

void check_cpu_ranks_fit(const jobspec::JobSpec& job, int64_t cpu_ranks,
                         const DeviceInventory& inventory) {
  const int cores = std::max(1, inventory.cpu_cores);
  const int64_t most = int64_t{kCpuRanksPerCore} * cores;
  if (job.oversubscribe || cpu_ranks <= most) return;
  throw DevicePlanError(
      job.source.string() + ": clients.devices x clients.count: the job runs " +
      std::to_string(cpu_ranks) + " CPU ranks on this machine, whose " + std::to_string(cores) +
      " core(s) take at most " + std::to_string(most) + " (" + std::to_string(kCpuRanksPerCore) +
      " per core); ask for fewer devices or sites, or set clients.oversubscribe = true to run "
      "them all anyway");
}

DevicePlan plan_devices(const jobspec::SiteSpec& site, const DeviceInventory& inventory,
                        int ranks_on_this_machine_hint) {
  if (site.accelerator != "auto" && site.accelerator != "cpu" && site.accelerator != "cuda")
    fail(site, "accelerator must be \"auto\", \"cpu\" or \"cuda\"");
  if (site.backend != "auto" && site.backend != "gloo" && site.backend != "nccl")
    fail(site, "backend must be \"auto\", \"gloo\" or \"nccl\"");
  if (!site.devices_auto && site.devices < 1) fail(site, "devices must be at least 1");

  DevicePlan plan;
  const bool ids = !site.device_ids.empty();
  if (site.accelerator == "cuda" || ids) {
    if (site.accelerator == "cpu") fail(site, "device ids name CUDA devices, not CPU ranks");
    plan.accelerator = "cuda";
  } else if (site.accelerator == "cpu") {
    plan.accelerator = "cpu";
  } else {
    plan.accelerator = cuda_usable(inventory) ? "cuda" : "cpu";
  }

  if (plan.accelerator == "cuda") {
    plan.cuda_ids = plan_cuda_ids(site, inventory);
    plan.ranks_per_node = static_cast<int>(plan.cuda_ids.size());
    plan.backend = site.backend == "auto" ? "nccl" : site.backend;
  } else {
    plan.ranks_per_node = site.devices_auto ? 1 : site.devices;
    if (site.backend == "nccl")
      fail(site,
           "NCCL runs on CUDA devices only, and this group runs on the CPU" +
               (site.accelerator == "auto" ? " because " + gpus_here(inventory) : std::string()) +
               "; use backend = \"gloo\" or \"auto\"");
    plan.backend = "gloo";
  }

  const int ranks_here =
      ranks_on_this_machine_hint > 0 ? ranks_on_this_machine_hint : plan.ranks_per_node;
  plan.threads_per_rank = std::max(1, std::max(1, inventory.cpu_cores) / ranks_here);
  return plan;
}

}  // namespace flare::devices
