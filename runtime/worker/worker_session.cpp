#include "worker/worker_session.hpp"

#include <algorithm>
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

namespace {
// How often a site trying to reach its server again checks the reconnect window.
constexpr std::chrono::milliseconds kReachSlice = std::chrono::seconds(5);
}  // namespace

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

transport::ReceivedTask WorkerSession::fetch_task() {
  for (;;) {
    try {
      auto task = server_->next_task();
      if (task.task.kind() != v1::Task::WAIT) return task;
    } catch (const transport::RegisterAgainError& e) {
      register_again(e.what());
    } catch (const transport::ServerUnreachableError& e) {
      reach_again(e.what());
    }
  }
}

void WorkerSession::register_again(const std::string& why) {
  try {
    server_->register_site(group_.world_size());
  } catch (const transport::ServerUnreachableError& e) {
    reach_again(e.what());
    return;
  }
  log_->warn("dropped by the server: {}; registered again as generation {}", why,
             server_->generation());
}

void WorkerSession::reach_again(const std::string& why) {
  const auto window = reconnection_.timeout;
  const std::string seconds = fmt::format("{:g} s", window.count() / 1000.0);
  log_->warn("{}; trying to reach the server again for up to {} (server.reconnect_timeout_s)",
             why, seconds);
  const auto deadline = std::chrono::steady_clock::now() + window;
  std::string last = why;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw std::runtime_error("cannot reach the server at " + reconnection_.server_address +
                               " again within " + seconds +
                               " (server.reconnect_timeout_s); last error: " + last);
    try {
      // In slices: WaitForConnected returns as soon as it is back.
      server_->wait_until_reachable(std::min<std::chrono::milliseconds>(left, kReachSlice));
      server_->register_site(group_.world_size());
      log_->warn("reached the server again; registered again as generation {}",
                 server_->generation());
      return;
    } catch (const transport::ServerUnreachableError& e) {
      last = e.what();
    } catch (const transport::TransportError& e) {
      if (dynamic_cast<const transport::JobEndedError*>(&e)) throw;
      last = e.what();  // from wait_until_reachable: not reached within the slice
    }
  }
}

WorkerSession::TaskHeader WorkerSession::share_task(transport::ReceivedTask* task) {
  std::array<int64_t, 3> header{};
  if (server_) {
    *task = fetch_task();
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
  // The server refuses an update of a generation it dropped: not worth uploading.
  if (reconnection_.heartbeats) {
    if (auto dropped = reconnection_.heartbeats->dropped())
      throw transport::RegisterAgainError(*dropped);
  }
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
    } catch (const transport::TransportError& e) {
      // Only rank 0 talks to the server; the other ranks meanwhile wait for
      // its next task, which is idle time.
      if (heartbeat_) heartbeat_->set_state(heartbeat::RankState::Idle);
      if (dynamic_cast<const transport::RegisterAgainError*>(&e)) {
        register_again(e.what());
      } else if (dynamic_cast<const transport::ServerUnreachableError*>(&e)) {
        reach_again(e.what());
      } else if (dynamic_cast<const transport::LateResultError*>(&e)) {
        log_->warn("round {}: {}; going on with the next task", header.round + 1, e.what());
      } else {
        throw;
      }
    }
  }
}

}  // namespace flare::worker
