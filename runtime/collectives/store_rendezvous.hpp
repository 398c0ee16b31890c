// A worker group's rendezvous at global rank 0's c10d TCPStore, bounded by
// ProcessGroupOptions::rendezvous_timeout and safe across restarts: a group
// restarted on a fixed master_port (multi-node) may find the store of the
// generation before it still answering there for a moment.
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "collectives/process_group_collectives.hpp"

namespace flare::collectives {

// Rank 0 hosts the store (retrying while the port is still taken) and stamps
// it with options.generation; every other rank connects, passes over a store
// stamped with an earlier generation, and retries until the right one
// answers. Returns once all world_size ranks have arrived. Throws
// RendezvousError when the timeout passes first, saying which ranks (nodes)
// never arrived, or that rank 0's address never answered.
c10::intrusive_ptr<c10d::Store> join_rendezvous(const ProcessGroupOptions& options);

}  // namespace flare::collectives
