// The seed job for real: flare-run with the cifar10 trainer (LitNet, DDP over
// Gloo) and FedAvg, 2 sites x 2 ranks x 2 rounds on generated CIFAR-format data;
// then SCAFFOLD on a Dirichlet label split.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <vector>

#include "cifar_format.hpp"
#include "e2e_support.hpp"
#include "storage/safetensors.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

TEST_CASE("the seed job trains LitNet across two sites and beats chance") {
  TempFolder dir;
  flare::cifar::generate_synthetic_cifar(dir.path() / "data",
                                         {.train_images = 4000, .test_images = 1000, .seed = 7});
  write_text(dir.path() / "job.toml",
             "[job]\nname = \"e2e-cifar10\"\nnum_rounds = 2\nworkspace = \"ws\"\n"
             "[clients]\ncount = 2\ndevices = 2\n[data]\ndir = \"data\"\n"
             "[trainer]\nplugin = \"cifar10\"\n[trainer.config]\nlr = 0.01\n"
             "[aggregator]\nplugin = \"fedavg\"\n");
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 500);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  const fs::path run = dir.path() / "ws" / "run-1";
  for (const char* model : {"global_round_0", "global_round_1", "global_round_2", "best"}) {
    const auto file = flare::storage::load_safetensors(run / "models" / (std::string(model) +
                                                                          ".safetensors"));
    int64_t params = 0;
    for (const auto& t : file.tensors)
      params += std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<>());
    CHECK_MESSAGE(params == 62006, model << " holds " << params << " parameters");
  }
  double initial_test = -1, final_test = -1;
  int site_lines = 0;
  for (const auto& line : read_json_lines(run / "metrics.jsonl")) {
    if (line["kind"] == "site") {
      ++site_lines;
      CHECK(line["num_samples"].get<double>() > 0);
      continue;
    }
    if (line["kind"] != "global") continue;
    if (line["round"] == 0) initial_test = line["test_acc"].get<double>();
    if (line["round"] == 2) final_test = line["test_acc"].get<double>();
  }
  CHECK(site_lines == 4);
  CHECK(job_line(run)["status"] == "succeeded");
  CHECK_MESSAGE(final_test > 0.2, "test accuracy after 2 rounds: " << final_test);
  CHECK(final_test > initial_test);
  for (const char* log : {"site-1.rank0.log", "site-1.rank1.log", "site-2.rank0.log",
                          "site-2.rank1.log", "server.log"})
    CHECK(fs::exists(run / "logs" / log));
}

TEST_CASE("scaffold on a dirichlet split: c travels in the model, each site writes its labels") {
  TempFolder dir;
  flare::cifar::generate_synthetic_cifar(dir.path() / "data",
                                         {.train_images = 1000, .test_images = 200, .seed = 7});
  write_text(dir.path() / "job.toml",
             "[job]\nname = \"e2e-scaffold\"\nnum_rounds = 2\nseed = 5\nworkspace = \"ws\"\n"
             "[clients]\ncount = 2\ndevices = 1\n"
             "[data]\ndir = \"data\"\nsplit = \"dirichlet\"\nalpha = 0.2\n"
             "[trainer]\nplugin = \"cifar10\"\n[trainer.config]\nlr = 0.01\n"
             "algorithm = \"scaffold\"\n"
             "[aggregator]\nplugin = \"scaffold\"\n");
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 300);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(job_line(run)["status"] == "succeeded");

  int64_t control = 0, weights = 0;
  double largest_c = 0;
  for (const auto& t : flare::storage::load_safetensors(run / "models/global_round_2.safetensors")
                           .tensors) {
    const int64_t n =
        std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<>());
    if (!t.name.starts_with("scaffold.c/")) {
      weights += n;
      continue;
    }
    control += n;
    const auto* c = reinterpret_cast<const float*>(t.data.data());
    for (int64_t i = 0; i < n; ++i) largest_c = std::max(largest_c, std::abs(double{c[i]}));
  }
  CHECK(weights == 62006);
  CHECK(control == 62006);  // one variate per trainable parameter
  CHECK(largest_c > 0);     // the sites' corrections reached the server

  // Each site's train labels per class; the two sites' differ (alpha 0.2).
  std::vector<nlohmann::json> histograms;
  for (const char* site : {"site-1", "site-2"}) {
    const fs::path file = run / "sites" / site / "rank0" / "label_histogram.json";
    REQUIRE(fs::exists(file));
    std::ifstream in(file);
    histograms.push_back(nlohmann::json::parse(in));
    CHECK(histograms.back()["split"] == "dirichlet");
    CHECK(histograms.back()["train"].size() == 10);
  }
  CHECK(histograms[0]["train"] != histograms[1]["train"]);
}
