// The worker group's collectives over PyTorch c10d: a TCPStore rendezvous
// (hosted by rank 0) and ProcessGroupGloo, or ProcessGroupNCCL for CUDA
// tensors in a build with a CUDA LibTorch (FLARE_WITH_CUDA). With Gloo, small
// and mid-sized CPU all-reduces go to the Gloo library directly over the same
// store (gloo_mesh.hpp). What the
// host-services table's collectives run on inside a worker process.
// LibTorch stays behind the pimpl: including this header costs nothing.
#pragma once

#include "plugin_host/collectives.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace flare::worker {

struct ProcessGroupOptions {
  std::string master_addr = "127.0.0.1";  // where rank 0's TCPStore listens
  int master_port = 0;
  int rank = 0;
  int world_size = 1;
  // "gloo" (CPU tensors; always built) or "nccl" (CUDA tensors; only in a
  // build with a CUDA LibTorch, otherwise construction throws saying so).
  std::string backend = "gloo";
  // The address this rank's Gloo device binds to. Empty: master_addr when that
  // is a loopback address (one machine), else the address this host's name
  // resolves to (Gloo's default device).
  std::string bind_addr;
  // Bounds the rendezvous and every collective: a rank that died or never came
  // turns into an error on the others instead of a hang.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

class ProcessGroupCollectives final : public flare::host::Collectives {
 public:
  // Blocks until all world_size ranks have joined (or options.timeout passes,
  // then throws std::runtime_error). Rank 0 hosts the store.
  explicit ProcessGroupCollectives(const ProcessGroupOptions& options);
  ~ProcessGroupCollectives() override;
  ProcessGroupCollectives(const ProcessGroupCollectives&) = delete;
  ProcessGroupCollectives& operator=(const ProcessGroupCollectives&) = delete;

  int rank() const override;
  int world_size() const override;
  // In place, no copy: the DLTensor's memory is wrapped as an at::Tensor.
  // Throws std::runtime_error naming the operation and this rank on failure.
  void all_reduce(DLTensor& tensor, flare_reduce_op op) override;
  // Queued on the backend's own thread (Gloo) or stream (NCCL) and returned at
  // once; works run in the order started. A CPU tensor the Gloo mesh takes
  // (gloo_mesh.hpp) is reduced before this returns: on a few cores that beats
  // handing it to another thread.
  std::unique_ptr<Work> all_reduce_start(DLTensor& tensor, flare_reduce_op op) override;
  void broadcast(DLTensor& tensor, int root_rank) override;
  void barrier() override;

 private:
  struct Group;
  std::unique_ptr<Group> group_;
};

}  // namespace flare::worker
