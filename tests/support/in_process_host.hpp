// The runtime's own host-services table (flare::host::HostServices) for tests
// that run plugins or SDK code in the test process: log lines and progress
// reports and metrics are recorded, the collectives go to a flare::host::Collectives (a
// group of one when none is given), and they are counted.
// One instance per rank. It speaks ABI 1.1 unless told to act as a 1.0 host.
#pragma once

#include <flare/plugin_abi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "counting_collectives.hpp"
#include "plugin_host/collectives.hpp"
#include "plugin_host/host_services.hpp"

namespace flare::testing {

enum class HostAbi { v1_0, v1_1 };

class InProcessHost {
 public:
  explicit InProcessHost(flare::host::Collectives* collectives = nullptr,
                         HostAbi abi = HostAbi::v1_1)
      : counting_(collectives ? collectives : &single_),
        services_(recording_callbacks(), &counting_),
        table_(*services_.table()) {
    // A 1.0 host's table ends after barrier.
    if (abi == HostAbi::v1_0) table_.struct_size = offsetof(flare_host_services, all_reduce_start);
  }
  InProcessHost(const InProcessHost&) = delete;
  InProcessHost& operator=(const InProcessHost&) = delete;

  const flare_host_services* services() const { return &table_; }

  std::vector<std::string> log_lines() const {
    std::lock_guard lock(mutex_);
    return logs_;
  }
  int64_t progress_reports() const { return progress_reports_.load(); }
  struct Metric {
    std::string name;
    double value = 0;
    int64_t step = 0;
  };
  std::vector<Metric> metrics() const {
    std::lock_guard lock(mutex_);
    return metrics_;
  }
  // How many all-reduces were started asynchronously.
  int64_t async_reductions() const { return counting_.async_reductions.load(); }
  // How many broadcasts were made.
  int64_t broadcasts() const { return counting_.broadcasts.load(); }

  // What is_cancelled answers.
  std::atomic<bool> cancel{false};

 private:
  flare::host::HostCallbacks recording_callbacks() {
    flare::host::HostCallbacks cb;
    cb.log = [this](flare_log_level, std::string_view message) {
      std::lock_guard lock(mutex_);
      logs_.emplace_back(message);
    };
    cb.metric = [this](std::string_view name, double value, int64_t step) {
      std::lock_guard lock(mutex_);
      metrics_.push_back({std::string(name), value, step});
    };
    cb.progress = [this](std::string_view, int64_t, int64_t, int64_t) { ++progress_reports_; };
    cb.cancelled = [this] { return cancel.load(); };
    return cb;
  }

  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
  std::vector<Metric> metrics_;
  std::atomic<int64_t> progress_reports_{0};
  flare::host::SingleRankCollectives single_;
  CountingCollectives counting_;
  flare::host::HostServices services_;
  flare_host_services table_;
};

}  // namespace flare::testing
