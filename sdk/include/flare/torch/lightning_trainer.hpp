// A Lightning-like base class for trainer plugins written with LibTorch.
//
// The derived class is the model, the data and the steps:
//
//   class MyTrainer final : public flare::torch_sdk::LightningTrainer {
//    public:
//     // The base's options and this trainer's own, checked before the job starts.
//     static flare::ConfigSchema config_schema() {
//       return LightningTrainer::config_schema().number("lr", {0, false});
//     }
//     MyTrainer(const nlohmann::json& config, const flare::WorkerInfo& worker, flare::Host host)
//         : LightningTrainer(config, worker, host, {.batch_size = 4}),
//           lr_(option("lr", 0.01)) {}   // the model member is built here, after the seed
//     torch::nn::Module& model() override;
//     std::unique_ptr<torch::optim::Optimizer> configure_optimizer() override;
//     DataSplits setup() override;                       // load data (lazily, once)
//     StepOutput training_step(const Batch& batch) override;
//   };
//   FLARE_TRAINER_PLUGIN(MyTrainer, "my-trainer", "1.0", "...")
//
// The base implements the flare::Trainer ABI methods: weights as DLPack views,
// checked set_weights, evaluation sharded across the worker group and reduced,
// and a training loop with a distributed sampler and DDP through the host's
// collectives (rank 0's initial state broadcast, bucketed gradient all-reduce
// overlapped with backward, gradient accumulation), progress, cancellation and
// metrics reduced across ranks weighted by samples, and rank 0's training loss
// and images/s every log_every_n_steps optimizer steps (host->report_metric). A trainer whose
// configure_optimizer returns a FlatSGD gets a fused whole-model update.
// FedProx and SCAFFOLD come from the config (algorithm = "fedprox" |
// "scaffold", local_algorithm.hpp), for every trainer on the base.
// Header-only; part of the C++ SDK.
#pragma once

#include <flare/plugin.hpp>
#include <flare/torch/data.hpp>
#include <flare/torch/data_parallel.hpp>
#include <flare/torch/distributed.hpp>
#include <flare/torch/flat_sgd.hpp>
#include <flare/torch/local_algorithm.hpp>
#include <flare/torch/tensor_views.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace flare::torch_sdk {

// The trainer's datasets. An undefined split (empty TensorDataset) is one the
// trainer does not offer: evaluate() answers FLARE_ERROR_NOT_FOUND for it.
struct DataSplits {
  TensorDataset train;
  TensorDataset validation;
  TensorDataset test;
  // Which data this is (e.g. "CIFAR-10 (official binary release) in DIR");
  // sent to the server with every update so each run says what it trained on.
  std::string description;
};

// What a step returns: the batch's mean loss (a scalar; the training step's must
// have a gradient) and, for a classifier, how many predictions were right (a
// scalar tensor; leave it undefined when accuracy means nothing).
struct StepOutput {
  torch::Tensor loss;
  torch::Tensor correct;
};

// The usual classifier step: cross-entropy of the logits, and argmax hits.
inline StepOutput classification_step(const torch::Tensor& logits, const torch::Tensor& targets) {
  return {torch::nn::functional::cross_entropy(logits, targets),
          logits.argmax(1).eq(targets).sum()};
}

// The derived trainer's defaults for the base's options (config_schema()).
struct OptionDefaults {
  int64_t batch_size = 32;
  int64_t local_epochs = 1;
  int64_t eval_batch_size = 256;
  double bucket_cap_mb = 25.0;            // gradient all-reduce bucket size, as in DDP
  int64_t accumulate_grad_batches = 1;    // micro-batches per optimizer step
  // Rank 0 reports train_loss and images_per_s every n optimizer steps
  // (host->report_metric; TensorBoard with job.use_tracking); 0: never.
  int64_t log_every_n_steps = 50;         // as Lightning's
};

class LightningTrainer : public flare::Trainer {
 public:
  // The base's options. A derived trainer that reads options of its own
  // declares its own config_schema() from this one; the glue checks every
  // config against it before the trainer is built, in validate_config and create.
  // algorithm / fedprox_mu: local_algorithm.hpp.
  static flare::ConfigSchema config_schema() {
    flare::ConfigSchema schema = flare::ConfigSchema()
                                     .integer("batch_size", 1)
                                     .integer("local_epochs", 0)
                                     .integer("eval_batch_size", 1)
                                     .integer("seed", 0)
                                     .number("bucket_cap_mb", {0, false})
                                     .integer("accumulate_grad_batches", 1)
                                     .integer("log_every_n_steps", 0);
    return add_local_algorithm_options(schema);
  }

  // The model's tensors, and with SCAFFOLD the control variates c.
  std::vector<flare_named_tensor> weights() override {
    prepare();
    return with_extra(state_.views(), correction_.control_views());
  }

  // Copies the weights in place (the optimizer keeps its state and its
  // references to the parameters).
  void set_weights(std::span<const flare_named_tensor> weights) override {
    prepare();
    state_.copy_from(correction_.take_weights(weights));
  }

  // Collective. Rank r evaluates samples r, r + world_size, ... (exact: every
  // sample once, no padding); loss * n, correct and n are summed across the
  // group, so every rank returns the same numbers.
  nlohmann::json evaluate(const std::string& split) override {
    prepare();
    const TensorDataset& data = dataset(split);
    start_group();
    const char* phase = split == "validation" ? "validate" : split.c_str();
    torch::NoGradGuard no_grad;
    model().eval();
    const torch::Tensor mine = strided_shard(data.size(), worker_.rank, worker_.world_size);
    const int64_t count = mine.size(0);
    const int64_t batches = (count + eval_batch_size_ - 1) / eval_batch_size_;
    // loss * n, correct, n, batches with a correct count, stop requests; on
    // the device, where the host's collectives expect it.
    torch::Tensor totals = torch::zeros({5}, torch::TensorOptions(torch::kFloat64).device(device_));
    for (int64_t b = 0; b < batches; ++b) {
      if (host_.cancelled()) {
        totals[4] = 1.0;  // still meet the others at the reduction below
        break;
      }
      const Batch batch = to_device(
          data.batch(mine.slice(0, b * eval_batch_size_, (b + 1) * eval_batch_size_)));
      const StepOutput out = validation_step(batch);
      const auto size = static_cast<double>(batch.size());
      totals[0] += out.loss.to(torch::kFloat64) * size;
      if (out.correct.defined()) {
        totals[1] += out.correct.to(torch::kFloat64);
        totals[3] += 1.0;
      }
      totals[2] += size;
      host_.progress(phase, 0, b + 1, batches);
    }
    all_reduce(host_, totals);
    totals = totals.cpu();
    if (totals[4].item<double>() > 0.0)
      throw Error(FLARE_ERROR_CANCELLED, "evaluation of '" + split + "' cancelled");
    const double n = totals[2].item<double>();
    nlohmann::json result = {{"num_samples", static_cast<int64_t>(n)}};
    result["loss"] = n > 0 ? nlohmann::json(totals[0].item<double>() / n) : nlohmann::json();
    if (totals[3].item<double>() > 0.0 || n == 0)
      result["accuracy"] = n > 0 ? nlohmann::json(totals[1].item<double>() / n) : nlohmann::json();
    return result;
  }

  // Collective. local_epochs epochs over the training split; each epoch every
  // rank takes its shard of a permutation shared by all ranks (epoch_shard).
  // Per micro-batch: forward and backward; every accumulate_grad_batches
  // micro-batches (the last of a window reduces its gradients bucket by bucket
  // while backward runs) one optimizer step with the group's mean gradient.
  TrainOutput train(const flare_round_info& round) override {
    prepare();
    const TensorDataset& data = dataset("train");
    start_group();
    torch::optim::Optimizer& optimizer = this->optimizer();
    model().train();
    correction_.begin_round(ddp_->flat_parameters());
    const int64_t n = data.size();
    // Sums over the samples fed (padding included), kept on the device: no
    // synchronisation per step.
    const auto f64 = torch::TensorOptions(torch::kFloat64).device(device_);
    torch::Tensor loss_sum = torch::zeros({}, f64), correct_sum = torch::zeros({}, f64);
    int64_t fed = 0;
    int64_t steps_done = 0;
    StepLog step_log(*this);
    Batch scratch;
    for (int64_t epoch = 0; epoch < local_epochs_; ++epoch, ++epochs_done_) {
      const torch::Tensor mine =
          epoch_shard(n, worker_.rank, worker_.world_size, seed_, epochs_done_);
      const int64_t per_rank = mine.size(0);
      const int64_t batches = (per_rank + batch_size_ - 1) / batch_size_;
      const int64_t report_every = std::max<int64_t>(1, batches / 20);
      for (int64_t b = 0; b < batches; ++b) {
        const int64_t window_start = b - b % accumulate_;
        const int64_t window = std::min(accumulate_, batches - window_start);
        const int64_t window_end = window_start + window;
        const bool sync = b + 1 == window_end;
        // Whether this window holds a progress report; only then is a stop
        // request sent (and read), the same way on every rank.
        const bool check = sync && (window_end / report_every > window_start / report_every ||
                                    window_end == batches);
        ddp_->begin_micro_batch(b == window_start, sync, check && host_.cancelled());
        const Batch& batch = to_device(
            data.batch_into(mine.slice(0, b * batch_size_, (b + 1) * batch_size_), scratch));
        const StepOutput out = training_step(batch);
        // The window's gradient is the mean over its micro-batches, like one
        // step on their concatenation.
        (window > 1 ? out.loss / static_cast<double>(window) : out.loss).backward();
        if (sync) {
          if (ddp_->finish_step(check))
            throw Error(FLARE_ERROR_CANCELLED, "training cancelled in round " +
                                                   std::to_string(round.round) + ", epoch " +
                                                   std::to_string(epoch) + ", step " +
                                                   std::to_string(b + 1));
          correction_.before_step(ddp_->flat_parameters(), ddp_->flat_gradients());
          optimizer.step();
          if (correction_.algorithm() == LocalAlgorithm::Scaffold)
            correction_.after_step(ddp_->flat_parameters(), learning_rate(optimizer));
          ++steps_done;
          ++optimizer_steps_;
        }
        const auto size = static_cast<double>(batch.size());
        loss_sum.add_(out.loss.detach(), size);
        if (out.correct.defined()) correct_sum.add_(out.correct);
        fed += batch.size();
        if (sync) step_log.stepped(loss_sum, fed);
        if ((b + 1) % report_every == 0 || b + 1 == batches)
          host_.progress("train", epoch, b + 1, batches);
      }
    }
    correction_.end_round(ddp_->flat_parameters());
    synchronize_buffers();
    torch::Tensor totals =
        torch::stack({loss_sum, correct_sum, torch::full({}, static_cast<double>(fed), f64)});
    all_reduce(host_, totals);
    totals = totals.cpu();

    TrainOutput result;
    result.weights = with_extra(state_.views(), correction_.proposal_views());
    // Real samples only: every epoch feeds each sample of the site's training
    // split once across the group; the few repeated to pad the last rank's
    // shard are not counted.
    result.num_samples = static_cast<double>(n * local_epochs_);
    result.num_steps = steps_done;
    if (!data_->description.empty()) result.meta["data"] = data_->description;
    const double fed_by_all = totals[2].item<double>();
    if (fed_by_all > 0) {
      result.metrics["train_loss"] = totals[0].item<double>() / fed_by_all;
      result.metrics["train_accuracy"] = totals[1].item<double>() / fed_by_all;
    }
    return result;
  }

 protected:
  // `config` has passed the derived class's config_schema() (the glue checks
  // it before construction), so values are read without range checks here.
  LightningTrainer(const nlohmann::json& config, const WorkerInfo& worker, Host host,
                   const OptionDefaults& defaults)
      : config_(config.is_null() ? nlohmann::json::object() : config),
        worker_(worker),
        host_(host),
        correction_(config_) {
    seed_ = option<uint64_t>("seed", worker.seed);
    batch_size_ = option<int64_t>("batch_size", defaults.batch_size);
    local_epochs_ = option<int64_t>("local_epochs", defaults.local_epochs);
    eval_batch_size_ = option<int64_t>("eval_batch_size", defaults.eval_batch_size);
    accumulate_ = option<int64_t>("accumulate_grad_batches", defaults.accumulate_grad_batches);
    bucket_cap_mb_ = option<double>("bucket_cap_mb", defaults.bucket_cap_mb);
    log_every_ = option<int64_t>("log_every_n_steps", defaults.log_every_n_steps);
    if (worker_.world_size < 1 || worker_.rank < 0 || worker_.rank >= worker_.world_size)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, "rank " + std::to_string(worker_.rank) +
                                                    " is not in a group of " +
                                                    std::to_string(worker_.world_size));
    if (worker_.rank == 0) correction_.keep_local_control_in(worker_.work_dir);
    device_ = to_torch_device(worker_.device);
    if (worker_.num_threads > 0) torch::set_num_threads(worker_.num_threads);
    // Before the derived class builds its model: every rank of every site
    // starts from the same initial weights.
    torch::manual_seed(seed_);
  }

  // ---- what a trainer provides
  // The model; built in the derived constructor (after the base has seeded).
  virtual torch::nn::Module& model() = 0;
  // Called once, before the first training step; the optimizer then lives as
  // long as the trainer (its state carries over between rounds).
  virtual std::unique_ptr<torch::optim::Optimizer> configure_optimizer() = 0;
  // Loads the data, on every rank (each takes its shard). Called once, on the
  // first evaluate() or train(), so that creating a trainer stays cheap.
  virtual DataSplits setup() = 0;
  // Runs in training mode; the base does backward() and the optimizer step.
  virtual StepOutput training_step(const Batch& batch) = 0;
  // Runs in evaluation mode, without gradients.
  virtual StepOutput validation_step(const Batch& batch) { return training_step(batch); }

  // ---- what a trainer may use
  // The config value at `key` (declared in config_schema()), or `fallback`
  // when absent. A value of the wrong type is rejected naming the key.
  template <class T>
  T option(const std::string& key, T fallback) const {
    const auto it = config_.find(key);
    if (it == config_.end() || it->is_null()) return fallback;
    const bool fits = std::is_same_v<T, bool>       ? it->is_boolean()
                      : std::is_integral_v<T>       ? it->is_number_integer()
                      : std::is_floating_point_v<T> ? it->is_number()
                      : std::is_same_v<T, std::string> ? it->is_string()
                                                       : true;
    if (!fits || (std::is_unsigned_v<T> && !std::is_same_v<T, bool> && it->is_number() &&
                  it->get<double>() < 0))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "option '" + key + "' has the wrong type or range: " + it->dump());
    return it->get<T>();
  }
  const WorkerInfo& worker() const { return worker_; }
  const Host& host() const { return host_; }
  uint64_t seed() const { return seed_; }
  const torch::Device& device() const { return device_; }

 private:
  // Rank 0's per-step figures, every log_every_n_steps optimizer steps: the
  // mean loss of the samples fed since the last report, from the round's
  // running sum on the device (read only then: no synchronisation and no
  // extra work at other steps), and the site's images/s (every rank feeds as
  // many samples as rank 0).
  class StepLog {
   public:
    explicit StepLog(LightningTrainer& trainer)
        : trainer_(trainer),
          on_(trainer.log_every_ > 0 && trainer.worker_.rank == 0),
          since_(std::chrono::steady_clock::now()) {}
    // After an optimizer step, with the round's sums so far (loss x samples,
    // samples): reports when the step's number is a multiple of n.
    void stepped(const torch::Tensor& loss_sum, int64_t fed) {
      if (!on_ || trainer_.optimizer_steps_ % trainer_.log_every_ != 0 || fed == last_fed_) return;
      const double sum = loss_sum.item<double>();  // synchronises with the device
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - since_).count();
      const auto samples = static_cast<double>(fed - last_fed_);
      const int64_t step = trainer_.optimizer_steps_;
      trainer_.host_.metric("train_loss", (sum - last_sum_) / samples, step);
      const double site_samples = samples * trainer_.worker_.world_size;
      if (seconds > 0) trainer_.host_.metric("images_per_s", site_samples / seconds, step);
      last_sum_ = sum;
      last_fed_ = fed;
      since_ = now;
    }

   private:
    LightningTrainer& trainer_;
    bool on_;
    double last_sum_ = 0;
    int64_t last_fed_ = 0;
    std::chrono::steady_clock::time_point since_;
  };

  // First use of the model from the base: move it to the device, lay its
  // trainable parameters out flat for DDP, fix the order of its tensors.
  void prepare() {
    if (prepared_) return;
    model().to(device_);
    std::vector<torch::Tensor> trainable;
    for (const torch::Tensor& p : model().parameters())
      if (p.requires_grad()) trainable.push_back(p);
    ddp_ = std::make_unique<DataParallel>(std::move(trainable), host_, worker_.world_size,
                                          bucket_cap_mb_);
    state_ = ModuleState(model());
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (const auto& item : model().named_parameters(/*recurse=*/true))
      if (item.value().requires_grad()) named.emplace_back(item.key(), item.value());
    correction_.attach(ddp_->flat_parameters(), named);
    prepared_ = true;
  }

  std::vector<torch::Tensor> with_rank0_state(std::vector<torch::Tensor> buffers) const {
    for (const torch::Tensor& t : correction_.rank0_state()) buffers.push_back(t);
    return buffers;
  }

  static std::vector<flare_named_tensor> with_extra(std::vector<flare_named_tensor> model,
                                                    std::vector<flare_named_tensor> extra) {
    model.insert(model.end(), extra.begin(), extra.end());
    return model;
  }

  // The first parameter group's learning rate (SCAFFOLD's eta_l).
  static double learning_rate(torch::optim::Optimizer& optimizer) {
    if (optimizer.param_groups().empty()) return 0;
    return optimizer.param_groups()[0].options().get_lr();
  }

  // Collective, once, at the first evaluate() or train() (the first calls
  // every rank makes together): every rank takes rank 0's parameters and
  // buffers, as DDP does when it wraps a model, and SCAFFOLD's c_i (which
  // only rank 0 reads back from its work folder).
  void start_group() {
    if (started_) return;
    ddp_->broadcast_from_rank0(with_rank0_state(model().buffers()));
    started_ = true;
  }

  const TensorDataset& dataset(const std::string& split) {
    if (!data_) data_ = setup();
    const TensorDataset* d = split == "train"        ? &data_->train
                             : split == "validation" ? &data_->validation
                             : split == "test"       ? &data_->test
                                                     : nullptr;
    if (!d || !d->inputs.defined())
      throw Error(FLARE_ERROR_NOT_FOUND, "this trainer has no '" + split + "' split");
    return *d;
  }

  torch::optim::Optimizer& optimizer() {
    if (!optimizer_) {
      optimizer_ = configure_optimizer();
      if (!optimizer_) throw Error(FLARE_ERROR_INTERNAL, "configure_optimizer() returned nothing");
      if (auto* flat = dynamic_cast<FlatSGD*>(optimizer_.get()))
        flat->use_flat_buffers(ddp_->flat_parameters(), ddp_->flat_gradients());
    }
    return *optimizer_;
  }

  Batch to_device(Batch batch) const {
    if (device_.is_cpu()) return batch;
    return {batch.inputs.to(device_, /*non_blocking=*/true),
            batch.targets.to(device_, /*non_blocking=*/true)};
  }

  // Buffers (e.g. batch-norm statistics) get no gradient; like DDP, rank 0's
  // are taken, so every rank reports the same model.
  void synchronize_buffers() {
    if (worker_.world_size <= 1) return;
    torch::NoGradGuard no_grad;
    broadcast_packed(host_, model().buffers(), 0);
  }

  nlohmann::json config_;
  WorkerInfo worker_;
  Host host_;
  LocalCorrection correction_;  // FedProx / SCAFFOLD (plain FedAvg: does nothing)
  uint64_t seed_ = 0;
  int64_t batch_size_ = 1;
  int64_t local_epochs_ = 1;
  int64_t eval_batch_size_ = 1;
  int64_t accumulate_ = 1;
  double bucket_cap_mb_ = 25.0;
  int64_t log_every_ = 50;
  torch::Device device_{torch::kCPU};

  bool prepared_ = false;
  bool started_ = false;
  std::unique_ptr<DataParallel> ddp_;
  ModuleState state_;
  std::optional<DataSplits> data_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t epochs_done_ = 0;  // over all rounds: seeds each epoch's permutation
  int64_t optimizer_steps_ = 0;  // over all rounds: the step of per-step metrics
};

}  // namespace flare::torch_sdk
