// The server's side of ABI 1.4 for aggregators: updates kept on disk until
// finalize for one that needs them all (median, Krum), the pages it has read
// handed back, its figures in the metrics and the summary, and its state
// written beside the model it made.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "controller_job.hpp"
#include "server/kept_updates.hpp"
#include "server/update_spool.hpp"
#include "storage/safetensors.hpp"

using namespace flare;
using flare::testing::ControllerJob;
using flare::testing::TempFolder;

namespace {

// Lines of /proc/self/maps naming a file under `dir` (a spool still mapped).
int mappings_under(const std::filesystem::path& dir) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find(dir.string()) != std::string::npos) ++n;
  return n;
}

// Open descriptors of this process on unlinked files under `dir` (spools).
int spool_descriptors_under(const std::filesystem::path& dir) {
  int n = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(fd.path(), ec);
    if (!ec && target.string().find(dir.string()) != std::string::npos &&
        target.string().find("(deleted)") != std::string::npos)
      ++n;
  }
  return n;
}

// Resident kB of the mapping that starts at `start` (/proc/self/smaps).
long resident_kb(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::ostringstream head;
  head << std::hex << reinterpret_cast<uintptr_t>(start) << "-";
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind(head.str(), 0) == 0) inside = true;
    else if (inside && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

host::SiteUpdateFields fields_of(const server::SiteUpdate& u) {
  return {.site = u.site, .round = u.round, .weights = u.weights, .num_samples = u.num_samples,
          .num_steps = u.num_steps};
}

std::vector<nlohmann::json> metrics_lines(const std::filesystem::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace

TEST_CASE("an aggregator that keeps updates reads them all at finalize, and none outlives the round") {
  ControllerJob job({"site-1", "site-2", "site-3"}, 2, nullptr, std::chrono::hours(1), "val_acc",
                    false, FLARE_KEEPING_AGGREGATOR);
  REQUIRE(job.aggregator.keeps_updates());
  job.start_training({"site-1", "site-2", "site-3"});
  job.send_update("site-1", 0, 1.0f);
  job.send_update("site-2", 0, 5.0f);
  // Two updates in: both kept, each its spool file mapped, nothing else open.
  CHECK(job.kept_updates.size() == 2);
  CHECK(mappings_under(job.dir.path()) == 2);
  CHECK(spool_descriptors_under(job.dir.path()) == 0);  // the mappings hold the files
  job.send_update("site-3", 0, 3.0f);
  // The plugin's maximum read every kept view at finalize (fedavg would give 3).
  CHECK(ControllerJob::weight_of(job.task("site-1")) == 5.0f);
  CHECK(job.kept_updates.size() == 0);
  CHECK(mappings_under(job.dir.path()) == 0);
  CHECK(spool_descriptors_under(job.dir.path()) == 0);
}

TEST_CASE("an aggregator whose config keeps updates gets them whole, though it could stream") {
  // fedavg folds streamed chunks by default; "at_finalize" keeps updates
  // (its instance_properties), so the server hands it whole, mapped updates.
  ControllerJob job({"site-1", "site-2", "site-3"}, 2, nullptr, std::chrono::hours(1), "val_acc",
                    false, FLARE_FEDAVG_PLUGIN, R"({"fold": "at_finalize"})");
  REQUIRE(job.aggregator.keeps_updates());
  CHECK_FALSE(job.aggregator.folds_chunks());
  job.start_training({"site-1", "site-2", "site-3"});
  job.send_update("site-1", 0, 1.0f);
  job.send_update("site-2", 0, 5.0f);
  CHECK(job.kept_updates.size() == 2);
  CHECK(mappings_under(job.dir.path()) == 2);
  job.send_update("site-3", 0, 3.0f);
  CHECK(ControllerJob::weight_of(job.task("site-1")) == doctest::Approx(3.0));  // the mean
  CHECK(job.kept_updates.size() == 0);
  CHECK(mappings_under(job.dir.path()) == 0);
}

TEST_CASE("an aggregator instance reporting properties this host does not know is refused") {
  const host::HostServices services;
  const auto plugin = host::load_plugin({"keeping", FLARE_KEEPING_AGGREGATOR, {}},
                                        FLARE_PLUGIN_AGGREGATOR);
  try {
    host::AggregatorInstance agg(plugin, R"({"instance_properties": 6})", services);
    FAIL("an unknown instance property was accepted");
  } catch (const host::PluginCallError& e) {
    CHECK(e.plugin_name() == "keeping");
    CHECK(e.function() == "instance_properties");
    CHECK(std::string(e.what()).find("0x6") != std::string::npos);
  }
}

TEST_CASE("an aggregator's figures reach metrics.jsonl, the terminal and the run's summary") {
  ControllerJob job({"site-1", "site-2"}, 1, nullptr, std::chrono::hours(1), "val_acc", false,
                    FLARE_KEEPING_AGGREGATOR);
  job.start_training({"site-1", "site-2"});
  job.send_update("site-1", 0, 1.0f);
  job.send_update("site-2", 0, 2.0f);
  const auto lines = metrics_lines(job.dir.path() / "metrics.jsonl");
  const auto it = std::find_if(lines.begin(), lines.end(),
                               [](const nlohmann::json& l) { return l["kind"] == "aggregator"; });
  REQUIRE(it != lines.end());
  CHECK((*it)["round"] == 1);
  CHECK((*it)["kept_updates"] == 2.0);
  CHECK(job.screen.str().find("aggregator, round 1/1:  kept_updates 2.0000") != std::string::npos);

  const auto figures = job.controller.figures();
  REQUIRE(figures.size() == 2);
  CHECK(figures[1].aggregator == nlohmann::json{{"kept_updates", 2.0}});
  job.display.summary(figures);
  CHECK(job.screen.str().find("Aggregator after round 1:  kept_updates 2.0000") !=
        std::string::npos);
}

TEST_CASE("an aggregator's state is written beside each saved model, as of that model") {
  ControllerJob job({"site-1"}, 2, nullptr, std::chrono::hours(1), "val_acc", false,
                    FLARE_KEEPING_AGGREGATOR);
  job.start_training({"site-1"});
  const auto file = job.models.aggregator_state_path();
  CHECK_FALSE(std::filesystem::exists(file));
  job.send_update("site-1", 0, 1.0f);
  auto state = storage::load_safetensors(file);
  CHECK(state.metadata.at("round") == "1");
  CHECK(nlohmann::json::parse(state.metadata.at("meta")) == nlohmann::json{{"last_round", 0}});
  REQUIRE(state.tensors.size() == 1);
  int64_t rounds = 0;
  std::memcpy(&rounds, state.tensors[0].data.data(), sizeof(rounds));
  CHECK(rounds == 1);

  REQUIRE(job.task("site-1").kind == server::TaskKind::Train);
  job.send_update("site-1", 1, 2.0f);
  state = storage::load_safetensors(file);
  CHECK(state.metadata.at("round") == "2");
  std::memcpy(&rounds, state.tensors[0].data.data(), sizeof(rounds));
  CHECK(rounds == 2);
}

TEST_CASE("fedadam's state file and a saved model are all a fresh server needs to go on exactly") {
  // Three rounds uninterrupted; the state written with model 2 then goes into
  // a fresh fedadam, which makes round 3 from model 2 and the same updates.
  ControllerJob job({"site-1", "site-2"}, 3, nullptr, std::chrono::hours(1), "val_acc", false,
                    FLARE_FEDADAM_PLUGIN);
  REQUIRE(job.aggregator.has_state());
  job.start_training({"site-1", "site-2"});
  const float sent[3][2] = {{1.0f, 3.0f}, {2.5f, 0.5f}, {4.0f, -1.0f}};
  std::filesystem::path state_after_2 = job.dir.path() / "state_after_2.safetensors";
  for (int round = 0; round < 3; ++round) {
    if (round > 0)
      for (const char* s : {"site-1", "site-2"}) REQUIRE(job.task(s).kind == server::TaskKind::Train);
    job.send_update("site-1", round, sent[round][0]);
    job.send_update("site-2", round, sent[round][1]);
    if (round == 1) std::filesystem::copy_file(job.models.aggregator_state_path(), state_after_2);
  }
  const auto model_2 = storage::load_safetensors(job.models.global_path(2));
  const float uninterrupted = ControllerJob::value_of(
      storage::load_safetensors(job.models.global_path(3)).tensors);
  auto saved = storage::load_safetensors(state_after_2);
  CHECK(saved.metadata.at("round") == "2");
  REQUIRE_FALSE(saved.tensors.empty());

  host::AggregatorInstance fresh(host::load_plugin({"fedadam", FLARE_FEDADAM_PLUGIN, {}},
                                                   FLARE_PLUGIN_AGGREGATOR),
                                 "{}", job.services);
  fresh.set_state(tensor::views_of(saved.tensors), saved.metadata.at("meta"));
  auto model = model_2.tensors;
  fresh.begin_round(2, tensor::views_of(model));
  for (const auto& update : {ControllerJob::update("site-1", 2, sent[2][0]),
                             ControllerJob::update("site-2", 2, sent[2][1])}) {
    fresh.accept(fields_of(update));
  }
  const auto resumed = fresh.finalize();
  float value = 0;
  std::memcpy(&value, resumed[0].tensor.data, sizeof(value));
  CHECK(value == uninterrupted);  // bit for bit

  // Without the state (moments from zero) round 3 comes out otherwise.
  host::AggregatorInstance stateless(host::load_plugin({"fedadam", FLARE_FEDADAM_PLUGIN, {}},
                                                       FLARE_PLUGIN_AGGREGATOR),
                                     "{}", job.services);
  stateless.begin_round(2, tensor::views_of(model));
  for (const auto& update : {ControllerJob::update("site-1", 2, sent[2][0]),
                             ControllerJob::update("site-2", 2, sent[2][1])}) {
    stateless.accept(fields_of(update));
  }
  std::memcpy(&value, stateless.finalize()[0].tensor.data, sizeof(value));
  CHECK(value != uninterrupted);
}

TEST_CASE("fedavg has no state: no state file is written") {
  ControllerJob job({"site-1"}, 1);
  CHECK_FALSE(job.aggregator.has_state());
  job.start_training({"site-1"});
  job.send_update("site-1", 0, 1.0f);
  CHECK(std::filesystem::exists(job.models.global_path(1)));
  CHECK_FALSE(std::filesystem::exists(job.models.aggregator_state_path()));
}

TEST_CASE("release_pages drops a kept update's read pages from memory and they stay readable") {
  TempFolder dir;
  server::UpdateSpool spool(dir.path());
  std::vector<float> values(4 << 20);  // 16 MiB
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000);
  spool.append(std::as_bytes(std::span(values)), true);
  server::KeptUpdates kept;
  kept.keep(spool.map());
  // Find the mapping back through a view of it: the host hands out views only.
  std::ifstream maps("/proc/self/maps");
  const float* view = nullptr;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(dir.path().string()) == std::string::npos) continue;
    view = reinterpret_cast<const float*>(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
  }
  REQUIRE(view != nullptr);
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += view[i];
  CHECK(resident_kb(view) >= 15 * 1024);

  kept.release_pages(view + 16, 1024);  // less than a page: nothing to drop
  CHECK(resident_kb(view) >= 15 * 1024);
  const int outside = 0;
  kept.release_pages(&outside, sizeof(outside));  // not a kept range: ignored
  kept.release_pages(view, values.size() * sizeof(float));
  CHECK(resident_kb(view) < 1024);

  double again = 0;
  for (size_t i = 0; i < values.size(); ++i) again += view[i];
  CHECK(again == sum);
  kept.clear();
  CHECK(mappings_under(dir.path()) == 0);
}
