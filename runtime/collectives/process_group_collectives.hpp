// The worker group's collectives over PyTorch c10d: a TCPStore rendezvous
// (hosted by rank 0) and ProcessGroupGloo, or ProcessGroupNCCL for CUDA
// tensors in a build with a CUDA LibTorch (FLARE_WITH_CUDA). With Gloo, CPU
// all-reduces bypass the process group: through shared memory when every rank
// is on this host (shm_all_reduce.hpp), else, up to 1 MiB, through the Gloo
// library directly (gloo_mesh.hpp). What the host-services table's
// collectives run on inside a worker process.
// LibTorch stays behind the pimpl: including this header costs nothing.
#pragma once

#include "plugin_host/collectives.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace flare::collectives {

struct ProcessGroupOptions {
  std::string master_addr = "127.0.0.1";  // where rank 0's TCPStore listens
  int master_port = 0;
  int rank = 0;
  int world_size = 1;
  // "gloo" (CPU tensors; always built) or "nccl" (CUDA tensors; only in a
  // build with a CUDA LibTorch, otherwise construction throws saying so).
  std::string backend = "gloo";
  // With nccl: this rank's CUDA device. Blocking collectives on CPU tensors (a
  // task header, the model's flat buffer) go through it and back.
  int cuda_device = 0;
  // The address this rank's Gloo device binds to. Empty: master_addr when that
  // is a loopback address (one machine), else the address this host's name
  // resolves to (Gloo's default device).
  std::string bind_addr;
  // Bounds every collective: a rank that died or hung turns into an error on
  // the others instead of a hang.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Bounds forming the group: reaching rank 0's store and every rank arriving.
  std::chrono::milliseconds rendezvous_timeout{std::chrono::minutes(5)};
  // The group's restart count. Rank 0 stamps it on its store, so a rank of a
  // restarted group never joins the store of the group before it.
  int64_t generation = 0;
  // For errors only: whose group it is ("site-1") and how many ranks each
  // node runs (0: unknown), so that a rank that never came names its node.
  std::string group_name;
  int ranks_per_node = 0;
  // CPU all-reduces through shared memory when every rank runs on this host
  // (ranks_per_node == world_size, or unknown and on loopback); false keeps
  // them on Gloo (the benchmarks' baseline).
  bool shared_memory = true;
};

// The group did not form in time: says which ranks (and nodes) never arrived,
// or which address never answered, and how long it waited.
class RendezvousError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProcessGroupCollectives final : public flare::host::Collectives {
 public:
  // Blocks until all world_size ranks have joined (store_rendezvous.hpp);
  // throws RendezvousError when options.rendezvous_timeout passes first, and
  // std::runtime_error for anything else. Rank 0 hosts the store.
  explicit ProcessGroupCollectives(const ProcessGroupOptions& options);
  ~ProcessGroupCollectives() override;
  ProcessGroupCollectives(const ProcessGroupCollectives&) = delete;
  ProcessGroupCollectives& operator=(const ProcessGroupCollectives&) = delete;

  int rank() const override;
  int world_size() const override;
  // Where CPU all-reduces go, for the log: "shared memory", "gloo mesh (no
  // shared memory: <why>)", ...
  const std::string& cpu_all_reduce_path() const;
  // In place, no copy: the DLTensor's memory is wrapped as an at::Tensor.
  // Throws std::runtime_error naming the operation and this rank on failure.
  void all_reduce(DLTensor& tensor, flare_reduce_op op) override;
  // Queued on the backend's own thread (Gloo) or stream (NCCL) and returned at
  // once; works run in the order started. A CPU tensor that shared memory or
  // the Gloo mesh takes is reduced before this returns: on a few cores that
  // beats handing it to another thread.
  std::unique_ptr<Work> all_reduce_start(DLTensor& tensor, flare_reduce_op op) override;
  void broadcast(DLTensor& tensor, int root_rank) override;
  void barrier() override;

 private:
  struct Group;
  std::unique_ptr<Group> group_;
};

}  // namespace flare::collectives
