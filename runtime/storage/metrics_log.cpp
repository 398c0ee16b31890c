#include "storage/metrics_log.hpp"

namespace flare::storage {

MetricsLog::MetricsLog(std::filesystem::path file) : file_(std::move(file)) {
  std::error_code ec;
  if (file_.has_parent_path()) std::filesystem::create_directories(file_.parent_path(), ec);
  out_.open(file_, std::ios::out | std::ios::app);
  if (!out_) throw StorageError(file_.string() + ": cannot open the metrics log for appending");
}

void MetricsLog::append(const nlohmann::json& record) {
  // `replace`: a metric name with broken UTF-8 must not cost the whole record.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::lock_guard lock(mutex_);
  out_ << line << '\n';
  out_.flush();
  if (!out_) throw StorageError(file_.string() + ": cannot append to the metrics log");
}

}  // namespace flare::storage
