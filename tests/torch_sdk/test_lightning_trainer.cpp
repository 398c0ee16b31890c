// The SDK's LightningTrainer as a worker group runs it, ranks as threads over
// the real c10d collectives, with a tiny linear model: the distributed sampler
// on an uneven dataset, rank 0's initial state, gradient accumulation and
// metrics reduced by samples; FedProx and SCAFFOLD, and SCAFFOLD's c_i kept
// in the work folder across a restart of the group.
#include <flare/torch/lightning_trainer.hpp>

#include "in_process_host.hpp"
#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <memory>
#include <set>
#include <vector>

namespace sdk = flare::torch_sdk;
using flare::testing::InProcessHost;
using nlohmann::json;

namespace {

// Samples whose first feature is their index, so a test sees which were fed.
sdk::TensorDataset numbered_samples(int64_t n) {
  const torch::Tensor id = torch::arange(n, torch::kFloat32).unsqueeze(1);
  const torch::Tensor features = torch::sin(id * torch::tensor({1.0f, 0.7f, 1.3f, 2.1f}));
  return {torch::cat({id / 10, features.slice(1, 1)}, 1),
          torch::arange(n, torch::kLong).remainder(3)};
}

class TinyTrainer final : public sdk::LightningTrainer {
 public:
  static flare::ConfigSchema config_schema() {
    return LightningTrainer::config_schema().number("momentum", {0});
  }
  TinyTrainer(const json& config, const flare::WorkerInfo& worker, flare::Host host,
              int64_t train_samples, int64_t validation_samples)
      : LightningTrainer(config, worker, host, {.batch_size = 2}),
        data_{numbered_samples(train_samples), numbered_samples(validation_samples), {}, {}} {}

  torch::nn::Module& model() override { return *net_; }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizer() override {
    return std::make_unique<torch::optim::SGD>(net_->parameters(),
                                               torch::optim::SGDOptions(kLearningRate)
                                                   .momentum(option("momentum", 0.9)));
  }
  sdk::DataSplits setup() override { return data_; }
  sdk::StepOutput training_step(const sdk::Batch& batch) override {
    const torch::Tensor ids = (batch.inputs.select(1, 0) * 10).round().to(torch::kLong);
    for (int64_t i = 0; i < ids.size(0); ++i) fed.push_back(ids[i].item<int64_t>());
    auto out = sdk::classification_step(net_->forward(batch.inputs), batch.targets);
    losses.push_back(out.loss.item<double>());
    batch_sizes.push_back(static_cast<double>(batch.size()));
    return out;
  }

  std::vector<float> flat_weights() {
    std::vector<float> out;
    for (const auto& w : weights()) {
      const auto* data = static_cast<const float*>(w.tensor.data);
      out.insert(out.end(), data, data + flare::num_elements(w.tensor));
    }
    return out;
  }

  static constexpr double kLearningRate = 0.1;
  std::vector<int64_t> fed;  // sample indices, in the order trained on
  std::vector<double> losses;  // each micro-batch's, in order
  std::vector<double> batch_sizes;

 private:
  torch::nn::Linear net_{4, 3};  // built after the base seeded the generator
  sdk::DataSplits data_;
};

// `work_root`: each rank gets <work_root>/rank<r> as its work folder, as the
// runtime lays them out (empty: no work folder).
flare::WorkerInfo rank_of(int rank, int world_size, const std::filesystem::path& work_root = {}) {
  flare::WorkerInfo info;
  if (!work_root.empty()) {
    info.work_dir = (work_root / ("rank" + std::to_string(rank))).string();
    std::filesystem::create_directories(info.work_dir);
  }
  info.rank = rank;
  info.world_size = world_size;
  info.local_rank = rank;
  info.local_world_size = world_size;
  info.seed = 3;
  return info;
}

// One trainer per rank (built one after the other: the seeding is global), a
// host each over a group formed for them.
struct Ranks {
  std::vector<std::unique_ptr<flare::collectives::ProcessGroupCollectives>> group;
  std::vector<std::unique_ptr<InProcessHost>> hosts;
  std::vector<std::unique_ptr<TinyTrainer>> trainers;

  Ranks(int world_size, int64_t train_samples, int64_t validation_samples,
        const std::vector<json>& configs, const std::filesystem::path& work_root = {}) {
    if (world_size > 1) group = flare::testing::form_group(world_size);
    for (int r = 0; r < world_size; ++r) {
      hosts.push_back(std::make_unique<InProcessHost>(world_size > 1 ? group[r].get() : nullptr));
      trainers.push_back(std::make_unique<TinyTrainer>(
          configs[static_cast<std::size_t>(r)], rank_of(r, world_size, work_root),
          flare::Host(hosts.back()->services()), train_samples, validation_samples));
    }
  }

  std::vector<flare::TrainOutput> train(int64_t round = 0) {
    return flare::testing::on_every_rank(static_cast<int>(trainers.size()), [&](int r) {
      return trainers[r]->train(flare_round_info{sizeof(flare_round_info), round, round + 1});
    });
  }
};

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  return worst;
}

}  // namespace

TEST_CASE("seven samples over two ranks: both take the same steps and every sample is fed") {
  Ranks ranks(2, 7, 2, {json::object(), json::object()});
  const auto results = ranks.train();
  CHECK(results[0].num_steps == 2);  // ceil(ceil(7 / 2) / 2)
  CHECK(results[1].num_steps == 2);
  CHECK(results[0].num_samples == 7);
  std::set<int64_t> fed;
  for (const auto& trainer : ranks.trainers) fed.insert(trainer->fed.begin(), trainer->fed.end());
  CHECK(fed == std::set<int64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(ranks.trainers[0]->fed.size() + ranks.trainers[1]->fed.size() == 8);  // one repeat
}

TEST_CASE("a rank that built other initial weights starts from rank 0's and ends identical") {
  Ranks ranks(2, 8, 2, {json::object(), json{{"seed", 99}}});
  REQUIRE(ranks.trainers[0]->flat_weights() != ranks.trainers[1]->flat_weights());
  ranks.train();
  CHECK(ranks.trainers[0]->flat_weights() == ranks.trainers[1]->flat_weights());
}

TEST_CASE("two ranks accumulating two micro-batches step like one rank on batches four times larger") {
  Ranks one(1, 16, 2, {json{{"batch_size", 8}}});
  Ranks two(2, 16, 2, std::vector<json>(2, json{{"accumulate_grad_batches", 2}}));
  const auto single = one.train();
  const auto accumulated = two.train();
  CHECK(single[0].num_steps == 2);
  CHECK(accumulated[0].num_steps == 2);
  const double diff =
      max_difference(one.trainers[0]->flat_weights(), two.trainers[0]->flat_weights());
  INFO("weights differ by " << diff);
  CHECK(diff < 1e-6);
  CHECK(max_difference(one.trainers[0]->flat_weights(), Ranks(1, 16, 2, {json::object()})
                                                             .trainers[0]->flat_weights()) > 1e-3);
}

TEST_CASE("evaluation over ranks with unequal shares is weighted by samples") {
  // Three validation samples: rank 0 evaluates two, rank 1 one.
  Ranks one(1, 4, 3, {json::object()});
  Ranks two(2, 4, 3, {json::object(), json::object()});
  const json whole = one.trainers[0]->evaluate("validation");
  const auto shared = flare::testing::on_every_rank(
      2, [&](int r) { return two.trainers[r]->evaluate("validation"); });
  CHECK(shared[0] == shared[1]);
  CHECK(shared[0]["num_samples"] == 3);
  CHECK(std::abs(shared[0]["loss"].get<double>() - whole["loss"].get<double>()) < 1e-6);
  CHECK(std::abs(shared[0]["accuracy"].get<double>() - whole["accuracy"].get<double>()) < 1e-9);
}

TEST_CASE("rank 0 reports its loss and images/s every log_every_n_steps optimizer steps, counted "
          "across rounds") {
  // 21 samples over 2 ranks in batches of 2: 6 steps a round on each rank.
  const json config = {{"log_every_n_steps", 2}};
  Ranks ranks(2, 21, 2, {config, config});
  ranks.train(0);
  ranks.train(1);
  CHECK(ranks.hosts[1]->metrics().empty());  // the server hears rank 0 only
  const auto metrics = ranks.hosts[0]->metrics();
  REQUIRE(metrics.size() == 12);  // at steps 2, 4, 6 and 8, 10, 12: two figures each
  const auto& losses = ranks.trainers[0]->losses;
  const auto& sizes = ranks.trainers[0]->batch_sizes;
  REQUIRE(losses.size() == 12);  // a micro-batch per step, on rank 0
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK(metrics[2 * i].name == "train_loss");
    CHECK(metrics[2 * i].step == static_cast<int64_t>(2 * (i + 1)));
    // The mean over the samples since the last report (a round's last batch is short).
    const size_t a = 2 * i, b = 2 * i + 1;
    CHECK(metrics[2 * i].value == doctest::Approx((losses[a] * sizes[a] + losses[b] * sizes[b]) /
                                                  (sizes[a] + sizes[b])));
    CHECK(metrics[2 * i + 1].name == "images_per_s");
    CHECK(metrics[2 * i + 1].step == metrics[2 * i].step);
    CHECK(metrics[2 * i + 1].value > 0);
  }
}

TEST_CASE("log_every_n_steps = 0 reports no step figures, and a negative one is refused") {
  const json config = {{"log_every_n_steps", 0}};
  Ranks ranks(1, 8, 2, {config});
  ranks.train(0);
  CHECK(ranks.hosts[0]->metrics().empty());
  CHECK_THROWS_WITH_AS(TinyTrainer::config_schema().check(json{{"log_every_n_steps", -1}}),
                       doctest::Contains("option 'log_every_n_steps'"), flare::Error);
}

TEST_CASE("accumulate_grad_batches and bucket_cap_mb must be positive") {
  // Checked by the schema the glue applies before a trainer is built.
  const flare::ConfigSchema schema = TinyTrainer::config_schema();
  CHECK_THROWS_AS(schema.check(json{{"accumulate_grad_batches", 0}}), flare::Error);
  CHECK_THROWS_AS(schema.check(json{{"bucket_cap_mb", 0}}), flare::Error);
  CHECK_NOTHROW(schema.check(json{{"accumulate_grad_batches", 2}, {"bucket_cap_mb", 0.5}}));
}

namespace {

using Named = std::map<std::string, torch::Tensor>;

// Copies of named tensors (the views die with the next call on the trainer).
Named copies(const std::vector<flare_named_tensor>& views) {
  Named out;
  for (const auto& v : views) out[v.name] = sdk::from_dl_view(v.tensor).clone();
  return out;
}

void set_weights(TinyTrainer& trainer, const Named& weights) {
  sdk::ModuleState state({weights.begin(), weights.end()});
  trainer.set_weights(state.views());
}

// The full-batch cross-entropy gradient of the linear model {weight, bias}
// on `data`, by autograd.
Named full_batch_gradient(const Named& w, const sdk::TensorDataset& data) {
  const torch::Tensor weight = w.at("weight").clone().requires_grad_();
  const torch::Tensor bias = w.at("bias").clone().requires_grad_();
  torch::nn::functional::cross_entropy(torch::nn::functional::linear(data.inputs, weight, bias),
                                       data.targets)
      .backward();
  return {{"weight", weight.grad()}, {"bias", bias.grad()}};
}

// `steps` full-batch gradient steps of plain SGD from `w`, each gradient
// plus correction(w).
template <class Correction>
Named descend(Named w, const sdk::TensorDataset& data, int steps, Correction correction) {
  for (int k = 0; k < steps; ++k) {
    const Named g = full_batch_gradient(w, data);
    const Named extra = correction(w);
    for (auto& [name, value] : w)
      value = value - TinyTrainer::kLearningRate * (g.at(name) + extra.at(name));
  }
  return w;
}

double max_difference(const Named& a, const Named& b, const std::string& prefix = "") {
  double worst = 0;
  for (const auto& [name, value] : b)
    worst = std::max(worst, (a.at(prefix + name) - value).abs().max().item<double>());
  return worst;
}

Named model_part(const Named& weights) {
  return {{"weight", weights.at("weight")}, {"bias", weights.at("bias")}};
}

const json kFullBatchSgd = {{"batch_size", 16}, {"local_epochs", 3}, {"momentum", 0}};

json with(json config, const json& more) {
  config.update(more);
  return config;
}

}  // namespace

TEST_CASE("fedprox with mu = 0 trains exactly as fedavg; with mu, each step adds mu (w - w_start)") {
  Ranks plain(1, 8, 2, {kFullBatchSgd});
  Ranks mu_zero(1, 8, 2, {with(kFullBatchSgd, {{"algorithm", "fedprox"}, {"fedprox_mu", 0}})});
  plain.train();
  mu_zero.train();
  CHECK(plain.trainers[0]->flat_weights() == mu_zero.trainers[0]->flat_weights());

  constexpr double mu = 0.7;
  Ranks prox(1, 8, 2, {with(kFullBatchSgd, {{"algorithm", "fedprox"}, {"fedprox_mu", mu}})});
  const Named start = copies(prox.trainers[0]->weights());
  CHECK(start.size() == 2);  // FedProx adds no tensors
  prox.train();
  const Named expected = descend(start, numbered_samples(8), 3, [&](const Named& w) {
    return Named{{"weight", mu * (w.at("weight") - start.at("weight"))},
                 {"bias", mu * (w.at("bias") - start.at("bias"))}};
  });
  const double diff = max_difference(copies(prox.trainers[0]->weights()), expected);
  INFO("fedprox differs from the hand-computed descent by " << diff);
  CHECK(diff < 1e-5);
  CHECK(max_difference(copies(plain.trainers[0]->weights()), expected) > 1e-3);
}

TEST_CASE("scaffold on two sites: steps corrected by c - c_i, c_i+ = c_i - c + (x - y) / (K lr)") {
  // Site A: 6 samples on two ranks (3 each: their mean gradient is the full
  // batch's); site B: 4 samples on one. Two full-batch steps a round.
  const json config = with(kFullBatchSgd, {{"local_epochs", 2}, {"algorithm", "scaffold"}});
  Ranks site_a(2, 6, 2, {config, config});
  Ranks site_b(1, 4, 2, {config});
  const sdk::TensorDataset data_a = numbered_samples(6), data_b = numbered_samples(4);
  const Named initial = copies(site_a.trainers[0]->weights());
  REQUIRE(initial.size() == 4);
  CHECK(initial.at("scaffold.c/weight").abs().max().item<double>() == 0);
  CHECK(initial.at("scaffold.c/bias").abs().max().item<double>() == 0);
  const double lr = TinyTrainer::kLearningRate;
  constexpr int K = 2;

  // The site's round by hand: y after K corrected steps, and its new c_i.
  const auto by_hand = [&](const Named& x, const Named& c, const Named& c_i,
                           const sdk::TensorDataset& data) {
    const Named y = descend(x, data, K, [&](const Named&) {
      return Named{{"weight", c.at("weight") - c_i.at("weight")},
                   {"bias", c.at("bias") - c_i.at("bias")}};
    });
    Named c_next;
    for (const auto& [name, value] : y)
      c_next[name] = c_i.at(name) - c.at(name) + (x.at(name) - value) / (K * lr);
    return std::pair{y, c_next};
  };
  const auto train_round = [&](int64_t round, const Named& global) {
    for (auto& t : site_a.trainers) set_weights(*t, global);
    set_weights(*site_b.trainers[0], global);
    auto a = site_a.train(round);
    auto b = site_b.train(round);
    const Named a0 = copies(a[0].weights), a1 = copies(a[1].weights);
    for (const auto& [name, value] : a0) CHECK(torch::equal(value, a1.at(name)));  // ranks agree
    return std::pair{a0, copies(b[0].weights)};
  };

  Named zeros = {{"weight", torch::zeros({3, 4})}, {"bias", torch::zeros({3})}};
  const Named x0 = model_part(initial);
  const auto [update_a, update_b] = train_round(0, initial);
  const auto [y_a, c_a] = by_hand(x0, zeros, zeros, data_a);
  const auto [y_b, c_b] = by_hand(x0, zeros, zeros, data_b);
  CHECK(max_difference(update_a, y_a) < 1e-5);
  CHECK(max_difference(update_b, y_b) < 1e-5);
  // The update's c tensors: c + (c_i+ - c_i), here c_i+.
  CHECK(max_difference(update_a, c_a, "scaffold.c/") < 1e-4);
  CHECK(max_difference(update_b, c_b, "scaffold.c/") < 1e-4);

  // The server (eta_g = 1, both sites of two): x + mean(y - x), c + mean(dc).
  Named global;
  for (const char* name : {"weight", "bias"}) {
    global[name] = (y_a.at(name) + y_b.at(name)) / 2;
    global[std::string("scaffold.c/") + name] = (c_a.at(name) + c_b.at(name)) / 2;
  }
  const Named c1 = {{"weight", global.at("scaffold.c/weight")},
                    {"bias", global.at("scaffold.c/bias")}};
  const auto [second_a, second_b] = train_round(1, global);
  const auto [y2_a, c2_a] = by_hand(model_part(global), c1, c_a, data_a);
  const auto [y2_b, c2_b] = by_hand(model_part(global), c1, c_b, data_b);
  CHECK(max_difference(second_a, y2_a) < 1e-5);
  CHECK(max_difference(second_b, y2_b) < 1e-5);
  for (const char* name : {"weight", "bias"}) {
    const std::string key = std::string("scaffold.c/") + name;
    CHECK((second_a.at(key) - (c1.at(name) + c2_a.at(name) - c_a.at(name))).abs().max().item<double>() < 1e-4);
    CHECK((second_b.at(key) - (c1.at(name) + c2_b.at(name) - c_b.at(name))).abs().max().item<double>() < 1e-4);
  }
  // Without the correction the second round would differ.
  CHECK(max_difference(second_a, descend(model_part(global), data_a, K, [&](const Named&) {
          return zeros;
        })) > 1e-4);
}

TEST_CASE("algorithm and fedprox_mu are checked by the base's schema, naming the option") {
  const flare::ConfigSchema schema = TinyTrainer::config_schema();
  CHECK_THROWS_WITH_AS(schema.check(json{{"algorithm", "fedsgd"}}),
                       doctest::Contains("option 'algorithm'"), flare::Error);
  CHECK_THROWS_WITH_AS(schema.check(json{{"fedprox_mu", -1}}),
                       doctest::Contains("option 'fedprox_mu'"), flare::Error);
  CHECK_NOTHROW(schema.check(json{{"algorithm", "scaffold"}}));
}

TEST_CASE("a scaffold trainer refuses a model without control variates") {
  Ranks ranks(1, 4, 2, {json{{"algorithm", "scaffold"}}});
  const Named model = model_part(copies(ranks.trainers[0]->weights()));
  CHECK_THROWS_WITH_AS(set_weights(*ranks.trainers[0], model),
                       doctest::Contains("no \"scaffold.c/\" control variates"), flare::Error);
}

TEST_CASE("scaffold's correction bypasses momentum: c_i+ does not grow with c - c_i") {
  // Through a momentum-0.9 optimizer the correction would move the weights
  // by up to 10x lr (c - c_i) a step, and c_i+ would carry that excess into
  // the next round's correction (LitNet diverged). Applied beside the
  // optimizer, it cancels out of c_i+ but for its effect on the gradients.
  const json config = with(kFullBatchSgd, {{"local_epochs", 4}, {"momentum", 0.9},
                                           {"algorithm", "scaffold"}});
  Ranks plain(1, 8, 2, {config}), shifted(1, 8, 2, {config});
  Named start = copies(plain.trainers[0]->weights());
  const double delta = 0.5;  // c for the shifted site; c_i = 0 on both
  start["scaffold.c/weight"] = torch::full({3, 4}, delta);
  start["scaffold.c/bias"] = torch::full({3}, delta);
  set_weights(*shifted.trainers[0], start);
  const Named from_plain = copies(plain.train()[0].weights);
  const Named from_shifted = copies(shifted.train()[0].weights);
  for (const char* name : {"scaffold.c/weight", "scaffold.c/bias"}) {
    // Proposals c + c_i+: 0 + c_i+ and delta + c_i+.
    const double excess =
        (from_shifted.at(name) - delta - from_plain.at(name)).abs().max().item<double>();
    INFO(std::string(name) << ": c_i+ moved by " << excess << " for c - c_i = " << delta);
    CHECK(excess < 0.1 * delta);
  }
}

namespace {

// A fresh folder under the system's temporary one, removed with the object.
struct TemporaryFolder {
  std::filesystem::path path;
  TemporaryFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "flare-scaffold-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TemporaryFolder() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("scaffold's c_i survives a restart: a group created again in its work folder continues "
          "with it, one in a fresh folder starts from zero") {
  const json config = with(kFullBatchSgd, {{"local_epochs", 2}, {"algorithm", "scaffold"}});
  const TemporaryFolder work, fresh_work;
  Ranks before(2, 6, 2, {config, config}, work.path);
  Named global = copies(before.trainers[0]->weights());
  for (auto& t : before.trainers) set_weights(*t, global);
  const Named round0 = copies(before.train(0)[0].weights);
  REQUIRE(std::filesystem::exists(work.path / "rank0" / sdk::kLocalControlFile));
  CHECK(!std::filesystem::exists(work.path / "rank1" / sdk::kLocalControlFile));  // rank 0 writes

  // Round 1 from the next global model: the group that kept running, one
  // restarted over the same folders, one in fresh folders.
  for (const char* name : {"weight", "bias"}) {
    const std::string key = std::string("scaffold.c/") + name;
    global[name] = round0.at(name);
    global[key] = round0.at(key) / 2;  // c moved half way to this site's c_i
  }
  Ranks restarted(2, 6, 2, {config, config}, work.path);
  Ranks fresh(2, 6, 2, {config, config}, fresh_work.path);
  Ranks zero_c_i(2, 6, 2, {config, config});  // no work folder
  const auto round1 = [&](Ranks& group) {
    for (auto& t : group.trainers) set_weights(*t, global);
    auto out = group.train(1);
    const Named r0 = copies(out[0].weights), r1 = copies(out[1].weights);
    for (const auto& [name, value] : r0) CHECK(torch::equal(value, r1.at(name)));  // ranks agree
    return r0;
  };
  // The restarted group first: the group that kept running saves its next c_i.
  const Named again = round1(restarted), kept = round1(before);
  const Named from_fresh = round1(fresh), from_zero = round1(zero_c_i);
  const double to_kept = max_difference(again, kept), fresh_to_zero = max_difference(from_fresh, from_zero);
  const double fresh_to_kept = max_difference(from_fresh, kept);
  INFO("restarted vs kept " << to_kept << ", fresh vs zero c_i " << fresh_to_zero
                            << ", fresh vs kept " << fresh_to_kept);
  CHECK(to_kept < 1e-5);
  CHECK(fresh_to_zero < 1e-5);
  CHECK(fresh_to_kept > 1e-3);
}

TEST_CASE("a scaffold c_i file that is not one, or of another model, is refused naming the file") {
  const json config = {{"algorithm", "scaffold"}};
  const TemporaryFolder work;
  const std::filesystem::path file = work.path / "rank0" / sdk::kLocalControlFile;
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << "not a tensor";
  Ranks garbled(1, 4, 2, {config}, work.path);
  const std::string refusal = file.string() + ": not a saved SCAFFOLD c_i";
  CHECK_THROWS_WITH_AS(garbled.trainers[0]->weights(), doctest::Contains(refusal.c_str()),
                       flare::Error);
  torch::save(torch::zeros({5}), file.string());  // the model has 15 trainable values
  Ranks other_model(1, 4, 2, {config}, work.path);
  CHECK_THROWS_WITH_AS(other_model.trainers[0]->weights(),
                       doctest::Contains("c_i of 5 Float values, the model has 15"), flare::Error);
}
