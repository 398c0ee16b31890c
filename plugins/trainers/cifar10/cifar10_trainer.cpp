// LitNet on CIFAR-10 (NVFlare's "Multi-GPU Federated Learning with PyTorch
// Lightning" example): the model, the site's data and the steps. Everything
// else (DDP, evaluation, weights) comes from flare::torch_sdk::LightningTrainer.
#include <flare/plugin.hpp>
#include <flare/torch/lightning_trainer.hpp>

#include "cifar_format.hpp"

#include <filesystem>
#include <string>

namespace {

namespace sdk = flare::torch_sdk;
namespace nn = torch::nn;

// The PyTorch CIFAR-10 tutorial CNN, 62,006 parameters. Members are declared
// (and so registered and initialised) in the order of the Python reference.
struct LitNetImpl : nn::Module {
  nn::Conv2d conv1{register_module("conv1", nn::Conv2d(3, 6, 5))};
  nn::Conv2d conv2{register_module("conv2", nn::Conv2d(6, 16, 5))};
  nn::Linear fc1{register_module("fc1", nn::Linear(16 * 5 * 5, 120))};
  nn::Linear fc2{register_module("fc2", nn::Linear(120, 84))};
  nn::Linear fc3{register_module("fc3", nn::Linear(84, 10))};

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    x = torch::relu(fc1(x.flatten(1)));
    x = torch::relu(fc2(x));
    return fc3(x);
  }
};
TORCH_MODULE(LitNet);

// Images as normalised float tensors, (x / 255 - 0.5) / 0.5, and int64 labels,
// for the records at `indices`.
sdk::TensorDataset to_tensors(const flare::cifar::CifarImages& images, const torch::Tensor& indices) {
  const auto n = static_cast<int64_t>(images.size());
  auto* pixels = const_cast<std::uint8_t*>(images.pixels.data());
  auto* labels = const_cast<std::uint8_t*>(images.labels.data());
  const torch::Tensor x = torch::from_blob(pixels, {n, 3, 32, 32}, torch::kUInt8);
  const torch::Tensor y = torch::from_blob(labels, {n}, torch::kUInt8);
  return {x.index_select(0, indices).to(torch::kFloat32).div_(255.0).sub_(0.5).div_(0.5),
          y.index_select(0, indices).to(torch::kInt64)};
}

// With shard_test_set each site evaluates every num_sites-th test record:
// every site needs one.
void check_test_share(bool shard_test_set, std::size_t num_test, int num_sites) {
  if (shard_test_set && num_test < static_cast<std::size_t>(num_sites))
    throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                       "cifar10: shard_test_set needs at least one test image per site (" +
                           std::to_string(num_test) + " for " + std::to_string(num_sites) +
                           " sites)");
}

// Runs `read`; a CIFAR-10 format error becomes the ABI's I/O error.
template <class F>
auto as_io_error(F&& read) {
  try {
    return read();
  } catch (const flare::cifar::CifarFormatError& e) {
    throw flare::Error(FLARE_ERROR_IO, std::string("cifar10: ") + e.what());
  }
}

class Cifar10Trainer final : public sdk::LightningTrainer {
 public:
  static flare::ConfigSchema config_schema() {
    return LightningTrainer::config_schema()
        .number("lr", {0})
        .number("momentum", {0}, {1})
        .number("val_fraction", {0}, {1})
        .integer("max_train", 0)
        .boolean("shard_test_set");
  }

  // Before the job starts: every batch file there, whole records (from the
  // sizes: nothing is read), a test record for each site's share.
  static void validate_config(const nlohmann::json& config, const flare::WorkerInfo& worker,
                              flare::Host) {
    const auto size = as_io_error([&] { return flare::cifar::count_data_set(worker.data_dir); });
    check_test_share(config.value("shard_test_set", false), size.test, worker.num_sites);
  }

  Cifar10Trainer(const nlohmann::json& config, const flare::WorkerInfo& worker, flare::Host host)
      : LightningTrainer(config, worker, host,
                         {.batch_size = 4, .local_epochs = 1, .eval_batch_size = 256}),
        lr_(option("lr", 0.001)),
        momentum_(option("momentum", 0.9)),
        val_fraction_(option("val_fraction", 0.2)),
        max_train_(option<int64_t>("max_train", 0)),
        shard_test_set_(option("shard_test_set", false)) {}

  torch::nn::Module& model() override { return *net_; }

  std::unique_ptr<torch::optim::Optimizer> configure_optimizer() override {
    // FlatSGD: torch's SGD update, run over the whole model at once.
    return std::make_unique<sdk::FlatSGD>(net_->parameters(),
                                          torch::optim::SGDOptions(lr_).momentum(momentum_));
  }

  // The site's share of the training records (site_split: the job's [data]
  // split, IID shards shuffled with the job seed or a Dirichlet label skew,
  // 80/20 train/validation) and the test batch:
  // all of it, or with shard_test_set every num_sites-th record from the
  // site's index. The batch is the same file on every site, so the shares
  // cover it once, and the server's sample-weighted mean over the sites is the
  // figure of the whole batch, for 1/num_sites of the work on each site.
  sdk::DataSplits setup() override {
    const std::filesystem::path dir = worker().data_dir;
    const auto train = as_io_error([&] { return flare::cifar::read_training_set(dir); });
    const auto test = as_io_error([&] { return flare::cifar::read_test_set(dir); });
    auto pool = static_cast<int64_t>(train.size());
    if (max_train_ > 0) pool = std::min(pool, max_train_);
    // The job's [data] split: IID shards or label-skewed (Dirichlet).
    const torch::Tensor labels =
        torch::from_blob(const_cast<std::uint8_t*>(train.labels.data()), {pool}, torch::kUInt8)
            .to(torch::kLong);
    const sdk::SiteSplit split = sdk::site_split(labels, worker(), seed(), val_fraction_);
    sdk::report_label_histogram(host(), worker(), labels, split, 10);
    // Only rank 0's result reaches the server, and naming an official set
    // hashes all of it: the other ranks leave the description empty.
    const auto num_test = static_cast<int64_t>(test.size());
    check_test_share(shard_test_set_, test.size(), worker().num_sites);
    const torch::Tensor test_records =
        shard_test_set_ ? torch::arange(worker().site_index, num_test, worker().num_sites)
                        : torch::arange(num_test);
    sdk::DataSplits data{to_tensors(train, split.train), to_tensors(train, split.validation),
                         to_tensors(test, test_records),
                         worker().rank == 0 ? flare::cifar::describe_data_source(dir) : ""};
    if (worker().rank == 0)
      host().info("cifar10: " + data.description + "; site " +
                  std::to_string(worker().site_index + 1) + "/" +
                  std::to_string(worker().num_sites) + ": " + std::to_string(data.train.size()) +
                  " train, " + std::to_string(data.validation.size()) + " validation, " +
                  std::to_string(data.test.size()) + " test images");
    return data;
  }

  sdk::StepOutput training_step(const sdk::Batch& batch) override {
    return sdk::classification_step(net_->forward(batch.inputs), batch.targets);
  }

 private:
  LitNet net_;  // built after the base seeded the generator
  double lr_;
  double momentum_;
  double val_fraction_;
  int64_t max_train_;
  bool shard_test_set_;
};

}  // namespace

FLARE_TRAINER_PLUGIN(Cifar10Trainer, "cifar10", "0.1.0",
                     "LitNet on CIFAR-10 (NVFlare's PyTorch Lightning example), DDP through the host")
