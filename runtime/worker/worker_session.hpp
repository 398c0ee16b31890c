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
#include "worker/heartbeat_sender.hpp"

namespace flare::worker {

// One of the group's own collectives (task or model hand-out, final barrier)
// failed: usually because a peer rank died or hung.
class CollectiveFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How rank 0 stays registered with a server that drops the site or restarts.
struct Reconnection {
  std::string server_address;  // for the message when it cannot be reached again
  // How long a server that vanished is tried again (server.reconnect_timeout_s).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Borrowed, may be null: its news of a drop spares uploading refused work.
  const HeartbeatSender* heartbeats = nullptr;
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
  // Rank 0: register again when dropped, reach a restarting server again.
  void stay_registered(Reconnection reconnection) { reconnection_ = std::move(reconnection); }

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
  // Rank 0: the server's next task, registering again on the way if needed.
  transport::ReceivedTask fetch_task();
  // Rank 0, after the server refused this site's generation (`why`): the
  // work in flight is discarded and the next task is the current round's.
  void register_again(const std::string& why);
  // Rank 0, after the server did not answer (`why`): tries to reach it and
  // register again until the reconnect window closes, then throws.
  void reach_again(const std::string& why);
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
  Reconnection reconnection_;
};

}  // namespace flare::worker
