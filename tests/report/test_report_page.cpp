#include <doctest/doctest.h>

#include <fstream>
#include <iomanip>
#include <sstream>

#include "report/report_page.hpp"
#include "report/svg_chart.hpp"
#include "report_reading.hpp"
#include "temp_folder.hpp"

using namespace flare::report;
using flare::testing::TempFolder;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A run folder of two sites and two rounds, as flare-run leaves it.
struct RunFolderFixture {
  TempFolder dir;
  fs::path run = dir / "run-1";

  explicit RunFolderFixture(const std::string& extra_lines = "",
                            const std::string& job_name = "two-sites") {
    fs::create_directories(run / "models");
    std::ofstream(run / "job.toml") << "[job]\nname = \"" << job_name
                                    << "\"\nnum_rounds = 2\n[server]\nkey_metric = \"val_loss\"\n"
                                       "key_metric_mode = \"min\"\n";
    for (const char* model : {"global_round_0.safetensors", "global_round_1.safetensors",
                              "global_round_2.safetensors", "best.safetensors"})
      std::ofstream(run / "models" / model) << "0123456789";
    std::ofstream metrics(run / "metrics.jsonl");
    metrics << std::setprecision(17);  // the text reads back as the very double
    for (int round = 1; round <= 2; ++round) {
      for (int site = 1; site <= 2; ++site) {
        metrics << R"({"kind":"site","round":)" << round << R"(,"site":"site-)" << site
                << R"(","num_samples":40.0,"num_steps":4,"train_seconds":0.5,"images_per_s":)"
                << 80 + round * 10 + site << R"(,"train_loss":)" << 1.0 / (round + site)
                << R"(,"received_model":{"val_acc":)" << 0.1 * round + 0.01 * site
                << R"(,"val_loss":)" << 2.0 - 0.5 * round << "}}\n";
      }
    }
    for (int round = 0; round <= 2; ++round) {
      metrics << R"({"kind":"global","round":)" << round << R"(,"best":)"
              << (round == 2 ? "true" : "false") << R"(,"model":"global_round_)" << round
              << R"(.safetensors","val_acc":)" << 0.1 + 0.3 * round << R"(,"val_loss":)"
              << 2.3 - 0.7 * round << R"(,"test_acc":)" << 0.12 + 0.3 * round;
      if (round > 0) metrics << R"(,"round_seconds":1.25,"images_per_s":)" << 150 + round;
      metrics << "}\n";
    }
    metrics << extra_lines;
  }
  std::string page() const { return read_text(write_run_report(run)); }
};

}  // namespace

TEST_CASE("the page draws the global and site figures per round as metrics.jsonl has them") {
  RunFolderFixture f;
  const std::string html = f.page();
  using flare::testing::DrawnPoints;
  using flare::testing::drawn_series;

  const auto global = drawn_series(html, "global-accuracy");
  CHECK(global.at("val_acc") == DrawnPoints{{0, 0.1}, {1, 0.1 + 0.3}, {2, 0.1 + 0.6}});
  CHECK(global.at("test_acc") == DrawnPoints{{0, 0.12}, {1, 0.12 + 0.3}, {2, 0.12 + 0.6}});
  CHECK(drawn_series(html, "global-loss").at("val_loss") ==
        DrawnPoints{{0, 2.3}, {1, 2.3 - 0.7}, {2, 2.3 - 1.4}});

  const auto site_loss = drawn_series(html, "site-loss");
  CHECK(site_loss.at("site-2 train_loss") == DrawnPoints{{1, 1.0 / 3}, {2, 1.0 / 4}});
  CHECK(site_loss.at("site-1 val_loss") == DrawnPoints{{1, 1.5}, {2, 1.0}});
  CHECK(drawn_series(html, "site-accuracy").at("site-1 val_acc") ==
        DrawnPoints{{1, 0.1 + 0.01}, {2, 0.2 + 0.01}});

  const auto throughput = drawn_series(html, "throughput");
  CHECK(throughput.at("site-1") == DrawnPoints{{1, 91}, {2, 101}});
  CHECK(throughput.at("all sites") == DrawnPoints{{1, 151}, {2, 152}});
  // No train_step lines: no per-step chart.
  CHECK_FALSE(contains(html, "id=\"step-"));
  CHECK(flare::testing::chart_count(html) == 5);
}

TEST_CASE("train_step lines give one chart per figure, train_loss first, a series per site") {
  RunFolderFixture f(
      R"({"kind":"train_step","site":"site-1","round":1,"step":10,"epoch":0,"images_per_s":900.5,"train_loss":2.25})" "\n"
      R"({"kind":"train_step","site":"site-2","round":1,"step":10,"epoch":0,"images_per_s":880.0,"train_loss":2.5})" "\n"
      R"({"kind":"train_step","site":"site-1","round":2,"step":20,"epoch":1,"images_per_s":910.0,"train_loss":1.75})" "\n");
  const std::string html = f.page();
  const auto loss = flare::testing::drawn_series(html, "step-train_loss");
  CHECK(loss.at("site-1") == flare::testing::DrawnPoints{{10, 2.25}, {20, 1.75}});
  CHECK(loss.at("site-2") == flare::testing::DrawnPoints{{10, 2.5}});
  CHECK(flare::testing::drawn_series(html, "step-images_per_s").at("site-1") ==
        flare::testing::DrawnPoints{{10, 900.5}, {20, 910.0}});
  CHECK(html.find("id=\"step-train_loss\"") < html.find("id=\"step-images_per_s\""));
  CHECK_FALSE(contains(html, "id=\"step-epoch\""));  // the epoch places a point, it is no figure
}

TEST_CASE("the charts lie in two columns under the header, where their boxes say") {
  RunFolderFixture f;
  const std::string html = f.page();
  const std::string first = "data-page-left=\"" + std::to_string(kChartGap) +
                            "\" data-page-top=\"" + std::to_string(kHeaderHeight + kChartGap) +
                            "\"><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"global-accuracy\"";
  CHECK_MESSAGE(contains(html, first), "expected " << first);
  const std::string third = "data-page-left=\"" + std::to_string(kChartGap) +
                            "\" data-page-top=\"" +
                            std::to_string(kHeaderHeight + 2 * kChartGap + kChartHeight) +
                            "\"><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"site-accuracy\"";
  CHECK_MESSAGE(contains(html, third), "expected " << third);
  CHECK(contains(html, "header{height:" + std::to_string(kHeaderHeight) + "px"));
}

TEST_CASE("the header names the status, the best model by the job's key metric, and the folder") {
  RunFolderFixture f(R"({"kind":"job","status":"succeeded","rounds_completed":2})" "\n");
  const std::string html = f.page();
  CHECK(contains(html, ">succeeded</span> (rounds completed: 2)"));
  CHECK(contains(html, "Best model: models/best.safetensors, the global model after round 2: "
                       "val_loss 0.9 (key metric val_loss, key_metric_mode min)"));
  CHECK(contains(html, "Run folder: " + f.run.string()));
  // Every model file, with what it is and where.
  CHECK(contains(html, (f.run / "models" / "best.safetensors").string() +
                           "</td><td class=\"text\">the best global model (round 2)</td><td>10</td>"));
  CHECK(contains(html, "<td class=\"text\">the global model after round 1</td>"));
  CHECK(contains(html, "<td class=\"text\">the initial global model</td>"));
  // The resolved settings and the timings per round.
  CHECK(contains(html, "key_metric_mode = &quot;min&quot;"));
  CHECK(contains(html, "<th>round_seconds</th>"));
  CHECK(contains(html, "<td>1.25</td>"));
}

TEST_CASE("text from the job and from metrics.jsonl is escaped") {
  RunFolderFixture f(
      R"({"kind":"warning","about":"x","message":"<img src=x onerror=alert(1)>"})" "\n"
      R"({"kind":"job","status":"failed","reason":"site-1 said </pre><script>alert(2)</script>","rounds_completed":2})" "\n",
      "<script>alert(3)</script>");
  const std::string html = f.page();
  CHECK_FALSE(contains(html, "<script"));
  CHECK_FALSE(contains(html, "<img"));
  CHECK(contains(html, "&lt;script&gt;alert(3)&lt;/script&gt;"));
  CHECK(contains(html, "warning: &lt;img src=x onerror=alert(1)&gt;"));
  CHECK(contains(html, ">failed</span> (rounds completed: 2): site-1 said &lt;/pre&gt;"));
}

TEST_CASE("the page fetches nothing: no script, stylesheet, font or image from anywhere") {
  RunFolderFixture f(R"({"kind":"job","status":"succeeded","rounds_completed":2})" "\n");
  std::string html = f.page();
  // The SVG namespace is a name, not a fetch.
  for (size_t at; (at = html.find("xmlns=\"http://www.w3.org/2000/svg\"")) != std::string::npos;)
    html.erase(at, 34);
  for (const char* fetch : {"<script", "<link", "<img", "src=", "href=", "url(", "@import",
                            "http:", "https:"})
    CHECK_MESSAGE(!contains(html, fetch), "the page holds " << fetch);
}

TEST_CASE("a run that ended before anything was measured still gets a page saying so") {
  TempFolder dir;
  fs::create_directories(dir / "run-1");
  const std::string html = read_text(write_run_report(dir / "run-1"));
  CHECK(contains(html, "Nothing was measured yet."));
  CHECK(contains(html, "no end recorded"));
  CHECK(contains(html, "Best model: none yet"));
  CHECK(contains(html, "(job.toml unreadable)"));
  CHECK(flare::testing::chart_count(html) == 0);
}

TEST_CASE("writing the report replaces the last one whole and leaves no temp file") {
  RunFolderFixture f;
  std::ofstream(f.run / "report.html") << "stale";
  const fs::path file = write_run_report(f.run);
  CHECK(file == f.run / "report.html");
  CHECK(read_text(file).starts_with("<!DOCTYPE html>"));
  for (const auto& entry : fs::directory_iterator(f.run))
    CHECK_MESSAGE(!entry.path().filename().string().starts_with(".report.html"),
                  "left behind: " << entry.path());
}
