#include "worker/worker_session.hpp"

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

#include <flare/plugin.hpp>
#include <nlohmann/json.hpp>

#include "tensor/owned_tensor.hpp"
#include "worker/model_broadcast.hpp"

namespace flare::worker {

namespace v1 = transport::v1;

bool failed_in_collective(const std::exception& error) {
  if (dynamic_cast<const CollectiveFailure*>(&error)) return true;
  const auto* plugin = dynamic_cast<const host::PluginCallError*>(&error);
  return plugin && plugin->code() == FLARE_ERROR_COMMUNICATION;
}

template <class Call>
void WorkerSession::collective(const char* what, Call&& call) {
  try {
    call();
  } catch (const std::exception& e) {
    throw CollectiveFailure(std::string(what) + ": " + e.what());
  }
}

WorkerSession::WorkerSession(host::TrainerInstance& trainer, host::Collectives& group,
                             transport::ServerConnection* server,
                             std::shared_ptr<spdlog::logger> log,
                             heartbeat::HeartbeatFile* heartbeat)
    : trainer_(trainer),
      group_(group),
      server_(server),
      log_(std::move(log)),
      heartbeat_(heartbeat) {}

WorkerSession::TaskHeader WorkerSession::share_task(transport::ReceivedTask* task) {
  std::array<int64_t, 3> header{};
  if (server_) {
    do {
      *task = server_->next_task();
    } while (task->task.kind() == v1::Task::WAIT);
    header = {task->task.kind(), task->task.round(), task->task.num_rounds()};
  }
  int64_t shape = header.size();
  DLTensor view = flare::dl_view(header.data(), {kDLInt, 64, 1}, &shape, 1);
  collective("sharing the task", [&] { group_.broadcast(view, 0); });
  return {header[0], header[1], header[2]};
}

void WorkerSession::share_model(transport::ReceivedTask* task) {
  // Rank 0 has the server's model; the others lay the same tensors out as
  // their own trainer names and shapes them, and take rank 0's values in one
  // broadcast.
  std::vector<tensor::OwnedTensor> from_server;
  std::vector<flare_named_tensor> model;
  if (server_) {
    from_server = std::move(task->model);  // freed when this returns: the trainer copied it
    model = tensor::views_of(from_server);
  } else {
    const auto mine = trainer_.get_weights();
    model.assign(mine.begin(), mine.end());
  }
  if (group_.world_size() == 1) {
    trainer_.set_weights(model);
    return;
  }
  std::optional<FlatTensors> shared;
  try {
    shared.emplace(broadcast_model(group_, model, 0));
  } catch (const ModelLayoutError&) {
    throw;  // this rank's trainer, not the group, is at fault
  } catch (const std::exception& e) {
    throw CollectiveFailure(std::string("sharing the model: ") + e.what());
  }
  trainer_.set_weights(shared->views());
}

std::string WorkerSession::evaluate_model() {
  nlohmann::json eval = nlohmann::json::object();
  for (const char* split : {"validation", "test"}) {
    try {
      eval[split] = nlohmann::json::parse(trainer_.evaluate(split));
    } catch (const host::PluginCallError& e) {
      if (e.code() != FLARE_ERROR_NOT_FOUND) throw;
      log_->debug("the trainer has no '{}' split", split);
    }
  }
  return eval.dump();
}

void WorkerSession::send_initial_model() {
  const auto weights = trainer_.get_weights();
  if (!server_) return;
  server_->submit_initial_model(weights);
  log_->info("sent the initial model ({} tensors)", weights.size());
}

void WorkerSession::train_and_send(const TaskHeader& header, const std::string& eval_json) {
  flare_round_info info{};
  info.struct_size = sizeof(info);
  info.round = header.round;
  info.num_rounds = header.num_rounds;
  const auto started = std::chrono::steady_clock::now();
  const auto result = trainer_.train(info);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!server_) return;
  v1::UpdateHeader update;
  update.set_round(header.round);
  update.set_meta_json(std::string(result.meta_json()));
  update.set_num_samples(result.num_samples());
  update.set_num_steps(result.num_steps());
  update.set_train_metrics_json(std::string(result.metrics_json()));
  update.set_eval_json(eval_json);
  update.set_train_seconds(seconds);
  if (before_update_) before_update_();
  // Streamed from the trainer's own memory: no copy of the model on the way.
  server_->submit_update(update, result.weights(), result.aux());
  log_->info("round {}: sent the update ({} samples in {:.2f} s)", header.round + 1,
             result.num_samples(), seconds);
}

bool WorkerSession::run_task(const TaskHeader& header, transport::ReceivedTask& task) {
  switch (header.kind) {
    case v1::Task::SEND_INITIAL_MODEL:
      send_initial_model();
      return true;
    case v1::Task::TRAIN: {
      log_->info("round {}: received the global model", header.round + 1);
      share_model(&task);
      const auto evaluating = std::chrono::steady_clock::now();
      const std::string eval = evaluate_model();
      log_->info("round {}: evaluated the global model in {:.2f} s; training", header.round + 1,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - evaluating)
                     .count());
      train_and_send(header, eval);
      return true;
    }
    case v1::Task::EVALUATE: {
      share_model(&task);
      const std::string eval = evaluate_model();
      if (server_) {
        v1::Evaluation msg;
        msg.set_round(header.round);
        msg.set_eval_json(eval);
        server_->submit_evaluation(msg);
      }
      return true;
    }
    case v1::Task::FINISH:
      collective("the final barrier", [&] { group_.barrier(); });
      return false;
    default:
      throw std::runtime_error("unknown task kind " + std::to_string(header.kind));
  }
}

std::string WorkerSession::run() {
  for (;;) {
    transport::ReceivedTask task;
    // Waiting for a task (rank 0 on the server, the others on rank 0) is
    // idle time, however long the other sites take.
    if (heartbeat_) heartbeat_->set_state(heartbeat::RankState::Idle);
    const TaskHeader header = share_task(&task);
    if (heartbeat_) heartbeat_->set_state(heartbeat::RankState::Busy);
    round_ = header.round;
    try {
      if (!run_task(header, task)) return server_ ? task.task.reason() : std::string();
    } catch (const transport::JobEndedError& e) {
      // The job ended while this rank worked (another site failed, or the
      // server did): only rank 0 hears it, and its next task, which the
      // other ranks already wait for, is the end.
      log_->warn("{}; the next task ends the job", e.what());
    }
  }
}

}  // namespace flare::worker
