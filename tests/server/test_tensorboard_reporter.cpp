// The TensorBoard tracker as the controller drives it: a run folder per site
// and one for the global model, written through at each round's end, and a
// folder it cannot write said once, never thrown at the job.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <spdlog/sinks/null_sink.h>

#include "server/tensorboard_reporter.hpp"
#include "temp_folder.hpp"

using namespace flare;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<spdlog::logger> quiet_log() {
  return std::make_shared<spdlog::logger>("server", std::make_shared<spdlog::sinks::null_sink_mt>());
}

struct Tracker {
  std::ostringstream screen;
  server::ProgressDisplay display{screen, false, 3};
  server::TensorBoardReporter tracker;
  explicit Tracker(const fs::path& root) : tracker(root, display, quiet_log()) {}
};

fs::path only_file_in(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  return files[0];
}

const server::SiteMetrics kStepFigures{.site = "site-1",
                                       .generation = 0,
                                       .points = {{"train_loss", 1.5, 50, 0, 0}},
                                       .dropped = {}};

}  // namespace

TEST_CASE("figures go to a run folder per site and one for the global model, flushed at round "
          "end") {
  testing::TempFolder dir;
  Tracker t(dir / "tensorboard");
  t.tracker.site_metrics(kStepFigures);
  const fs::path site_file = only_file_in(dir / "tensorboard" / "site-1");
  CHECK(site_file.filename().string().rfind("events.out.tfevents.", 0) == 0);
  const auto before = fs::file_size(site_file);  // the file_version event, written at once
  CHECK(before > 16);
  t.tracker.round_aggregated(server::GlobalModel(1, {}), {}, nlohmann::json::object());
  CHECK(fs::file_size(site_file) > before);
  server::RoundFigures figures;
  figures.model_round = 1;
  figures.metrics = {{"val_acc", 0.5}};
  t.tracker.model_measured(figures, {});
  t.tracker.job_finished();
  CHECK(fs::file_size(only_file_in(dir / "tensorboard" / "global")) > before);
}

TEST_CASE("a folder that cannot be written is said once, and tracking stops without failing the "
          "job") {
  testing::TempFolder dir;
  std::ofstream(dir / "a-file") << "not a folder";
  Tracker t(dir / "a-file" / "tensorboard");
  CHECK_NOTHROW(t.tracker.site_metrics(kStepFigures));
  CHECK_NOTHROW(t.tracker.site_metrics(kStepFigures));
  CHECK_NOTHROW(t.tracker.job_finished());
  const std::string screen = t.screen.str();
  const auto said = screen.find("tracking stopped: cannot create the TensorBoard folder");
  CHECK(said != std::string::npos);
  CHECK(screen.find("metrics.jsonl has every figure") != std::string::npos);
  CHECK(screen.find("tracking stopped", said + 1) == std::string::npos);  // once
}
