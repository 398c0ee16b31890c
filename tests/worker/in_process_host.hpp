// A host-services table for tests that run plugins or SDK code in the test
// process: errors are plain heap objects, log lines and progress reports are
// recorded, and the collectives go to a flare::host::Collectives (a group of
// one when none is given). One instance per rank.
#pragma once

#include <flare/plugin_abi.h>

#include "plugin_host/collectives.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

// The ABI's opaque error, as this test host defines it.
struct flare_error {
  flare_error_code code;
  std::string message;
};

namespace flare::testing {

class InProcessHost {
 public:
  explicit InProcessHost(flare::host::Collectives* collectives = nullptr)
      : collectives_(collectives ? collectives : &single_) {
    table_.struct_size = sizeof(table_);
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
  }
  InProcessHost(const InProcessHost&) = delete;
  InProcessHost& operator=(const InProcessHost&) = delete;

  const flare_host_services* services() const { return &table_; }

  std::vector<std::string> log_lines() const {
    std::lock_guard lock(mutex_);
    return logs_;
  }
  int64_t progress_reports() const { return progress_reports_.load(); }

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
};

}  // namespace flare::testing
