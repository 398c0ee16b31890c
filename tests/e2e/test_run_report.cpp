// Every run leaves report.html: its charts hold the numbers of metrics.jsonl,
// and a real headless browser draws every one of them (render_report.py).
// The best model follows server.key_metric_mode end to end.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "e2e_support.hpp"
#include "report/report_page.hpp"
#include "report_reading.hpp"

using namespace flare::e2e;
using flare::testing::DrawnPoints;
using flare::testing::drawn_series;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The (round, figure) points of `lines` where the figure is there.
DrawnPoints points_of(const std::vector<nlohmann::json>& lines, const std::string& figure,
                      const std::string& site = "", bool received = false) {
  DrawnPoints points;
  for (const auto& line : lines) {
    if (!site.empty() && line["site"] != site) continue;
    const auto& holder = received ? line["received_model"] : line;
    if (holder.contains(figure))
      points.emplace_back(line["round"].get<double>(), holder[figure].get<double>());
  }
  return points;
}

}  // namespace

TEST_CASE("a run's report.html draws what metrics.jsonl holds, and a browser renders every chart") {
  TempFolder dir;
  const fs::path job = dir.path() / "job.toml";
  // Accuracy grows each round: "min" makes round 1's model the best (the
  // initial model is never a candidate), where "auto" would pick each round's.
  write_text(job, c_trainer_job(dir.path() / "ws", 3, "", "devices = 1") +
                      "key_metric_mode = \"min\"\n");
  const auto r = run_command({FLARE_RUN_BIN, job.string()}, 120);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(mentions(r.output, "report: " + (run / "report.html").string()));

  const auto globals = lines_of_kind(run, "global");
  const auto sites = lines_of_kind(run, "site");
  REQUIRE(globals.size() == 4);
  REQUIRE(sites.size() == 6);
  for (const auto& g : globals) CHECK(g["best"] == (g["round"] == 1));

  const std::string html = read_text(run / "report.html");
  CHECK(drawn_series(html, "global-accuracy").at("val_acc") == points_of(globals, "val_acc"));
  CHECK(drawn_series(html, "global-accuracy").at("test_acc") == points_of(globals, "test_acc"));
  CHECK(drawn_series(html, "global-loss").at("val_loss") == points_of(globals, "val_loss"));
  for (const std::string site : {"site-1", "site-2"}) {
    CAPTURE(site);
    CHECK(drawn_series(html, "site-loss").at(site + " train_loss") ==
          points_of(sites, "train_loss", site));
    CHECK(drawn_series(html, "site-accuracy").at(site + " val_acc") ==
          points_of(sites, "val_acc", site, true));
    CHECK(drawn_series(html, "throughput").at(site) == points_of(sites, "images_per_s", site));
  }
  CHECK(mentions(html, "the global model after round 1: val_acc"));
  CHECK(mentions(html, "key_metric_mode min"));

  // Per-step training figures, as sites' rank 0 streams them (generated here).
  {
    std::ofstream metrics(run / "metrics.jsonl", std::ios::app);
    for (int step = 1; step <= 30; ++step)
      for (int site = 1; site <= 2; ++site)
        metrics << nlohmann::json{{"kind", "train_step"}, {"site", "site-" + std::to_string(site)},
                                  {"round", 1 + (step - 1) / 10}, {"step", step}, {"epoch", 0},
                                  {"train_loss", 2.0 / (step + site)},
                                  {"images_per_s", 1000.0 + 10 * step}}
                       .dump()
                << "\n";
  }
  flare::report::write_run_report(run);
  const std::string with_steps = read_text(run / "report.html");
  const auto step_loss = drawn_series(with_steps, "step-train_loss");
  REQUIRE(step_loss.count("site-2") == 1);
  CHECK(step_loss.at("site-2").size() == 30);
  CHECK(step_loss.at("site-2")[4] == std::pair<double, double>{5, 2.0 / 7});

  const auto render = run_command({"/usr/bin/python3", FLARE_SOURCE_DIR "/tests/e2e/render_report.py",
                                   (run / "report.html").string(), (dir.path() / "report.png").string()},
                                  150);
  INFO(render.output);
  CHECK(render.exit_code == 0);
  // Five per-round charts and two per-step ones, each reported drawn.
  int drawn = 0;
  for (size_t at = render.output.find(" drew: "); at != std::string::npos;
       at = render.output.find(" drew: ", at + 1))
    ++drawn;
  CHECK(drawn == 7);
}

TEST_CASE("a failed run leaves a report too, saying why, with what was measured") {
  TempFolder dir;
  const fs::path job = dir.path() / "job.toml";
  write_text(job, c_trainer_job(dir.path() / "ws", 3, "throw_in_round = 1", "devices = 1"));
  const auto r = run_command({FLARE_RUN_BIN, job.string()}, 120);
  INFO(r.output);
  REQUIRE(r.exit_code != 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(mentions(r.output, "report: " + (run / "report.html").string()));
  const std::string html = read_text(run / "report.html");
  CHECK(mentions(html, ">failed</span> (rounds completed: 1)"));
  CHECK(mentions(html, "injected failure: the disk is full"));
  CHECK(drawn_series(html, "global-accuracy").at("val_acc") ==
        points_of(lines_of_kind(run, "global"), "val_acc"));
}
