// One worker rank's life: take tasks (rank 0 from the server, the others from
// rank 0 by broadcast), keep the trainer's model in step across ranks, and
// send results back (rank 0 only).
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "plugin_host/collectives.hpp"
#include "plugin_host/plugin_instances.hpp"
#include "transport/server_connection.hpp"
#include "heartbeat/heartbeat.hpp"

namespace flare::worker {

// One of the group's own collectives (task or model hand-out, final barrier)
// failed: usually because a peer rank died or hung.
class CollectiveFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether `error` says a collective failed (the group's own, or one the
// plugin made through the host), rather than this rank's own code.
bool failed_in_collective(const std::exception& error);

class WorkerSession {
 public:
  // `server` is set on rank 0 only. `heartbeat` (borrowed, may be null) says
  // when this rank is inside a task and when it waits for the next one.
  WorkerSession(host::TrainerInstance& trainer, host::Collectives& group,
                transport::ServerConnection* server, std::shared_ptr<spdlog::logger> log,
                heartbeat::HeartbeatFile* heartbeat = nullptr);

  // Runs until the server says FINISH. Returns the server's reason when it
  // ended the job early ("" otherwise).
  std::string run();

  // The round the worker is busy with (for progress reports).
  int64_t current_round() const { return round_; }
  // Called on rank 0 before each update is sent (the relay's flush of the
  // round's metrics, which must reach the server before the round can end).
  void before_sending_update(std::function<void()> call) { before_update_ = std::move(call); }

 private:
  struct TaskHeader {
    int64_t kind = 0;
    int64_t round = 0;
    int64_t num_rounds = 0;
  };
  // Runs one of the group's collectives; its failure becomes a CollectiveFailure.
  template <class Call>
  void collective(const char* what, Call&& call);
  TaskHeader share_task(transport::ReceivedTask* task);
  // Rank 0 hands the received model on (and lets it go once the trainer has it).
  void share_model(transport::ReceivedTask* task);
  std::string evaluate_model();
  void send_initial_model();
  void train_and_send(const TaskHeader& header, const std::string& eval_json);
  // Runs the task `header` names; false once it was the job's end (FINISH).
  bool run_task(const TaskHeader& header, transport::ReceivedTask& task);

  host::TrainerInstance& trainer_;
  host::Collectives& group_;
  transport::ServerConnection* server_;
  std::shared_ptr<spdlog::logger> log_;
  heartbeat::HeartbeatFile* heartbeat_;
  int64_t round_ = 0;
  std::function<void()> before_update_;
};

}  // namespace flare::worker
