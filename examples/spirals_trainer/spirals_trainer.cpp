// A trainer on the SDK's LightningTrainer: a small MLP that learns to tell two
// interleaved spirals apart. Each site draws its own points from the job seed
// and its index, so the example needs no data files. What is written here is
// the whole trainer: options, model, data, the two steps and the optimizer.
// Distribution (DDP across the site's ranks), evaluation and weights come
// from the base class.
#include <flare/plugin.hpp>
#include <flare/torch/lightning_trainer.hpp>

#include <cmath>
#include <numbers>

namespace {

namespace sdk = flare::torch_sdk;
namespace nn = torch::nn;

// 2 -> hidden -> hidden -> 2 logits.
struct SpiralNetImpl : nn::Module {
  explicit SpiralNetImpl(int64_t hidden)
      : layers(register_module("layers", nn::Sequential(nn::Linear(2, hidden), nn::Tanh(),
                                                        nn::Linear(hidden, hidden), nn::Tanh(),
                                                        nn::Linear(hidden, 2)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return layers->forward(x); }
  nn::Sequential layers;
};
TORCH_MODULE(SpiralNet);

// `n` points, half on each spiral arm (label 0 or 1), with Gaussian noise:
// the same points for the same `seed`.
sdk::TensorDataset two_spirals(int64_t n, uint64_t seed, double noise) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor labels = torch::arange(n) % 2;
  const torch::Tensor t = 0.25 + 0.75 * torch::rand({n}, generator);  // distance from the centre
  const torch::Tensor angle = 3 * std::numbers::pi * t + std::numbers::pi * labels;
  torch::Tensor points = torch::stack({t * torch::cos(angle), t * torch::sin(angle)}, 1);
  points += noise * torch::randn({n, 2}, generator);
  return {points.to(torch::kFloat32), labels};
}

class SpiralsTrainer final : public sdk::LightningTrainer {
 public:
  // The base's options (batch_size, local_epochs, ...) and this trainer's own:
  // the host checks a job's config against these before the job starts.
  static flare::ConfigSchema config_schema() {
    return LightningTrainer::config_schema()
        .number("lr", {0, false})
        .integer("hidden", 1, 4096)
        .integer("points_per_site", 2, 10'000'000)
        .number("noise", {0}, {1});
  }

  SpiralsTrainer(const nlohmann::json& config, const flare::WorkerInfo& worker, flare::Host host)
      : LightningTrainer(config, worker, host, {.batch_size = 32, .local_epochs = 10}),
        lr_(option("lr", 0.03)),
        points_(option<int64_t>("points_per_site", 1000)),
        noise_(option("noise", 0.05)),
        net_(option<int64_t>("hidden", 32)) {}  // built after the base seeded torch

  torch::nn::Module& model() override { return *net_; }

  std::unique_ptr<torch::optim::Optimizer> configure_optimizer() override {
    return std::make_unique<torch::optim::Adam>(net_->parameters(), torch::optim::AdamOptions(lr_));
  }

  // Every rank of a site draws the same points (it then trains on its shard);
  // sites differ. The test points are the same on every site.
  sdk::DataSplits setup() override {
    const uint64_t site_seed = seed() * 1000 + static_cast<uint64_t>(worker().site_index) + 1;
    return {two_spirals(points_, site_seed, noise_),
            two_spirals(points_ / 4, site_seed + 500, noise_),
            two_spirals(1000, seed() * 1000, noise_),
            "two spirals, " + std::to_string(points_) + " points per site"};
  }

  // Also the validation step: the base runs it without gradients for
  // evaluation (override validation_step when evaluating differs).
  sdk::StepOutput training_step(const sdk::Batch& batch) override {
    return sdk::classification_step(net_->forward(batch.inputs), batch.targets);
  }

 private:
  double lr_;
  int64_t points_;
  double noise_;
  SpiralNet net_;
};

}  // namespace

FLARE_TRAINER_PLUGIN(SpiralsTrainer, "spirals", "1.0.0",
                     "an MLP telling two spirals apart, on points each site generates")
