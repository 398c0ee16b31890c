// What the server's core speaks: the sites' requests and reports, the tasks it
// hands out and the figures of a round. No wire types here: the RPC edge
// (rpc_conversion) turns the protocol's messages into these and back, and
// what it hands on is well-formed (numbers in range, JSON of the documented
// shape, text printable); the controller checks what depends on the job's state.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/global_model.hpp"
#include "tensor/owned_tensor.hpp"

namespace flare::server {

// Thrown for a request that does not fit the job's state (wrong round, unknown
// site, a generation the server did not hand out or superseded); the site is
// told why. Nothing of a refused request has any effect.
class RejectedRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request that is malformed whatever the job's state: bad JSON, a metric
// that is not a number, a tensor whose bytes do not fit its shape, an update
// whose tensors are not the global model's. Answered INVALID_ARGUMENT.
class InvalidRequest : public RejectedRequest {
 public:
  using RejectedRequest::RejectedRequest;
};

// This server holds no registration of the site's group: it was dropped
// after falling silent, or the server restarted since it registered.
// Answered NOT_FOUND, which tells the site to register again.
class RegisterAgain : public RejectedRequest {
 public:
  using RejectedRequest::RejectedRequest;
};

// A result for a round that closed without it (at its deadline, or after the
// site was dropped): never folded into a later round. Answered OUT_OF_RANGE,
// which tells the site to go on to its next task.
class LateResult : public RejectedRequest {
 public:
  using RejectedRequest::RejectedRequest;
};

// Thrown for a request that arrives after the job ended: not the site's
// fault, so the site is told the job is over rather than that it failed.
class JobEnded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A site's worker group joins, or rejoins after a restart. Its generation is
// not the request's to say: the server hands it out (Registration).
struct SiteJoin {
  std::string site;
  int world_size = 0;
};

// What a registering worker group is told.
struct Registration {
  int64_t num_rounds = 0;
  int64_t generation = 0;  // stamped on every later request of this group
};

enum class TaskKind { Wait, SendInitialModel, Train, Evaluate, Finish };

struct Task {
  TaskKind kind = TaskKind::Wait;
  int64_t round = 0;     // Train: the round (0-based); Evaluate: num_rounds
  int64_t num_rounds = 0;
  GlobalModelPtr model;  // Train and Evaluate: the global model to start from / measure
  std::string reason;    // Finish: why the job ended early, if it did
};

// The trainer's initial weights, from the site that was asked for them.
struct InitialModel {
  std::string site;
  int64_t generation = 0;
  std::vector<tensor::OwnedTensor> weights;
};

// One site's answer to a training task. Off the wire it is a header, its
// tensors streaming in after it (UpdateIntake); in process (tests) it may
// carry them whole in `weights` and `aux`.
struct SiteUpdate {
  std::string site;
  int64_t round = 0;
  int64_t generation = 0;
  size_t num_weights = 0;  // tensors announced (streamed) ...
  size_t num_aux = 0;
  std::vector<tensor::OwnedTensor> weights;  // ... or carried
  std::vector<tensor::OwnedTensor> aux;  // extra named tensors (e.g. control variates)
  double num_samples = 0;
  int64_t num_steps = 0;
  double train_seconds = 0;
  // The trainer's, name -> finite number (e.g. train_loss).
  nlohmann::json train_metrics = nlohmann::json::object();
  // The site's evaluation of the model it received, split -> name -> finite
  // number: {"validation": {"accuracy": 0.6, "num_samples": 100}, "test": {...}}.
  nlohmann::json evaluation = nlohmann::json::object();
  nlohmann::json meta = nlohmann::json::object();  // e.g. "data": what the site trains on
};

// A site's evaluation of the final global model.
struct SiteEvaluation {
  std::string site;
  int64_t round = 0;
  int64_t generation = 0;
  nlohmann::json evaluation = nlohmann::json::object();  // as SiteUpdate's
};

struct SiteProgress {
  std::string site;
  int64_t generation = 0;
  int64_t round = 0;
  std::string phase;  // "train", "evaluate", ...
  int64_t epoch = 0, step = 0, total = 0;
};

// Scalars a site's trainer reported at its steps (host->report_metric), a
// batch of them as rank 0 sent it; every value finite, names printable.
struct MetricPoint {
  std::string name;
  double value = 0;
  int64_t step = 0;   // the site's optimizer step since the job began
  int64_t round = 0;  // the round being trained (0-based)
  int64_t epoch = 0;
};
struct SiteMetrics {
  std::string site;
  int64_t generation = 0;
  std::vector<MetricPoint> points;  // in the order reported
  // Points the edge dropped (a value that was not finite): said in the log.
  std::vector<std::string> dropped;
};

// A site's policy refuses the job before any of its workers start.
struct SiteRefusal {
  std::string site;
  int node_rank = 0;
  std::string reason;  // the policy's words: which plugin, file, version or limit
};

// A node's supervisor reports a failed rank of its site's worker group.
struct RankFailure {
  std::string site;
  int rank = 0;
  std::string cause;     // e.g. "killed by signal 9 (SIGKILL)"
  std::string log_tail;  // the last lines of that rank's log
  int64_t generation = 0;  // the generation that failed
  bool restarting = false;  // the supervisor restarts the group as generation + 1
  int restarts_left = 0;    // after this restart
  int node_rank = 0;
  // Failed inside a collective: likely a consequence of a peer's failure,
  // which another node's supervisor may be about to report.
  bool in_collective = false;
  // How it ended, as data (`cause` says it in words): at most one is set.
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<double> hang_s;  // stopped after no progress for this long

  // "<site> worker rank <rank> failed: <cause>"
  std::string summary() const {
    return site + " worker rank " + std::to_string(rank) + " failed: " + cause;
  }
};

// The aggregator failed a call of the server's own (begin_round, finalize) or
// handed back a result the host refused: the job fails, and the failure is the
// aggregator's, not a site's.
struct AggregatorFailure {
  std::string plugin;  // its name
  std::string file;    // its library
  std::string call;    // e.g. "finalize"
  std::string error;   // what was wrong, without the plugin's name
  std::string message;  // all of it: plugin, file, call and what was wrong

  std::string summary() const { return "the aggregator failed: " + message; }
};

// One global model's figures.
struct RoundFigures {
  int64_t model_round = 0;  // rounds completed when the model was made (0 = initial)
  // Sample-weighted means over sites, flat names ("val_acc", "test_loss");
  // empty until every site measured the model.
  nlohmann::json metrics = nlohmann::json::object();
  double round_seconds = -1, images_per_s = -1;  // < 0: not measured (the initial model)
  // What the aggregator reported making it ({"dp_epsilon": 1.2}); empty for
  // the initial model or an aggregator that reports nothing.
  nlohmann::json aggregator = nlohmann::json::object();
  bool best = false;

  // metrics[name], or -1 when not measured.
  double metric(const std::string& name) const { return metrics.value(name, -1.0); }
};

}  // namespace flare::server
