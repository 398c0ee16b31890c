// What this build and machine have, asked of LibTorch and the scheduler: the
// one part of device planning that needs LibTorch, so it lives in the worker
// program (flare-worker --probe-devices answers for the supervisor and flare-run).
#pragma once

#include "devices/device_plan.hpp"

namespace flare::worker {

// Cheap, but LibTorch must be loadable.
devices::DeviceInventory probe_devices();

}  // namespace flare::worker
