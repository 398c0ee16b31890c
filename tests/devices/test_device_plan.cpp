// plan_devices against made-up machines (no GPU needed), and the probe flare-worker answers here.
#include "devices/device_plan.hpp"

#include <doctest/doctest.h>

#include <string>

using flare::jobspec::SiteSpec;
using flare::devices::DeviceInventory;
using flare::devices::DevicePlan;
using flare::devices::DevicePlanError;
using flare::devices::plan_devices;

namespace {

const DeviceInventory kCpuBuild{.cuda_built = false, .cuda_devices = 0, .cpu_cores = 2};
const DeviceInventory kCudaBuildNoGpu{.cuda_built = true, .cuda_devices = 0, .cpu_cores = 8};
const DeviceInventory kFourGpus{.cuda_built = true, .cuda_devices = 4, .cpu_cores = 32};

SiteSpec site(int devices) { return {.name = "site-1", .devices = devices}; }

SiteSpec site_with_ids(std::vector<int> ids) {
  const int count = static_cast<int>(ids.size());
  return {.name = "site-1", .devices = count, .device_ids = std::move(ids)};
}

SiteSpec site_auto() { return {.name = "site-1", .devices = 0, .devices_auto = true}; }

// The DevicePlanError message, or "no error".
std::string refusal(const SiteSpec& spec, const DeviceInventory& inventory) {
  try {
    plan_devices(spec, inventory);
  } catch (const DevicePlanError& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("runs a group on the CPU with Gloo when the build has no CUDA") {
  CHECK(plan_devices(site(2), kCpuBuild) == DevicePlan{.accelerator = "cpu",
                                                       .backend = "gloo",
                                                       .ranks_per_node = 2,
                                                       .cuda_ids = {},
                                                       .threads_per_rank = 1});
  // A CUDA build on a machine without a GPU falls back the same way.
  CHECK(plan_devices(site(2), kCudaBuildNoGpu).accelerator == "cpu");
}

TEST_CASE("gives each CPU rank its share of the cores on this machine") {
  const DeviceInventory sixteen{.cuda_built = false, .cuda_devices = 0, .cpu_cores = 16};
  CHECK(plan_devices(site(2), sixteen).threads_per_rank == 8);
  CHECK(plan_devices(site(2), sixteen, 4).threads_per_rank == 4);  // two sites of 2 ranks here
  CHECK(plan_devices(site(3), sixteen).threads_per_rank == 5);
  CHECK(plan_devices(site(4), kCpuBuild).threads_per_rank == 1);  // oversubscribed: never 0
  CHECK(plan_devices(site(4), kCpuBuild).ranks_per_node == 4);
}

TEST_CASE("plans one rank with every core for devices = auto on the CPU") {
  const DevicePlan plan = plan_devices(site_auto(), kCpuBuild);
  CHECK(plan.ranks_per_node == 1);
  CHECK(plan.threads_per_rank == 2);
  CHECK(plan_devices(site_auto(), kCpuBuild, 2).threads_per_rank == 1);
}

TEST_CASE("picks CUDA with NCCL and the first N GPUs when the machine has them") {
  CHECK(plan_devices(site(2), kFourGpus) == DevicePlan{.accelerator = "cuda",
                                                       .backend = "nccl",
                                                       .ranks_per_node = 2,
                                                       .cuda_ids = {0, 1},
                                                       .threads_per_rank = 16});
}

TEST_CASE("uses every visible GPU for devices = auto on CUDA") {
  const DevicePlan plan = plan_devices(site_auto(), kFourGpus);
  CHECK(plan.cuda_ids == std::vector<int>{0, 1, 2, 3});
  CHECK(plan.ranks_per_node == 4);
  CHECK(plan.threads_per_rank == 8);
}

TEST_CASE("gives local ranks the listed CUDA ids in order") {
  const DevicePlan plan = plan_devices(site_with_ids({3, 1}), kFourGpus);
  CHECK(plan.accelerator == "cuda");
  CHECK(plan.cuda_ids == std::vector<int>{3, 1});
  CHECK(plan.ranks_per_node == 2);
}

TEST_CASE("stays on the CPU when asked to, even on a GPU machine") {
  SiteSpec spec = site(2);
  spec.accelerator = "cpu";
  const DevicePlan plan = plan_devices(spec, kFourGpus);
  CHECK(plan.accelerator == "cpu");
  CHECK(plan.backend == "gloo");
  CHECK(plan.cuda_ids.empty());
}

TEST_CASE("uses Gloo on CUDA devices when the job asks for it") {
  SiteSpec spec = site(2);
  spec.backend = "gloo";
  CHECK(plan_devices(spec, kFourGpus).backend == "gloo");
  CHECK(plan_devices(spec, kFourGpus).accelerator == "cuda");
}

TEST_CASE("refuses CUDA on a build without it, naming the site, the request and the build") {
  CHECK(refusal(site_with_ids({0, 1}), kCpuBuild) ==
        "site-1 (devices = [0, 1], accelerator = \"auto\", backend = \"auto\"): it needs CUDA "
        "devices, but this build of flare has no CUDA support (the LibTorch found at configure "
        "time is a CPU build); run it on the CPU with accelerator = \"cpu\" and a device count");
  SiteSpec spec = site(2);
  spec.accelerator = "cuda";
  CHECK(refusal(spec, kCpuBuild).find("no CUDA support") != std::string::npos);
}

TEST_CASE("refuses CUDA on a machine where no GPU is visible") {
  SiteSpec spec = site_auto();
  spec.accelerator = "cuda";
  CHECK(refusal(spec, kCudaBuildNoGpu) ==
        "site-1 (devices = \"auto\", accelerator = \"cuda\", backend = \"auto\"): it needs CUDA "
        "devices, but no CUDA device is visible on this machine (check the driver and "
        "CUDA_VISIBLE_DEVICES); run it on the CPU with accelerator = \"cpu\" and a device count");
}

TEST_CASE("refuses more GPUs or other GPU ids than the machine has") {
  SiteSpec five = site(5);
  five.accelerator = "cuda";
  CHECK(refusal(five, kFourGpus) ==
        "site-1 (devices = 5, accelerator = \"cuda\", backend = \"auto\"): it needs 5 CUDA "
        "devices, but this machine has 4 visible CUDA device(s), ids 0 to 3; ask for fewer or "
        "other devices");
  CHECK(refusal(site_with_ids({0, 4}), kFourGpus) ==
        "site-1 (devices = [0, 4], accelerator = \"auto\", backend = \"auto\"): it needs CUDA "
        "device 4, but this machine has 4 visible CUDA device(s), ids 0 to 3; ask for fewer or "
        "other devices");
}

TEST_CASE("refuses NCCL for a group that runs on the CPU") {
  SiteSpec spec = site(2);
  spec.backend = "nccl";
  CHECK(refusal(spec, kCpuBuild) ==
        "site-1 (devices = 2, accelerator = \"auto\", backend = \"nccl\"): NCCL runs on CUDA "
        "devices only, and this group runs on the CPU because this build of flare has no CUDA "
        "support (the LibTorch found at configure time is a CPU build); use backend = \"gloo\" "
        "or \"auto\"");
  spec.accelerator = "cpu";
  CHECK(refusal(spec, kFourGpus).find("NCCL runs on CUDA devices only") != std::string::npos);
}

TEST_CASE("refuses a spec the job file would have rejected") {
  SiteSpec ids_on_cpu = site_with_ids({0});
  ids_on_cpu.accelerator = "cpu";
  CHECK(refusal(ids_on_cpu, kFourGpus).find("device ids name CUDA devices") != std::string::npos);
  SiteSpec tpu = site(1);
  tpu.accelerator = "tpu";
  CHECK(refusal(tpu, kCpuBuild).find("accelerator must be") != std::string::npos);
  CHECK(refusal(site(0), kCpuBuild).find("devices must be at least 1") != std::string::npos);
}

TEST_CASE("allows 4 CPU ranks per core, and more only when the job says oversubscribe") {
  flare::jobspec::JobSpec job;
  job.source = "/jobs/job.toml";
  CHECK_NOTHROW(flare::devices::check_cpu_ranks_fit(job, 8, kCpuBuild));
  try {
    flare::devices::check_cpu_ranks_fit(job, 9, kCpuBuild);
    FAIL("9 CPU ranks on 2 cores were allowed");
  } catch (const DevicePlanError& error) {
    const std::string message = error.what();
    CHECK(message.find("/jobs/job.toml") == 0);
    CHECK(message.find("9 CPU ranks") != std::string::npos);
    CHECK(message.find("clients.oversubscribe = true") != std::string::npos);
  }
  job.oversubscribe = true;
  CHECK_NOTHROW(flare::devices::check_cpu_ranks_fit(job, 4096, kCpuBuild));
}

TEST_CASE("flare-worker --probe-devices finds a core here, and no GPU in a build without CUDA") {
  const DeviceInventory here = flare::devices::probe_devices_with(FLARE_WORKER_BIN);
  CHECK(here.cpu_cores >= 1);
  if (!here.cuda_built) CHECK(here.cuda_devices == 0);
  CHECK(plan_devices(site(1), here).ranks_per_node == 1);
}

TEST_CASE("local_devices answers what flare-worker --probe-devices answers") {
  const DeviceInventory probed = flare::devices::probe_devices_with(FLARE_WORKER_BIN);
  const DeviceInventory local = flare::devices::local_devices(FLARE_WORKER_BIN);
  CHECK(local.cuda_built == probed.cuda_built);
  CHECK(local.cuda_devices == probed.cuda_devices);
  CHECK(local.cpu_cores == probed.cpu_cores);
}

TEST_CASE("a build without CUDA plans its devices without starting flare-worker") {
  const DeviceInventory probed = flare::devices::probe_devices_with(FLARE_WORKER_BIN);
  const std::filesystem::path missing = "/nonexistent/flare-worker";
  CHECK_THROWS_AS(flare::devices::probe_devices_with(missing), std::runtime_error);
  if (probed.cuda_built) {
    // How many GPUs are visible, only LibTorch in the worker can say.
    CHECK_THROWS_AS(flare::devices::local_devices(missing), std::runtime_error);
  } else {
    CHECK(flare::devices::local_devices(missing).cpu_cores == probed.cpu_cores);
  }
}
