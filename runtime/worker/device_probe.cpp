#include "worker/device_probe.hpp"

#include <sched.h>
#include <torch/cuda.h>

#include <algorithm>
#include <thread>

namespace flare::worker {

devices::DeviceInventory probe_devices() {
  devices::DeviceInventory inventory{};
#if FLARE_WITH_CUDA
  inventory.cuda_built = true;
  inventory.cuda_devices = static_cast<int>(torch::cuda::device_count());
#else
  inventory.cuda_built = false;
  inventory.cuda_devices = 0;
#endif
  // The affinity mask, not the machine's cores: taskset and cgroup cpusets apply.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  inventory.cpu_cores = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                            ? CPU_COUNT(&cpus)
                            : static_cast<int>(std::thread::hardware_concurrency());
  inventory.cpu_cores = std::max(1, inventory.cpu_cores);
  return inventory;
}

}  // namespace flare::worker
