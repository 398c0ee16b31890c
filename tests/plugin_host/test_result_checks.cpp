// What a plugin hands back is checked before the host uses it: the fixtures
// garbage_trainer and garbage_aggregator return, one kind per config, what a
// buggy plugin would, and each must be refused naming the plugin, its file,
// the call and what was wrong.
#include "plugin_host/plugin_instances.hpp"

#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "plugin_fixtures.hpp"

using namespace flare::host;

namespace {

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;

// The text of the PluginCallError `call` throws, or "" when it throws none.
template <class F>
std::string refusal(F&& call) {
  try {
    call();
  } catch (const PluginCallError& e) {
    return e.what();
  }
  return "";
}

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

void check_names_everything(const std::string& message, const std::string& plugin,
                            const std::string& call, const std::string& problem) {
  INFO("the host said: " << message);
  CHECK(mentions(message, "plugin '" + plugin + "'"));
  CHECK(mentions(message, (fixtures / ("libflare_" + plugin + ".so")).string()));
  CHECK(mentions(message, call));
  CHECK(mentions(message, problem));
}

std::string config(const std::string& garbage) {
  return garbage.empty() ? "{}" : R"({"garbage": ")" + garbage + R"("})";
}

// A round, then finalize: what the host says about the aggregator's result.
std::string finalize_refusal(const std::string& garbage) {
  const HostServices host;
  AggregatorInstance aggregator(
      load_plugin({"garbage_aggregator", {}, {fixtures}}, FLARE_PLUGIN_AGGREGATOR),
      config(garbage), host);
  flare::testing::run_round(aggregator);
  return refusal([&] { aggregator.finalize(); });
}

struct Trainer {
  explicit Trainer(const std::string& garbage)
      : instance(load_plugin({"garbage_trainer", {}, {fixtures}}, FLARE_PLUGIN_TRAINER),
                 config(garbage), flare::testing::site_one(), host) {}
  HostServices host;
  TrainerInstance instance;

  // Gives the trainer the model w = [0, 0, 0, 0], as a worker does each round.
  void set_model() {
    float w[4] = {};
    int64_t shape[1] = {4};
    const flare_named_tensor model = flare::tensor_view("w", w, {kDLFloat, 32, 1}, shape, 1);
    instance.set_weights({&model, 1});
  }
  std::string train() {
    return refusal([&] { instance.train({sizeof(flare_round_info), 0, 1}); });
  }
};

// Each garbage kind and a piece of the host's description of it.
using Cases = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("a correct aggregator's and trainer's results pass every check") {
  CHECK(finalize_refusal("") == "");
  Trainer trainer("");
  CHECK(refusal([&] { trainer.instance.get_weights(); }) == "");
  trainer.set_model();
  CHECK(trainer.train() == "");
  CHECK(refusal([&] { trainer.instance.evaluate("test"); }) == "");
  // A label and a figure it could not measure (null) are fine too.
  Trainer unmeasured("unmeasured");
  CHECK(refusal([&] { unmeasured.instance.evaluate("validation"); }) == "");
}

TEST_CASE("a global model with a NULL name, NULL data or non-finite values is refused") {
  for (const auto& [garbage, problem] :
       Cases{{"null_name", "tensor 0 has no name (NULL)"},
             {"null_data", "tensor 'w' of shape [4] has no data (NULL)"},
             {"nan", "tensor 'w' holds NaN (value 3 of 4)"},
             {"infinity", "tensor 'w' holds an infinity (value 0 of 4)"},
             {"null_array", "1 tensors at NULL"},
             {"no_tensors", "no tensors"}}) {
    CAPTURE(garbage);
    check_names_everything(finalize_refusal(garbage), "garbage_aggregator", "finalize", problem);
  }
}

TEST_CASE("a global model that differs from the round's model is refused, saying how") {
  for (const auto& [garbage, problem] :
       Cases{{"wrong_shape", "tensor 0 'w' has shape [7], the model's is [4]"},
             {"wrong_name", "tensor 0 'v' where the model has 'w'"},
             {"wrong_dtype", "tensor 0 'w' is float64, the model's is float32"}}) {
    CAPTURE(garbage);
    check_names_everything(finalize_refusal(garbage), "garbage_aggregator", "finalize", problem);
  }
}

TEST_CASE("absurd shapes are refused before anything is allocated") {
  for (const auto& [garbage, problem] :
       Cases{{"huge_shape", "shape [1099511627776] (4.0 TiB of float32), more than this "
                            "machine's memory"},
             {"negative_shape", "tensor 'w' has a negative extent in its shape [-4]"},
             {"overflow_shape", "shape [2147483648, 2147483648, 2147483648], whose size "
                                "overflows 64 bits"}}) {
    CAPTURE(garbage);
    check_names_everything(finalize_refusal(garbage), "garbage_aggregator", "finalize", problem);
    Trainer trainer(garbage);
    check_names_everything(refusal([&] { trainer.instance.get_weights(); }), "garbage_trainer",
                           "get_weights", problem);
  }
}

TEST_CASE("a trainer's model with a NULL name or data, NaN, two names alike or on a GPU is refused") {
  for (const auto& [garbage, problem] :
       Cases{{"null_name", "tensor 0 has no name (NULL)"},
             {"null_data", "has no data (NULL)"},
             {"nan_model", "tensor 'w' holds NaN (value 1 of 4)"},
             {"duplicate_name", "two tensors are named 'w'"},
             {"gpu_tensor", "tensor 'w' is on device type 2, not in CPU memory"}}) {
    CAPTURE(garbage);
    Trainer trainer(garbage);
    check_names_everything(refusal([&] { trainer.instance.get_weights(); }), "garbage_trainer",
                           "get_weights", problem);
  }
}

TEST_CASE("a training result with wrong metrics, counts, metadata or shape is refused") {
  for (const auto& [garbage, problem] :
       Cases{{"string_train_loss", "gives 'train_loss' as a string ('\"low\"'), not a number"},
             {"metrics_not_json", "its metrics JSON is not JSON: 'train_loss=0.5'"},
             {"metrics_array", "its metrics JSON is a JSON array, not an object"},
             {"nan_samples", "num_samples is nan, not a count"},
             {"meta_not_object", "its meta JSON is a JSON string, not an object"},
             {"train_wrong_shape", "tensor 0 'w' has shape [7], the model's is [4]"}}) {
    CAPTURE(garbage);
    Trainer trainer(garbage);
    trainer.set_model();
    check_names_everything(trainer.train(), "garbage_trainer", "train", problem);
  }
}

TEST_CASE("evaluation metrics that are not a JSON object of numbers are refused") {
  for (const auto& [garbage, problem] :
       Cases{{"eval_not_json", "its metrics JSON is not JSON: 'accuracy: high'"},
             {"eval_array", "its metrics JSON is a JSON array, not an object"},
             {"eval_null", "its metrics JSON is missing (NULL)"},
             {"eval_samples_string", "gives 'num_samples' as a string ('\"ten\"'), not a number"}}) {
    CAPTURE(garbage);
    Trainer trainer(garbage);
    check_names_everything(refusal([&] { trainer.instance.evaluate("validation"); }),
                           "garbage_trainer", "evaluate", problem);
  }
}

TEST_CASE("an error the aggregator returns names it and the call") {
  check_names_everything(finalize_refusal("error"), "garbage_aggregator",
                         "finalize failed with FLARE_ERROR_INTERNAL", "the update was lost");
}
