// Which devices a site's worker group runs on, decided where the group starts:
// the job's devices / accelerator / backend (jobspec::SiteSpec) resolved
// against what this build and this machine have (DeviceInventory).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobspec/job_spec.hpp"

namespace flare::devices {

struct DeviceInventory {
  bool cuda_built;   // this build has the CUDA path (FLARE_WITH_CUDA)
  int cuda_devices;  // CUDA devices visible here (CUDA_VISIBLE_DEVICES applies)
  int cpu_cores;     // cores this process may run on
};

// What this machine has, asked of `worker_program --probe-devices`
// (flare-worker, worker/device_probe.hpp), so supervisors and flare-run need
// no LibTorch. Throws std::runtime_error when the program cannot answer.
DeviceInventory probe_devices_with(const std::filesystem::path& worker_program);

// What probe_devices_with would answer, without starting the worker when this
// build has no CUDA: then no GPU counts and the cores need no LibTorch, and
// the probe's process (a LibTorch load, 0.3-0.5 s) would only delay the start.
DeviceInventory local_devices(const std::filesystem::path& worker_program);

// The cores this process may run on: its affinity mask, so taskset and cgroup
// cpusets apply. At least 1.
int usable_cpu_cores();

nlohmann::json to_json(const DeviceInventory& inventory);
DeviceInventory inventory_from_json(const nlohmann::json& json);

struct DevicePlan {
  std::string accelerator;    // "cpu" | "cuda"
  std::string backend;        // "gloo" | "nccl"
  int ranks_per_node;         // >= 1
  std::vector<int> cuda_ids;  // the CUDA device of each local rank when "cuda"; else empty
  int threads_per_rank;       // intra-op threads of each rank, >= 1
  bool operator==(const DevicePlan&) const = default;
};

// A worker group this machine or build cannot run. The message names the
// site, what it asked for and what is here.
class DevicePlanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// CPU ranks a machine runs per core before a job must say that it means it
// (clients.oversubscribe = true): beyond that ranks mostly wait for a core,
// and a slip of the keyboard (devices = 4096) would start thousands of
// processes on a laptop.
constexpr int kCpuRanksPerCore = 4;

// Refuses `cpu_ranks` CPU ranks on `inventory`'s cores, beyond
// kCpuRanksPerCore per core, unless `job` sets clients.oversubscribe. Throws
// DevicePlanError naming the job file and the keys to change.
void check_cpu_ranks_fit(const jobspec::JobSpec& job, int64_t cpu_ranks,
                         const DeviceInventory& inventory);

// Resolution rules:
// - accelerator "auto": "cuda" when device ids are listed, or when the build
//   has CUDA and a GPU is visible; else "cpu". "cuda" (asked or implied by
//   ids) needs a CUDA build, a visible GPU and every listed id < the count.
// - devices on CUDA: N = ids 0..N-1 (N <= visible GPUs), [ids] as listed,
//   "auto" = every visible GPU. On CPU: N ranks (more ranks than cores is
//   allowed, only slower), "auto" = 1 rank: CPU ranks share the same cores,
//   so one rank with all the threads does the same work without all-reduce;
//   how many sites share the machine is not known here.
// - backend "auto": "nccl" on CUDA, "gloo" on CPU; "nccl" on CPU is an error;
//   "gloo" on CUDA is allowed (Gloo reduces CUDA tensors, slowly).
// - threads per rank = max(1, cores / ranks on this machine), where the
//   ranks on this machine are `ranks_on_this_machine_hint` when > 0 (every
//   site's ranks when they share the machine), else this group's ranks.
// Throws DevicePlanError.
DevicePlan plan_devices(const jobspec::SiteSpec& site, const DeviceInventory& inventory,
                        int ranks_on_this_machine_hint = 0);

}  // namespace flare::devices
