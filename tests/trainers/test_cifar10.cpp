// The cifar10 trainer plugin, loaded from its .so and driven through the C ABI
// as a worker would drive it, on small synthetic CIFAR-10-format data.
#include <flare/plugin_abi.h>

#include "cifar_format.hpp"
#include "in_process_host.hpp"
#include "temp_folder.hpp"
#include "rank_threads.hpp"

#include <dlfcn.h>
#include <unistd.h>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using flare::testing::InProcessHost;
using nlohmann::json;

namespace {

const flare_plugin_descriptor& plugin() {
  static const flare_plugin_descriptor* descriptor = [] {
    void* library = ::dlopen(FLARE_CIFAR10_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    REQUIRE_MESSAGE(library != nullptr, "dlopen " << FLARE_CIFAR10_PLUGIN << ": " << ::dlerror());
    auto entry =
        reinterpret_cast<flare_plugin_entry_fn>(::dlsym(library, FLARE_PLUGIN_ENTRY_SYMBOL));
    const bool found = entry != nullptr;
    REQUIRE_MESSAGE(found, "no " FLARE_PLUGIN_ENTRY_SYMBOL " in the plugin");
    return entry(FLARE_ABI_VERSION_MAJOR);  // the library stays loaded for the process
  }();
  return *descriptor;
}

const flare_trainer_api_v1& api() {
  return *static_cast<const flare_trainer_api_v1*>(plugin().api);
}

// 600 training / 200 test images, generated once per test run.
const fs::path& data_dir() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / ("flare-test-cifar10-" + std::to_string(::getpid()));
    flare::cifar::generate_synthetic_cifar(d, {.train_images = 600, .test_images = 200, .seed = 3});
    return d;
  }();
  return dir;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ignored;
    fs::remove_all(fs::temp_directory_path() / ("flare-test-cifar10-" + std::to_string(::getpid())),
                   ignored);
  }
} cleanup_at_exit;

struct ErrorResult {
  flare_error_code code;
  std::string message;
};

// Takes an error the plugin returned (NULL = success).
std::optional<ErrorResult> take(const flare_host_services* host, flare_error* error) {
  if (!error) return std::nullopt;
  ErrorResult r{host->error_code(error), host->error_message(error)};
  host->error_release(error);
  return r;
}

// One trainer instance with its host, destroyed at scope exit.
class Trainer {
 public:
  explicit Trainer(const json& config = json::object(), int rank = 0, int world_size = 1,
                   flare::host::Collectives* collectives = nullptr, int site = 0, int sites = 1)
      : host_(collectives) {
    const std::string dir = data_dir().string();
    flare_worker_info worker{};
    worker.struct_size = sizeof(worker);
    worker.site_name = "site-1";
    worker.site_index = site;
    worker.num_sites = sites;
    worker.rank = rank;
    worker.world_size = world_size;
    worker.local_rank = rank;
    worker.local_world_size = world_size;
    worker.device = {kDLCPU, 0};
    worker.num_threads = 1;
    worker.seed = 42;
    worker.data_dir = dir.c_str();
    worker.work_dir = dir.c_str();
    const std::string text = config.dump();
    error_ = take(host_.services(), api().create(text.c_str(), &worker, host_.services(), &handle_));
  }
  ~Trainer() {
    if (handle_) api().destroy(handle_);
  }

  const std::optional<ErrorResult>& create_error() const { return error_; }
  InProcessHost& host() { return host_; }

  std::vector<flare_named_tensor> weights() {
    const flare_named_tensor* out = nullptr;
    size_t count = 0;
    check(api().get_weights(handle_, &out, &count));
    return {out, out + count};
  }
  std::optional<ErrorResult> set_weights(const std::vector<flare_named_tensor>& w) {
    return take(host_.services(), api().set_weights(handle_, w.data(), w.size()));
  }
  std::pair<json, std::optional<ErrorResult>> evaluate(const char* split) {
    const char* text = nullptr;
    auto error = take(host_.services(), api().evaluate(handle_, split, &text));
    return {error ? json() : json::parse(text), error};
  }
  // The result's weights are copied out (the views die with the next call).
  struct Trained {
    std::vector<std::vector<float>> weights;
    double num_samples = 0;
    int64_t num_steps = 0;
    json metrics;
    std::optional<ErrorResult> error;
  };
  Trained train(int64_t round) {
    flare_round_info info{sizeof(flare_round_info), round, 10};
    flare_train_result result{};
    result.struct_size = sizeof(result);
    Trained t;
    t.error = take(host_.services(), api().train(handle_, &info, &result));
    if (t.error) return t;
    for (size_t i = 0; i < result.num_weights; ++i) t.weights.push_back(values(result.weights[i]));
    t.num_samples = result.num_samples;
    t.num_steps = result.num_steps;
    t.metrics = json::parse(result.metrics_json);
    return t;
  }

  static std::vector<float> values(const flare_named_tensor& t) {
    const auto* data = static_cast<const float*>(t.tensor.data);
    int64_t n = 1;
    for (int32_t i = 0; i < t.tensor.ndim; ++i) n *= t.tensor.shape[i];
    return {data, data + n};
  }

 private:
  void check(flare_error* error) {
    auto e = take(host_.services(), error);
    REQUIRE_MESSAGE(!e, "plugin call failed: " << (e ? e->message : ""));
  }
  InProcessHost host_;
  flare_trainer* handle_ = nullptr;
  std::optional<ErrorResult> error_;
};

// Owned copies of a model's tensors that can be handed back as views.
struct WeightsCopy {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> values;

  explicit WeightsCopy(const std::vector<flare_named_tensor>& views) {
    for (const auto& v : views) {
      names.emplace_back(v.name);
      shapes.emplace_back(v.tensor.shape, v.tensor.shape + v.tensor.ndim);
      values.push_back(Trainer::values(v));
    }
  }
  std::vector<flare_named_tensor> views() {
    std::vector<flare_named_tensor> out;
    for (size_t i = 0; i < names.size(); ++i) {
      flare_named_tensor t{};
      t.struct_size = sizeof(t);
      t.name = names[i].c_str();
      t.tensor.data = values[i].data();
      t.tensor.device = {kDLCPU, 0};
      t.tensor.ndim = static_cast<int32_t>(shapes[i].size());
      t.tensor.dtype = {kDLFloat, 32, 1};
      t.tensor.shape = shapes[i].data();
      out.push_back(t);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("the plugin is a trainer named cifar10 built for this ABI") {
  CHECK(plugin().abi_major == FLARE_ABI_VERSION_MAJOR);
  CHECK(plugin().kind == FLARE_PLUGIN_TRAINER);
  CHECK(std::string(plugin().name) == "cifar10");
  CHECK(api().struct_size >= sizeof(flare_trainer_api_v1));
}

TEST_CASE("LitNet has 62,006 float32 parameters named and shaped like the PyTorch reference") {
  Trainer trainer;
  REQUIRE_FALSE(trainer.create_error());
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected{
      {"conv1.weight", {6, 3, 5, 5}}, {"conv1.bias", {6}},   {"conv2.weight", {16, 6, 5, 5}},
      {"conv2.bias", {16}},           {"fc1.weight", {120, 400}}, {"fc1.bias", {120}},
      {"fc2.weight", {84, 120}},      {"fc2.bias", {84}},    {"fc3.weight", {10, 84}},
      {"fc3.bias", {10}}};
  const auto weights = trainer.weights();
  REQUIRE(weights.size() == expected.size());
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const DLTensor& t = weights[i].tensor;
    CHECK(std::string(weights[i].name) == expected[i].first);
    CHECK(std::vector<int64_t>(t.shape, t.shape + t.ndim) == expected[i].second);
    CHECK(t.dtype.code == kDLFloat);
    CHECK(t.dtype.bits == 32);
    CHECK(t.device.device_type == kDLCPU);
    total += static_cast<int64_t>(Trainer::values(weights[i]).size());
  }
  CHECK(total == 62006);
}

TEST_CASE("trainers created with the same seed start from identical weights") {
  Trainer a, b;
  Trainer other(json{{"seed", 7}});
  CHECK(WeightsCopy(a.weights()).values == WeightsCopy(b.weights()).values);
  CHECK(WeightsCopy(a.weights()).values != WeightsCopy(other.weights()).values);
}

TEST_CASE("set_weights then get_weights returns the values that were set") {
  Trainer trainer;
  WeightsCopy sent(trainer.weights());
  float x = 0.0f;
  for (auto& v : sent.values)
    for (float& f : v) f = (x += 0.001f);
  REQUIRE_FALSE(trainer.set_weights(sent.views()));
  CHECK(WeightsCopy(trainer.weights()).values == sent.values);
}

TEST_CASE("set_weights rejects a wrong shape, an unknown name or a missing tensor, naming it") {
  Trainer trainer;
  const WeightsCopy before(trainer.weights());
  {
    WeightsCopy wrong = before;
    wrong.shapes[4] = {400, 120};  // fc1.weight transposed
    const auto error = trainer.set_weights(wrong.views());
    REQUIRE(error);
    CHECK(error->code == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(error->message.find("fc1.weight") != std::string::npos);
  }
  {
    WeightsCopy renamed = before;
    renamed.names[9] = "fc4.bias";
    const auto error = trainer.set_weights(renamed.views());
    REQUIRE(error);
    CHECK(error->code == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(error->message.find("fc4.bias") != std::string::npos);
  }
  {
    WeightsCopy keep = before;
    auto views = keep.views();
    views.pop_back();
    const auto error = trainer.set_weights(views);
    REQUIRE(error);
    CHECK(error->message.find("fc3.bias") != std::string::npos);
  }
  CHECK(WeightsCopy(trainer.weights()).values == before.values);  // nothing half-written
}

TEST_CASE("an unknown config key is rejected naming the key") {
  Trainer trainer(json{{"lr", 0.01}, {"colour", "blue"}});
  REQUIRE(trainer.create_error());
  CHECK(trainer.create_error()->code == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(trainer.create_error()->message.find("colour") != std::string::npos);
}

TEST_CASE("a config value of the wrong type is rejected naming the key") {
  Trainer trainer(json{{"batch_size", "four"}});
  REQUIRE(trainer.create_error());
  CHECK(trainer.create_error()->code == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(trainer.create_error()->message.find("batch_size") != std::string::npos);
}

// What validate_config (ABI 1.2) says of `config` and the data in `dir`, as
// flare-run asks it before the job starts: rank 0 of the first of `sites`.
std::optional<ErrorResult> validation_of(const json& config, const fs::path& dir, int sites = 2) {
  const std::string data = dir.string(), text = config.dump();
  flare_worker_info worker{};
  worker.struct_size = sizeof(worker);
  worker.site_name = "site-1";
  worker.num_sites = sites;
  worker.world_size = 2;
  worker.local_world_size = 2;
  worker.device = {kDLCPU, 0};
  worker.num_threads = 1;
  worker.data_dir = data.c_str();
  InProcessHost host;
  REQUIRE(FLARE_HAS_FIELD(&api(), flare_trainer_api_v1, validate_config));
  return take(host.services(), api().validate_config(text.c_str(), &worker, host.services()));
}

TEST_CASE("validate_config accepts the seed job's options and a whole data set") {
  CHECK_FALSE(validation_of({{"batch_size", 4}, {"lr", 0.001}, {"momentum", 0.9},
                             {"local_epochs", 1}, {"val_fraction", 0.2}, {"shard_test_set", true}},
                            data_dir()));
}

TEST_CASE("validate_config refuses an option of the wrong type or range, naming it") {
  for (const auto& [config, key] : std::vector<std::pair<json, std::string>>{
           {{{"lr", "fast"}}, "'lr'"},
           {{{"lr", -0.1}}, "'lr'"},
           {{{"val_fraction", 1.5}}, "'val_fraction'"},
           {{{"batch_size", 0}}, "'batch_size'"},  // a base option, from the SDK
           {{{"colour", "blue"}}, "'colour'"}}) {
    const auto error = validation_of(config, data_dir());
    REQUIRE_MESSAGE(error, config.dump());
    CHECK(error->code == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK_MESSAGE(error->message.find(key) != std::string::npos, error->message);
  }
}

TEST_CASE("validate_config refuses a missing, empty or truncated data folder, naming the file") {
  flare::testing::TempFolder dir;
  auto refusal = [&] {
    const auto error = validation_of(json::object(), dir.path());
    REQUIRE(error);
    CHECK(error->code == FLARE_ERROR_IO);
    return error->message;
  };
  CHECK(refusal().find("data_batch_1.bin") != std::string::npos);  // empty folder
  flare::cifar::generate_synthetic_cifar(dir.path(), {.train_images = 50, .test_images = 10});
  CHECK_FALSE(validation_of(json::object(), dir.path()));
  fs::resize_file(dir / "data_batch_3.bin", 3 * flare::cifar::kRecordBytes - 7);
  CHECK(refusal().find("data_batch_3.bin") != std::string::npos);
  fs::resize_file(dir / "data_batch_3.bin", 0);
  CHECK(refusal().find("data_batch_3.bin: file is empty") != std::string::npos);
  fs::remove(dir / "test_batch.bin");
  fs::resize_file(dir / "data_batch_3.bin", flare::cifar::kRecordBytes);
  CHECK(refusal().find("test_batch.bin") != std::string::npos);
}

TEST_CASE("validate_config refuses shard_test_set with fewer test images than sites") {
  flare::testing::TempFolder dir;
  flare::cifar::generate_synthetic_cifar(dir.path(), {.train_images = 10, .test_images = 2});
  CHECK_FALSE(validation_of({{"shard_test_set", true}}, dir.path(), 2));
  const auto error = validation_of({{"shard_test_set", true}}, dir.path(), 3);
  REQUIRE(error);
  CHECK(error->code == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(error->message.find("shard_test_set") != std::string::npos);
}

TEST_CASE("creating a trainer reads no data; evaluating without data fails with an I/O error") {
  Trainer trainer;  // data_dir exists, but point a second one nowhere
  flare_worker_info worker{};
  worker.struct_size = sizeof(worker);
  worker.num_sites = 1;
  worker.world_size = 1;
  worker.num_threads = 1;
  worker.device = {kDLCPU, 0};
  worker.data_dir = "/nonexistent/flare-cifar";
  InProcessHost host;
  flare_trainer* handle = nullptr;
  REQUIRE_FALSE(take(host.services(), api().create("{}", &worker, host.services(), &handle)));
  const char* text = nullptr;
  const auto error = take(host.services(), api().evaluate(handle, "validation", &text));
  api().destroy(handle);
  REQUIRE(error);
  CHECK(error->code == FLARE_ERROR_IO);
}

TEST_CASE("evaluate reports loss, accuracy in [0, 1] and the split's size") {
  Trainer trainer;
  const auto [validation, error] = trainer.evaluate("validation");
  REQUIRE_FALSE(error);
  CHECK(validation["num_samples"] == 120);  // 20% of 600
  CHECK(validation["accuracy"].get<double>() >= 0.0);
  CHECK(validation["accuracy"].get<double>() <= 1.0);
  CHECK(validation["loss"].get<double>() > 0.0);
  const auto [test, test_error] = trainer.evaluate("test");
  REQUIRE_FALSE(test_error);
  CHECK(test["num_samples"] == 200);
  const auto [none, unknown] = trainer.evaluate("holdout");
  REQUIRE(unknown);
  CHECK(unknown->code == FLARE_ERROR_NOT_FOUND);
}

TEST_CASE("each site evaluates its own share of the training records") {
  Trainer first(json::object(), 0, 1, nullptr, /*site=*/0, /*sites=*/2);
  Trainer second(json::object(), 0, 1, nullptr, /*site=*/1, /*sites=*/2);
  CHECK(first.evaluate("validation").first["num_samples"] == 60);  // 20% of 300
  CHECK(second.evaluate("validation").first["num_samples"] == 60);
}

TEST_CASE("with shard_test_set the sites' test shares are disjoint and cover the batch once") {
  const json config{{"shard_test_set", true}};
  Trainer whole;
  const auto all = whole.evaluate("test").first;
  double correct = 0, loss = 0, count = 0;
  for (int site = 0; site < 3; ++site) {
    Trainer share(config, 0, 1, nullptr, site, /*sites=*/3);
    const auto [figures, error] = share.evaluate("test");
    REQUIRE_FALSE(error);
    CHECK(figures["num_samples"] == (site < 2 ? 67 : 66));  // 200 records, every third
    const double n = figures["num_samples"];
    correct += figures["accuracy"].get<double>() * n;
    loss += figures["loss"].get<double>() * n;
    count += n;
  }
  // The same initial model (same seed) on every share: the weighted means are
  // the whole batch's figures.
  CHECK(count == all["num_samples"].get<double>());
  CHECK(correct / count == doctest::Approx(all["accuracy"].get<double>()));
  CHECK(loss / count == doctest::Approx(all["loss"].get<double>()).epsilon(1e-5));
}

TEST_CASE("shard_test_set with more sites than test images is refused, saying why") {
  Trainer share({{"shard_test_set", true}}, 0, 1, nullptr, /*site=*/0, /*sites=*/201);
  const auto [figures, error] = share.evaluate("test");
  REQUIRE(error);
  CHECK(error->code == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(error->message.find("shard_test_set") != std::string::npos);
}

TEST_CASE("a few epochs on synthetic data lower the training loss") {
  Trainer trainer(json{{"lr", 0.01}, {"local_epochs", 2}});
  const auto first = trainer.train(0);
  REQUIRE_FALSE(first.error);
  CHECK(first.num_samples == 2 * 480);
  CHECK(first.num_steps == 2 * 120);
  const auto second = trainer.train(1);
  REQUIRE_FALSE(second.error);
  const double before = first.metrics["train_loss"], after = second.metrics["train_loss"];
  INFO("train_loss " << before << " then " << after);
  CHECK(after < before);
  CHECK(second.metrics["train_accuracy"].get<double>() > first.metrics["train_accuracy"].get<double>());
  CHECK(trainer.host().progress_reports() > 0);
  const auto lines = trainer.host().log_lines();
  CHECK(std::any_of(lines.begin(), lines.end(),
                    [](const std::string& l) { return l.find("480 train") != std::string::npos; }));
}

TEST_CASE("a cancelled host stops training with FLARE_ERROR_CANCELLED") {
  Trainer trainer;
  trainer.host().cancel = true;
  const auto result = trainer.train(0);
  REQUIRE(result.error);
  CHECK(result.error->code == FLARE_ERROR_CANCELLED);
}

TEST_CASE("two ranks of a site evaluate alike and train in lockstep to the same weights") {
  // 599 records: a 479-sample training split the two ranks cannot halve evenly.
  const json config{{"max_train", 599}};
  auto group = flare::testing::form_group(2);
  // Created one after the other: the seeding is per process in a real worker.
  Trainer rank0(config, 0, 2, group[0].get());
  Trainer rank1(config, 1, 2, group[1].get());
  Trainer* ranks[] = {&rank0, &rank1};
  const auto results = flare::testing::on_every_rank(2, [&](int r) {
    auto evaluated = ranks[r]->evaluate("validation").first;
    auto trained = ranks[r]->train(0);
    return std::make_pair(evaluated, std::move(trained));
  });
  const auto& [eval0, train0] = results[0];
  const auto& [eval1, train1] = results[1];
  CHECK(eval0 == eval1);
  CHECK(eval0["num_samples"] == 120);  // round(599 * 0.2)
  REQUIRE_FALSE(train0.error);
  REQUIRE_FALSE(train1.error);
  CHECK(train0.num_samples == 479);
  CHECK(train0.num_steps == 60);  // ceil(ceil(479 / 2) / 4)
  CHECK(train1.num_steps == 60);
  CHECK(train0.metrics == train1.metrics);
  CHECK(train0.weights == train1.weights);
}
