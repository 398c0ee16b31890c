// One TensorBoard event file: `<dir>/events.out.tfevents.<seconds>.<host>`,
// TFRecords of tensorboard.Event (proto/), starting with the file_version
// event TensorBoard expects. Scalars only; written through a buffer and
// flushed when asked (the tracker does at each round's end and the job's).
#pragma once

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace flare::tracking {

// A file that could not be created or written; names it and the cause.
class TrackingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EventFile {
 public:
  // Creates `dir` (and parents) and the file in it; throws TrackingError.
  explicit EventFile(const std::filesystem::path& dir);
  EventFile(const EventFile&) = delete;
  EventFile& operator=(const EventFile&) = delete;
  ~EventFile();  // flushes; a failure then is only lost

  // Throw TrackingError when the file cannot be written.
  void scalar(const std::string& tag, double value, int64_t step);
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace flare::tracking
