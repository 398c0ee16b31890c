// The client side of FedProx and SCAFFOLD, for the LightningTrainer: chosen by
// the trainer config's "algorithm", so every trainer on the base gets them.
//
//  - FedProx (Li et al. 2020): the local objective gets + mu/2 ||w - w_g||^2,
//    w_g the weights the round started from; its gradient mu (w - w_g) is added
//    to every optimizer step's gradient.
//  - SCAFFOLD (Karimireddy et al. 2020, option II): the site keeps its control
//    variate c_i; every step of learning rate lr_k also moves the weights by
//    -lr_k (c - c_i); after K steps, c_i+ = c_i - c + (x - y) / sum_k lr_k
//    (K lr for a constant rate).
//
// FedProx's term joins the group's mean gradient (after DDP's all-reduce,
// before the optimizer step), as the proximal term of the loss would.
// SCAFFOLD's correction is applied to the weights after the step, outside the
// optimizer, as NVFlare's PTScaffoldHelper does: through a momentum optimizer
// it would be amplified by 1 / (1 - momentum), and so would c_i's estimate of
// it, round after round (LitNet with momentum 0.9 reached NaN in round 3).
// x, w_g, c, c_i and the mean gradient are the same on every rank, so every
// rank computes the same correction and the same c_i with no collective of
// its own.
//
// c travels inside the model: with SCAFFOLD, the weights the trainer hands out
// hold one tensor "scaffold.c/<parameter>" per trainable parameter (zeros at
// first), set_weights takes c from them, and the weights train() returns hold
// there c + (c_i+ - c_i): like every other tensor of an update, the site's
// proposal for that global tensor (docs/architecture.md says why). The
// `scaffold` aggregator steps c by |S|/N of the proposals' mean change.
//
// c_i is the site's alone and lives only in the trainer, so it is also kept
// in a file of rank 0's work folder (kLocalControlFile), written after every
// round (a temporary file renamed over it: a crash leaves the old or the new
// one) and read back when the trainer lays its parameters out: a worker group
// the runtime restarts ([clients] max_restarts) continues from the c_i of the
// last round it finished instead of zeros. Rank 0's c_i reaches the other
// ranks with its initial weights (LightningTrainer::start_group), so no rank
// needs another's folder.
// Header-only; part of the C++ SDK.
#pragma once

#include <flare/config_schema.hpp>
#include <flare/plugin.hpp>
#include <flare/torch/tensor_views.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace flare::torch_sdk {

// The prefix of the control-variate tensors in a SCAFFOLD model.
inline constexpr std::string_view kScaffoldPrefix = "scaffold.c/";
// c_i's file in rank 0's work folder (torch::save of the flat float tensor).
inline constexpr std::string_view kLocalControlFile = "scaffold_c_i.pt";

enum class LocalAlgorithm { FedAvg, FedProx, Scaffold };

// The base's options for them: algorithm = "fedavg" (default) | "fedprox" |
// "scaffold", fedprox_mu >= 0 (default 0.01).
inline ConfigSchema& add_local_algorithm_options(ConfigSchema& schema) {
  return schema.choice("algorithm", {"fedavg", "fedprox", "scaffold"}).number("fedprox_mu", {0});
}

// The state of one trainer's local algorithm over the flat buffer of its
// trainable parameters (DataParallel's).
class LocalCorrection {
 public:
  LocalCorrection() = default;
  // `config` has passed add_local_algorithm_options' schema; fedprox_mu is
  // read with algorithm = "fedprox" only.
  explicit LocalCorrection(const nlohmann::json& config) {
    const std::string name = config.value("algorithm", "fedavg");
    algorithm_ = name == "fedprox"    ? LocalAlgorithm::FedProx
                 : name == "scaffold" ? LocalAlgorithm::Scaffold
                                      : LocalAlgorithm::FedAvg;
    mu_ = config.value("fedprox_mu", 0.01);
  }

  LocalAlgorithm algorithm() const { return algorithm_; }

  // SCAFFOLD: where c_i is saved after every round and read back from at
  // attach (rank 0's work folder; empty: nowhere, e.g. validate_config's
  // trainer). Before attach.
  void keep_local_control_in(const std::string& work_dir) {
    if (algorithm_ == LocalAlgorithm::Scaffold && !work_dir.empty())
      local_control_file_ = std::filesystem::path(work_dir) / kLocalControlFile;
  }

  // Once, when the trainer lays its parameters out: `flat` is the buffer the
  // named trainable `parameters` are views into.
  void attach(const torch::Tensor& flat,
              const std::vector<std::pair<std::string, torch::Tensor>>& parameters) {
    if (algorithm_ != LocalAlgorithm::Scaffold || !flat.defined()) return;
    torch::NoGradGuard no_grad;
    control_ = torch::zeros_like(flat);
    local_control_ = torch::zeros_like(flat);
    proposal_ = torch::zeros_like(flat);
    std::vector<std::pair<std::string, torch::Tensor>> c, proposed;
    const auto* base = static_cast<const char*>(flat.data_ptr());
    for (const auto& [name, p] : parameters) {
      const int64_t offset =
          (static_cast<const char*>(p.data_ptr()) - base) / static_cast<int64_t>(p.element_size());
      const std::string key = std::string(kScaffoldPrefix) + name;
      c.emplace_back(key, control_.narrow(0, offset, p.numel()).view(p.sizes()));
      proposed.emplace_back(key, proposal_.narrow(0, offset, p.numel()).view(p.sizes()));
    }
    control_views_ = ModuleState(std::move(c));
    proposal_views_ = ModuleState(std::move(proposed));
    load_local_control();
  }

  // What every rank must take from rank 0 before the first round: c_i.
  std::vector<torch::Tensor> rank0_state() const {
    return algorithm_ == LocalAlgorithm::Scaffold && local_control_.defined()
               ? std::vector<torch::Tensor>{local_control_}
               : std::vector<torch::Tensor>{};
  }

  // The tensors it adds to the weights the trainer hands out: c (get_weights)
  // or, after train(), the proposed c.
  std::vector<flare_named_tensor> control_views() {
    return algorithm_ == LocalAlgorithm::Scaffold ? control_views_.views()
                                                  : std::vector<flare_named_tensor>{};
  }
  std::vector<flare_named_tensor> proposal_views() {
    return algorithm_ == LocalAlgorithm::Scaffold ? proposal_views_.views()
                                                  : std::vector<flare_named_tensor>{};
  }

  // Splits incoming weights into the model's and, with SCAFFOLD, takes c from
  // the rest (every "scaffold.c/" tensor must be there). Returns the model's.
  std::vector<flare_named_tensor> take_weights(std::span<const flare_named_tensor> weights) {
    if (algorithm_ != LocalAlgorithm::Scaffold) return {weights.begin(), weights.end()};
    std::vector<flare_named_tensor> model, control;
    for (const flare_named_tensor& w : weights)
      (w.name && std::string_view(w.name).starts_with(kScaffoldPrefix) ? control : model)
          .push_back(w);
    if (control.empty())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "algorithm = \"scaffold\": the weights hold no \"scaffold.c/\" control "
                  "variates (a model from a job without scaffold?)");
    control_views_.copy_from(control);
    return model;
  }

  // At the start of train(): the weights the round starts from.
  void begin_round(const torch::Tensor& flat) {
    if (algorithm_ == LocalAlgorithm::FedAvg || !flat.defined()) return;
    torch::NoGradGuard no_grad;
    start_ = flat.clone();
    if (algorithm_ == LocalAlgorithm::Scaffold) drift_ = control_ - local_control_;
    rates_ = 0;
  }

  // FedProx: before every optimizer step, on the group's mean gradient.
  void before_step(const torch::Tensor& flat, const torch::Tensor& gradient) const {
    if (algorithm_ != LocalAlgorithm::FedProx || !start_.defined()) return;
    torch::NoGradGuard no_grad;
    gradient.add_(flat - start_, mu_);
  }

  // SCAFFOLD: after every optimizer step of learning rate `lr`.
  void after_step(const torch::Tensor& flat, double lr) {
    if (algorithm_ != LocalAlgorithm::Scaffold || !start_.defined()) return;
    torch::NoGradGuard no_grad;
    flat.add_(drift_, -lr);
    rates_ += lr;
  }

  // At the end of train(): SCAFFOLD's c_i+ and the proposed c + (c_i+ - c_i).
  // No step taken: c_i stays.
  void end_round(const torch::Tensor& flat) {
    if (algorithm_ != LocalAlgorithm::Scaffold || !start_.defined()) return;
    torch::NoGradGuard no_grad;
    torch::Tensor updated = local_control_;
    if (rates_ > 0) updated = local_control_ - control_ + (start_ - flat) / rates_;
    proposal_.copy_(control_ + (updated - local_control_));
    local_control_.copy_(updated);
    start_ = torch::Tensor();
    drift_ = torch::Tensor();
    save_local_control();
  }

 private:
  // c_i from its file when there is one; it must fit the parameters.
  void load_local_control() {
    if (local_control_file_.empty() || !std::filesystem::exists(local_control_file_)) return;
    const std::string file = local_control_file_.string();
    torch::Tensor saved;
    try {
      torch::load(saved, file);
    } catch (const std::exception& e) {
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  file + ": not a saved SCAFFOLD c_i (" + std::string(e.what()).substr(0, 200) +
                      "); delete it to start c_i from zero");
    }
    if (saved.scalar_type() != local_control_.scalar_type() || saved.dim() != 1 ||
        saved.numel() != local_control_.numel())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  file + ": c_i of " + std::to_string(saved.numel()) + " " +
                      std::string(c10::toString(saved.scalar_type())) + " values, the model has " +
                      std::to_string(local_control_.numel()) + " " +
                      std::string(c10::toString(local_control_.scalar_type())) +
                      " trainable ones (another model?); delete it to start c_i from zero");
    torch::NoGradGuard no_grad;
    local_control_.copy_(saved);
  }

  void save_local_control() const {
    if (local_control_file_.empty()) return;
    std::filesystem::path temporary = local_control_file_;
    temporary += ".tmp";
    try {
      torch::save(local_control_.cpu(), temporary.string());
    } catch (const std::exception& e) {
      throw Error(FLARE_ERROR_IO, "cannot write SCAFFOLD's c_i to " + temporary.string() + ": " +
                                      std::string(e.what()).substr(0, 200));
    }
    std::error_code error;
    std::filesystem::rename(temporary, local_control_file_, error);
    if (error)
      throw Error(FLARE_ERROR_IO, "cannot rename " + temporary.string() + " to " +
                                      local_control_file_.string() + ": " + error.message());
  }

  LocalAlgorithm algorithm_ = LocalAlgorithm::FedAvg;
  double mu_ = 0.01;
  torch::Tensor start_;          // x: the weights the round started from
  torch::Tensor control_;        // c, from the global model
  torch::Tensor local_control_;  // c_i
  torch::Tensor drift_;          // c - c_i for the round
  torch::Tensor proposal_;       // c + (c_i+ - c_i), sent with the update
  double rates_ = 0;             // sum of the round's learning rates
  std::filesystem::path local_control_file_;  // empty: c_i is not kept
  ModuleState control_views_;
  ModuleState proposal_views_;
};

}  // namespace flare::torch_sdk
