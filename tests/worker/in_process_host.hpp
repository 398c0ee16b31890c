// A host-services table for tests that run plugins or SDK code in the test
// process: errors are plain heap objects, log lines and progress reports are
// recorded, and the collectives go to a flare::host::Collectives (a group of
// one when none is given). One instance per rank. It speaks ABI 1.1 (an
// asynchronous all-reduce) unless told to act as a 1.0 host.
#pragma once

#include <flare/plugin_abi.h>

#include "plugin_host/collectives.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

// The ABI's opaque error, as this test host defines it.
struct flare_error {
  flare_error_code code;
  std::string message;
};

// The ABI's opaque all-reduce in flight, as this test host defines it.
struct flare_work {
  std::unique_ptr<flare::host::Collectives::Work> work;
};

namespace flare::testing {

enum class HostAbi { v1_0, v1_1 };

class InProcessHost {
 public:
  explicit InProcessHost(flare::host::Collectives* collectives = nullptr,
                         HostAbi abi = HostAbi::v1_1)
      : collectives_(collectives ? collectives : &single_) {
    // A 1.0 host's table ends after barrier.
    table_.struct_size = abi == HostAbi::v1_1 ? sizeof(table_)
                                              : offsetof(flare_host_services, all_reduce_start);
    table_.context = this;
    table_.error_new = [](flare_error_code code, const char* message) {
      return new flare_error{code, message ? message : ""};
    };
    table_.error_code = [](const flare_error* e) { return e->code; };
    table_.error_message = [](const flare_error* e) { return e->message.c_str(); };
    table_.error_release = [](flare_error* e) { delete e; };
    table_.log = [](void* self, flare_log_level, const char* message) {
      auto& host = *static_cast<InProcessHost*>(self);
      std::lock_guard lock(host.mutex_);
      host.logs_.emplace_back(message);
    };
    table_.report_metric = [](void*, const char*, double, int64_t) {};
    table_.report_progress = [](void* self, const char*, int64_t, int64_t, int64_t) {
      ++static_cast<InProcessHost*>(self)->progress_reports_;
    };
    table_.is_cancelled = [](void* self) {
      return static_cast<InProcessHost*>(self)->cancel.load() ? 1 : 0;
    };
    table_.all_reduce = [](void* self, DLTensor* t, flare_reduce_op op) {
      return guarded([&] { static_cast<InProcessHost*>(self)->collectives_->all_reduce(*t, op); });
    };
    table_.broadcast = [](void* self, DLTensor* t, int32_t root) {
      return guarded([&] { static_cast<InProcessHost*>(self)->collectives_->broadcast(*t, root); });
    };
    table_.barrier = [](void* self) {
      return guarded([&] { static_cast<InProcessHost*>(self)->collectives_->barrier(); });
    };
    if (abi == HostAbi::v1_0) return;
    table_.all_reduce_start = [](void* self, DLTensor* t, flare_reduce_op op, flare_work** out) {
      return guarded([&] {
        auto& host = *static_cast<InProcessHost*>(self);
        *out = new flare_work{host.collectives_->all_reduce_start(*t, op)};
        ++host.async_reductions_;
      });
    };
    table_.wait_work = [](void*, flare_work* work) {
      const std::unique_ptr<flare_work> owned(work);
      return guarded([&] { owned->work->wait(); });
    };
  }
  InProcessHost(const InProcessHost&) = delete;
  InProcessHost& operator=(const InProcessHost&) = delete;

  const flare_host_services* services() const { return &table_; }

  std::vector<std::string> log_lines() const {
    std::lock_guard lock(mutex_);
    return logs_;
  }
  int64_t progress_reports() const { return progress_reports_.load(); }
  // How many all-reduces were started asynchronously.
  int64_t async_reductions() const { return async_reductions_.load(); }

  // What is_cancelled answers.
  std::atomic<bool> cancel{false};

 private:
  template <class F>
  static flare_error* guarded(F&& body) noexcept {
    try {
      body();
      return nullptr;
    } catch (const std::exception& e) {
      return new flare_error{FLARE_ERROR_COMMUNICATION, e.what()};
    }
  }

  flare::host::SingleRankCollectives single_;
  flare::host::Collectives* collectives_;
  flare_host_services table_{};
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
  std::atomic<int64_t> progress_reports_{0};
  std::atomic<int64_t> async_reductions_{0};
};

}  // namespace flare::testing
