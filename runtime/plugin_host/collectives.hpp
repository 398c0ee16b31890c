// The worker group's collectives as the host sees them: what the host-services
// table's all_reduce / all_reduce_start / broadcast / barrier map onto. The
// worker implements it over c10d; a single-rank group needs nothing.
#pragma once

#include <flare/plugin_abi.h>

#include <memory>

namespace flare::host {

// Every rank must make the same calls in the same order. Failures throw
// (std::runtime_error or derived) with a message naming what failed.
class Collectives {
 public:
  // A collective in flight. wait() blocks until it is done and throws if it
  // failed; a work destroyed unwaited waits first (swallowing the failure), so
  // the memory it reduces is never freed under it.
  class Work {
   public:
    virtual ~Work() = default;
    virtual void wait() = 0;
  };

  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place on a dense tensor (strides NULL or row-major) on this rank's device.
  virtual void all_reduce(DLTensor& tensor, flare_reduce_op op) = 0;
  // Starts an in-place all-reduce; the tensor's memory stays borrowed until the
  // work is waited for (the DLTensor struct only for this call). Works complete
  // in the order started. By default it runs to completion before returning.
  virtual std::unique_ptr<Work> all_reduce_start(DLTensor& tensor, flare_reduce_op op) {
    all_reduce(tensor, op);
    return std::make_unique<FinishedWork>();
  }
  virtual void broadcast(DLTensor& tensor, int root_rank) = 0;
  virtual void barrier() = 0;

 protected:
  struct FinishedWork final : Work {
    void wait() override {}
  };
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
