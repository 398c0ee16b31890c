// A rank's heartbeat: a small shared-memory file in the rank's work folder
// that the rank writes (lock-free, from any thread) and its supervisor reads,
// so a hung rank can be told from one that waits for the next task.
// Times are steady_clock (CLOCK_MONOTONIC), which every process on a host shares.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace flare::heartbeat {

enum class RankState : int32_t {
  Starting = 0,  // not yet taking tasks (startup is bounded by the server's start timeout)
  Idle = 1,      // waiting for the next task: never counts as hung
  Busy = 2,      // inside a task: must keep making progress
};

struct HeartbeatReading {
  RankState state = RankState::Starting;
  std::chrono::steady_clock::time_point last_progress{};
  std::string fatal_error;  // what the rank said before it gave up ("" if nothing)
  // The rank gave up because a collective failed: most likely a consequence
  // of a peer's failure rather than the cause.
  bool failed_in_collective = false;
};

// How long a rank has gone without progress when that makes it hung: only a
// busy rank whose last progress is older than `timeout` (timeout <= 0: never).
std::optional<std::chrono::duration<double>> hung_for(const HeartbeatReading& reading,
                                                      std::chrono::steady_clock::time_point now,
                                                      std::chrono::duration<double> timeout);

// The mapped file. Not copyable; unmaps on destruction.
class HeartbeatFile {
 public:
  // Supervisor: (re)creates `file` in the Starting state, so a restarted rank
  // never inherits its predecessor's heartbeat.
  static HeartbeatFile create(const std::filesystem::path& file);
  // Rank: maps the file its supervisor created. Throws std::runtime_error.
  static HeartbeatFile open(const std::filesystem::path& file);

  HeartbeatFile(HeartbeatFile&& other) noexcept;
  HeartbeatFile& operator=(HeartbeatFile&&) = delete;
  HeartbeatFile(const HeartbeatFile&) = delete;
  ~HeartbeatFile();

  // A state change counts as progress.
  void set_state(RankState state);
  void progress();
  // Kept for the supervisor's report (truncated to fit).
  void set_fatal_error(std::string_view message, bool in_collective);
  HeartbeatReading read() const;

 private:
  struct Record;
  explicit HeartbeatFile(Record* record) : record_(record) {}
  Record* record_;
};

}  // namespace flare::heartbeat
