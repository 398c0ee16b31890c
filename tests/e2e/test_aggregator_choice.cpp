// The aggregator is one line of the job spec: swapping it changes the global
// model and nothing else, and with one site poisoning its update (weights x
// 1e6) the robust aggregators keep the model where the honest sites agree
// while fedavg does not. The plain-C trainer: honest site i sends its model
// plus 1 + i / 100, so the honest values after round 1 are 1.00 .. 1.03.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  float round_1 = 0, round_2 = 0;
  fs::path run;
};

// `sites` sites of one rank, 2 rounds, site `poisoned` (0-based) sending its
// weights x `scale`, aggregated by the [aggregator] table `aggregator`.
Outcome run_job(const TempFolder& dir, const std::string& name, int sites, int poisoned,
                long scale, const std::string& aggregator) {
  const fs::path job = dir.path() / (name + ".toml");
  write_text(job, c_trainer_job(dir.path() / name, 2,
                                "site_spread = 1\npoison_site = " + std::to_string(poisoned) +
                                    "\npoison_scale = " + std::to_string(scale),
                                "devices = 1", sites, aggregator));
  const auto r = run_command({FLARE_RUN_BIN, job.string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Outcome o;
  o.run = dir.path() / name / "run-1";
  o.round_1 = first_weight(o.run / "models" / "global_round_1.safetensors");
  o.round_2 = first_weight(o.run / "models" / "global_round_2.safetensors");
  return o;
}

}  // namespace

TEST_CASE("one poisoned site of five: robust aggregators keep the honest sites' model, fedavg does not") {
  TempFolder dir;
  const Outcome fedavg = run_job(dir, "fedavg", 5, 4, 1000000, "plugin = \"fedavg\"");
  CHECK(fedavg.round_1 > 1000.0f);  // the poisoned update dominates the mean

  // Honest updates after round 1 are 1.00, 1.01, 1.02, 1.03: the robust
  // result lies among them; after round 2, one step (about 1) further.
  for (const char* table : {"plugin = \"median\"",
                            "plugin = \"trimmed_mean\"\n[aggregator.config]\nbeta = 0.2",
                            "plugin = \"krum\"\n[aggregator.config]\nf = 1",
                            "plugin = \"multi_krum\"\n[aggregator.config]\nf = 1\nm = 3"}) {
    CAPTURE(table);
    const std::string name = std::string(table).substr(10, std::string(table).find('"', 10) - 10);
    const Outcome robust = run_job(dir, name, 5, 4, 1000000, table);
    CHECK(robust.round_1 >= 0.999f);
    CHECK(robust.round_1 <= 1.031f);
    CHECK(robust.round_2 >= 1.999f);
    CHECK(robust.round_2 <= 2.062f);
  }
}

TEST_CASE("one poisoned site of seven: bulyan, which needs n >= 4f + 3, keeps the honest model") {
  TempFolder dir;
  const Outcome bulyan =
      run_job(dir, "bulyan", 7, 6, 1000000, "plugin = \"bulyan\"\n[aggregator.config]\nf = 1");
  CHECK(bulyan.round_1 >= 0.999f);
  CHECK(bulyan.round_1 <= 1.051f);  // honest: 1.00 .. 1.05
}

TEST_CASE("switching the aggregator in the job spec changes the global model and nothing else") {
  TempFolder dir;
  // Site 5 sends twice its model: a mean and a median differ.
  const Outcome mean = run_job(dir, "mean", 5, 4, 2, "plugin = \"fedavg\"");
  const Outcome median = run_job(dir, "median", 5, 4, 2, "plugin = \"median\"");
  CHECK(mean.round_1 == doctest::Approx((1.00 + 1.01 + 1.02 + 1.03 + 2 * 1.04) / 5).epsilon(1e-5));
  CHECK(median.round_1 == doctest::Approx(1.02).epsilon(1e-5));
  // Round 1's training started from the same initial model: the same site
  // lines (samples, metrics), whatever aggregates them afterwards.
  auto round_1_sites = [](const fs::path& run) {
    std::vector<nlohmann::json> lines;
    for (auto line : lines_of_kind(run, "site")) {
      if (line["round"] != 1) continue;
      for (const char* timing : {"train_seconds", "images_per_s", "seconds"}) line.erase(timing);
      lines.push_back(line);
    }
    // In the order the sites finished, which varies from run to run.
    std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) {
      return a["site"].template get<std::string>() < b["site"].template get<std::string>();
    });
    return lines;
  };
  CHECK(round_1_sites(mean.run) == round_1_sites(median.run));
  CHECK(round_1_sites(mean.run).size() == 5);
  CHECK(job_line(mean.run) == job_line(median.run));
}
