// The runtime's side of flare_host_services: errors, logging, metrics,
// progress, cancellation and the worker group's collectives (blocking and,
// since ABI 1.1, asynchronous all-reduce), as one C table.
#pragma once

#include <flare/plugin_abi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "plugin_host/collectives.hpp"

// The opaque error of the ABI, defined by the host: every flare_error a plugin
// sees was made by this host's error_new.
struct flare_error {
  flare_error_code code;
  std::string message;
};

// The opaque all-reduce in flight of ABI 1.1 (all_reduce_start / wait_work).
struct flare_work {
  std::unique_ptr<flare::host::Collectives::Work> work;
};

namespace flare::host {

// Creates / reads / releases errors (the table's error_* functions). Never throw.
flare_error* make_error(flare_error_code code, std::string_view message) noexcept;
flare_error_code error_code(const flare_error* error) noexcept;
std::string_view error_message(const flare_error* error) noexcept;
void release_error(flare_error* error) noexcept;
// "FLARE_ERROR_INVALID_ARGUMENT", ... ("FLARE_ERROR_<n>" for unknown codes).
std::string error_code_name(flare_error_code code);

struct ErrorRelease {
  void operator()(flare_error* error) const noexcept { release_error(error); }
};
using ErrorPtr = std::unique_ptr<flare_error, ErrorRelease>;

// What a plugin's host calls turn into. Each may be empty: log then goes to
// spdlog's default logger, metric and progress are dropped, cancelled() is
// false. They may be called from any plugin thread (log / metric / progress
// concurrently) and must not throw; an exception is logged and swallowed.
struct HostCallbacks {
  std::function<void(flare_log_level, std::string_view)> log;
  std::function<void(std::string_view name, double value, int64_t step)> metric;
  std::function<void(std::string_view phase, int64_t epoch, int64_t step, int64_t total)>
      progress;
  std::function<bool()> cancelled;
  // ABI 1.4: an aggregator has read this range of a kept update (a hint).
  std::function<void(const void* data, size_t bytes)> release_pages;
};

// Owns the table handed to plugins; its context points at this object, so it
// is neither copyable nor movable and must outlive every plugin handle created
// with it. `collectives` is borrowed (nullptr: a group of one rank) and must
// outlive this object; its exceptions become FLARE_ERROR_COMMUNICATION errors.
class HostServices {
 public:
  // `table_size`: the struct_size the table declares; a smaller one (an
  // older minor's FLARE_HOST_SERVICES_SIZE_1_x) plays an older host, for
  // tests of what a plugin does without the later services and promises.
  explicit HostServices(HostCallbacks callbacks = {}, Collectives* collectives = nullptr,
                        size_t table_size = sizeof(flare_host_services));
  HostServices(const HostServices&) = delete;
  HostServices& operator=(const HostServices&) = delete;

  const flare_host_services* table() const { return &table_; }

 private:
  static HostServices& self(void* context) { return *static_cast<HostServices*>(context); }
  static void log(void* context, flare_log_level level, const char* message);
  static void report_metric(void* context, const char* name, double value, int64_t step);
  static void report_progress(void* context, const char* phase, int64_t epoch, int64_t step,
                              int64_t total_steps);
  static int is_cancelled(void* context);
  static flare_error* all_reduce(void* context, DLTensor* tensor, flare_reduce_op op);
  static flare_error* broadcast(void* context, DLTensor* tensor, int32_t root_rank);
  static flare_error* barrier(void* context);
  static flare_error* all_reduce_start(void* context, DLTensor* tensor, flare_reduce_op op,
                                       flare_work** out);
  static flare_error* wait_work(void* context, flare_work* work);
  static void release_pages(void* context, const void* data, size_t bytes);

  HostCallbacks callbacks_;
  Collectives* collectives_;
  flare_host_services table_{};
};

}  // namespace flare::host
