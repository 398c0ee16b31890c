// One worker rank's life: take tasks (rank 0 from the server, the others from
// rank 0 by broadcast), keep the trainer's model in step across ranks, and
// send results back (rank 0 only).
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "plugin_host/collectives.hpp"
#include "plugin_host/plugin_instances.hpp"
#include "transport/server_connection.hpp"

namespace flare::worker {

class WorkerSession {
 public:
  // `server` is set on rank 0 only.
  WorkerSession(host::TrainerInstance& trainer, host::Collectives& group,
                transport::ServerConnection* server, std::shared_ptr<spdlog::logger> log);

  // Runs until the server says FINISH. Returns the server's reason when it
  // ended the job early ("" otherwise).
  std::string run();

  // The round the worker is busy with (for progress reports).
  int64_t current_round() const { return round_; }

 private:
  struct TaskHeader {
    int64_t kind = 0;
    int64_t round = 0;
    int64_t num_rounds = 0;
  };
  TaskHeader share_task(transport::v1::Task* task);
  void share_model(const transport::v1::Task* task);
  std::string evaluate_model();
  void send_initial_model();
  void train_and_send(const TaskHeader& header, const std::string& eval_json);

  host::TrainerInstance& trainer_;
  host::Collectives& group_;
  transport::ServerConnection* server_;
  std::shared_ptr<spdlog::logger> log_;
  int64_t round_ = 0;
};

}  // namespace flare::worker
