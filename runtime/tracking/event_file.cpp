#include "tracking/event_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "tensorboard/compat/proto/event.pb.h"
#include "tracking/record_framing.hpp"

namespace flare::tracking {

namespace {

double seconds_since_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

EventFile::EventFile(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw TrackingError("cannot create the TensorBoard folder " + dir.string() + ": " +
                        ec.message());
  const auto now = seconds_since_epoch();
  path_ = dir / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." +
                 host_name());
  file_ = std::fopen(path_.c_str(), "wbx");  // never another writer's file
  if (!file_)
    throw TrackingError("cannot create the event file " + path_.string() + ": " +
                        std::strerror(errno));
  tensorboard::Event first;
  first.set_wall_time(now);
  first.set_file_version("brain.Event:2");
  write_event(first.SerializeAsString());
  flush();
}

EventFile::~EventFile() {
  if (file_) std::fclose(file_);
}

void EventFile::scalar(const std::string& tag, double value, int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(seconds_since_epoch());
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  write_event(event.SerializeAsString());
}

void EventFile::write_event(const std::string& event) {
  const std::string record = frame_record(event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw TrackingError("cannot write the event file " + path_.string() + ": " +
                        std::strerror(errno));
}

void EventFile::flush() {
  if (std::fflush(file_) != 0)
    throw TrackingError("cannot write the event file " + path_.string() + ": " +
                        std::strerror(errno));
}

}  // namespace flare::tracking
