#include "plugin_host/host_services.hpp"

#include <exception>
#include <new>
#include <utility>

#include <spdlog/spdlog.h>

namespace flare::host {
namespace {

// Returned when allocating an error fails: a plugin must always get a non-NULL
// error back, since NULL means success. Never freed.
flare_error out_of_memory_error{FLARE_ERROR_INTERNAL, "out of memory creating an error"};

std::shared_ptr<spdlog::logger> logger() {
  auto named = spdlog::get("plugin_host");
  return named ? named : spdlog::default_logger();
}

spdlog::level::level_enum to_spdlog(flare_log_level level) {
  switch (level) {
    case FLARE_LOG_DEBUG: return spdlog::level::debug;
    case FLARE_LOG_INFO: return spdlog::level::info;
    case FLARE_LOG_WARN: return spdlog::level::warn;
    case FLARE_LOG_ERROR: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view text(const char* s) { return s ? std::string_view(s) : std::string_view(); }

void report_callback_failure(const char* which) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    logger()->error("host {} callback failed: {}", which, e.what());
  } catch (...) {
    logger()->error("host {} callback failed with a non-standard exception", which);
  }
}

// Runs a collective, turning its exception into a COMMUNICATION error.
template <class F>
flare_error* collective(const char* what, F&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    return make_error(FLARE_ERROR_COMMUNICATION, std::string(what) + " failed: " + e.what());
  } catch (...) {
    return make_error(FLARE_ERROR_COMMUNICATION, std::string(what) + " failed");
  }
}

flare_error* c_error_new(flare_error_code code, const char* message) {
  return make_error(code, text(message));
}
flare_error_code c_error_code(const flare_error* error) { return error_code(error); }
const char* c_error_message(const flare_error* error) {
  return error ? error->message.c_str() : "";
}
void c_error_release(flare_error* error) { release_error(error); }

}  // namespace

flare_error* make_error(flare_error_code code, std::string_view message) noexcept {
  try {
    return new flare_error{code, std::string(message)};
  } catch (...) {
    return &out_of_memory_error;
  }
}

flare_error_code error_code(const flare_error* error) noexcept {
  return error ? error->code : FLARE_ERROR_INTERNAL;
}

std::string_view error_message(const flare_error* error) noexcept {
  return error ? std::string_view(error->message) : std::string_view();
}

void release_error(flare_error* error) noexcept {
  if (error != &out_of_memory_error) delete error;
}

std::string error_code_name(flare_error_code code) {
  switch (code) {
    case FLARE_ERROR_INVALID_ARGUMENT: return "FLARE_ERROR_INVALID_ARGUMENT";
    case FLARE_ERROR_NOT_FOUND: return "FLARE_ERROR_NOT_FOUND";
    case FLARE_ERROR_UNSUPPORTED: return "FLARE_ERROR_UNSUPPORTED";
    case FLARE_ERROR_INTERNAL: return "FLARE_ERROR_INTERNAL";
    case FLARE_ERROR_CANCELLED: return "FLARE_ERROR_CANCELLED";
    case FLARE_ERROR_COMMUNICATION: return "FLARE_ERROR_COMMUNICATION";
    case FLARE_ERROR_IO: return "FLARE_ERROR_IO";
  }
  return "FLARE_ERROR_" + std::to_string(static_cast<int>(code));
}

HostServices::HostServices(HostCallbacks callbacks, Collectives* collectives, size_t table_size)
    : callbacks_(std::move(callbacks)), collectives_(collectives) {
  table_.struct_size = table_size;
  table_.context = this;
  table_.error_new = &c_error_new;
  table_.error_code = &c_error_code;
  table_.error_message = &c_error_message;
  table_.error_release = &c_error_release;
  table_.log = &HostServices::log;
  table_.report_metric = &HostServices::report_metric;
  table_.report_progress = &HostServices::report_progress;
  table_.is_cancelled = &HostServices::is_cancelled;
  table_.all_reduce = &HostServices::all_reduce;
  table_.broadcast = &HostServices::broadcast;
  table_.barrier = &HostServices::barrier;
  table_.all_reduce_start = &HostServices::all_reduce_start;
  table_.wait_work = &HostServices::wait_work;
  table_.release_pages = &HostServices::release_pages;
}

void HostServices::release_pages(void* context, const void* data, size_t bytes) {
  HostServices& host = self(context);
  try {
    if (host.callbacks_.release_pages) host.callbacks_.release_pages(data, bytes);
  } catch (...) {
    report_callback_failure("release_pages");
  }
}

void HostServices::log(void* context, flare_log_level level, const char* message) {
  try {
    auto& host = self(context);
    if (host.callbacks_.log)
      host.callbacks_.log(level, text(message));
    else
      spdlog::default_logger()->log(to_spdlog(level), "{}", text(message));
  } catch (...) {
    report_callback_failure("log");
  }
}

void HostServices::report_metric(void* context, const char* name, double value, int64_t step) {
  try {
    auto& host = self(context);
    if (host.callbacks_.metric) host.callbacks_.metric(text(name), value, step);
  } catch (...) {
    report_callback_failure("metric");
  }
}

void HostServices::report_progress(void* context, const char* phase, int64_t epoch,
                                   int64_t step, int64_t total_steps) {
  try {
    auto& host = self(context);
    if (host.callbacks_.progress) host.callbacks_.progress(text(phase), epoch, step, total_steps);
  } catch (...) {
    report_callback_failure("progress");
  }
}

int HostServices::is_cancelled(void* context) {
  try {
    auto& host = self(context);
    return host.callbacks_.cancelled && host.callbacks_.cancelled() ? 1 : 0;
  } catch (...) {
    report_callback_failure("cancelled");
    return 0;
  }
}

flare_error* HostServices::all_reduce(void* context, DLTensor* tensor, flare_reduce_op op) {
  if (!tensor) return make_error(FLARE_ERROR_INVALID_ARGUMENT, "all_reduce: tensor is NULL");
  auto& host = self(context);
  if (!host.collectives_) return nullptr;
  return collective("all_reduce", [&] { host.collectives_->all_reduce(*tensor, op); });
}

flare_error* HostServices::broadcast(void* context, DLTensor* tensor, int32_t root_rank) {
  if (!tensor) return make_error(FLARE_ERROR_INVALID_ARGUMENT, "broadcast: tensor is NULL");
  auto& host = self(context);
  if (!host.collectives_) return nullptr;
  return collective("broadcast", [&] { host.collectives_->broadcast(*tensor, root_rank); });
}

flare_error* HostServices::barrier(void* context) {
  auto& host = self(context);
  if (!host.collectives_) return nullptr;
  return collective("barrier", [&] { host.collectives_->barrier(); });
}

flare_error* HostServices::all_reduce_start(void* context, DLTensor* tensor, flare_reduce_op op,
                                           flare_work** out) {
  if (!tensor || !out)
    return make_error(FLARE_ERROR_INVALID_ARGUMENT, "all_reduce_start: tensor or out is NULL");
  auto& host = self(context);
  return collective("all_reduce", [&] {
    auto work = std::make_unique<flare_work>();
    if (host.collectives_) work->work = host.collectives_->all_reduce_start(*tensor, op);
    *out = work.release();
  });
}

flare_error* HostServices::wait_work(void*, flare_work* work) {
  if (!work) return make_error(FLARE_ERROR_INVALID_ARGUMENT, "wait_work: work is NULL");
  const std::unique_ptr<flare_work> owned(work);
  return collective("all_reduce", [&] {
    if (owned->work) owned->work->wait();
  });
}

}  // namespace flare::host
