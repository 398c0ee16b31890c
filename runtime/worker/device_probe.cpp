#include "worker/device_probe.hpp"

#include <torch/cuda.h>

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
  inventory.cpu_cores = devices::usable_cpu_cores();
  return inventory;
}

}  // namespace flare::worker
