// The worker group's collectives as the host sees them: what the host-services
// table's all_reduce / broadcast / barrier map onto. The worker implements it
// over c10d; a single-rank group needs nothing.
#pragma once

#include <flare/plugin_abi.h>

namespace flare::host {

// Every rank must make the same calls in the same order. Failures throw
// (std::runtime_error or derived) with a message naming what failed.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place on a dense tensor (strides NULL or row-major) on this rank's device.
  virtual void all_reduce(DLTensor& tensor, flare_reduce_op op) = 0;
  virtual void broadcast(DLTensor& tensor, int root_rank) = 0;
  virtual void barrier() = 0;
};

// A group of one: every collective is the identity.
class SingleRankCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce(DLTensor&, flare_reduce_op) override {}
  void broadcast(DLTensor&, int) override {}
  void barrier() override {}
};

}  // namespace flare::host
