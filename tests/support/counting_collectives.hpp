// A worker group's collectives, forwarded to another flare::host::Collectives
// and counted, so a test can say how many calls a piece of code makes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "plugin_host/collectives.hpp"

namespace flare::testing {

class CountingCollectives final : public flare::host::Collectives {
 public:
  explicit CountingCollectives(flare::host::Collectives* group) : group_(group) {}
  int rank() const override { return group_->rank(); }
  int world_size() const override { return group_->world_size(); }
  void all_reduce(DLTensor& t, flare_reduce_op op) override {
    ++all_reduces;
    group_->all_reduce(t, op);
  }
  std::unique_ptr<Work> all_reduce_start(DLTensor& t, flare_reduce_op op) override {
    ++async_reductions;
    return group_->all_reduce_start(t, op);
  }
  void broadcast(DLTensor& t, int root) override {
    ++broadcasts;
    group_->broadcast(t, root);
  }
  void barrier() override { group_->barrier(); }

  std::atomic<int64_t> all_reduces{0};
  std::atomic<int64_t> async_reductions{0};  // all-reduces started asynchronously
  std::atomic<int64_t> broadcasts{0};

 private:
  flare::host::Collectives* group_;
};

}  // namespace flare::testing
