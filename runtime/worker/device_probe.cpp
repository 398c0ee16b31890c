// probe_devices(): the one part of device planning that needs LibTorch, so it
// lives in the worker program (flare-worker --probe-devices answers for others).
#include <torch/cuda.h>

#include "worker/device_plan.hpp"

namespace flare::worker {

DeviceInventory probe_devices() {
  DeviceInventory inventory{};
#if FLARE_WITH_CUDA
  inventory.cuda_built = true;
  inventory.cuda_devices = static_cast<int>(torch::cuda::device_count());
#else
  inventory.cuda_built = false;
  inventory.cuda_devices = 0;
#endif
  inventory.cpu_cores = usable_cpu_cores();
  return inventory;
}

}  // namespace flare::worker
