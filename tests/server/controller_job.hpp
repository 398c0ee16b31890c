// A job on the fedavg plugin, driven by calling the controller as the RPC edge
// would: domain types, no gRPC. Models are one float32 tensor "w", so a
// model's value is easy to set and to read.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <spdlog/sinks/null_sink.h>

#include "plugin_host/plugin_loader.hpp"
#include "server/controller.hpp"
#include "server/progress_display.hpp"
#include "server/run_reporter.hpp"
#include "storage/metrics_log.hpp"
#include "temp_folder.hpp"

namespace flare::testing {

using namespace std::chrono_literals;

struct ControllerJob {
  // `events`: where the controller's events go; the RunReporter (to `screen`
  // and metrics.jsonl in `dir`) when null. `terminal`: `screen` is drawn as a
  // terminal (the live bar), as flare-run does when stdout is one.
  ControllerJob(std::vector<std::string> sites, int num_rounds,
                server::JobEvents* events = nullptr,
                std::chrono::milliseconds round_timeout = 3600s,
                std::string key_metric = "val_acc", bool terminal = false,
                std::string aggregator_plugin = FLARE_FEDAVG_PLUGIN,
                std::string aggregator_config_json = "{}")
      : ControllerJob({.sites = std::move(sites),
                       .num_rounds = num_rounds,
                       .key_metric = std::move(key_metric),
                       .round_timeout = round_timeout,
                       .start_timeout = round_timeout},
                      events, terminal, std::move(aggregator_plugin),
                      std::move(aggregator_config_json)) {}
  // Any settings; the spool (and, when `checkpoints`, the checkpoints) in `dir`.
  explicit ControllerJob(server::ControllerSettings settings, server::JobEvents* events = nullptr,
                         bool terminal = false,
                         std::string aggregator_plugin = FLARE_FEDAVG_PLUGIN,
                         std::string aggregator_config_json = "{}")
      : aggregator_path(std::move(aggregator_plugin)),
        aggregator_config(std::move(aggregator_config_json)),
        display(screen, terminal, settings.num_rounds),
        reporter(metrics, display,
                 std::make_shared<spdlog::logger>("server",
                                                  std::make_shared<spdlog::sinks::null_sink_mt>()),
                 settings.num_rounds),
        controller(in_folder(std::move(settings), dir.path()),
                   {aggregator, models, events ? *events : reporter, kept_updates,
                    aggregator_figures}) {}

  static server::ControllerSettings in_folder(server::ControllerSettings settings,
                                              const std::filesystem::path& dir) {
    settings.spool_dir = dir;
    return settings;
  }

  TempFolder dir;
  server::KeptUpdates kept_updates;
  server::AggregatorFigures aggregator_figures;
  host::HostServices services{
      {.metric =
           [this](std::string_view name, double value, int64_t round) {
             aggregator_figures.report(name, value, round);
           },
       .release_pages = [this](const void* data,
                               size_t bytes) { kept_updates.release_pages(data, bytes); }}};
  std::string aggregator_path;
  std::string aggregator_config;
  host::AggregatorInstance aggregator{
      host::load_plugin({plugin_name(aggregator_path), aggregator_path, {}},
                        FLARE_PLUGIN_AGGREGATOR),
      aggregator_config, services};
  server::ModelStore models{dir.path() / "models"};
  storage::MetricsLog metrics{dir.path() / "metrics.jsonl"};
  std::ostringstream screen;
  server::ProgressDisplay display;
  server::RunReporter reporter;
  server::Controller controller;

  // "fedavg" for .../libflare_fedavg.so: the name errors quote.
  static std::string plugin_name(const std::string& path) {
    std::string stem = std::filesystem::path(path).stem().string();
    return stem.starts_with("libflare_") ? stem.substr(9) : stem;
  }
  // Registers the site's worker group; returns the generation the server handed it.
  int64_t join(const std::string& site) {
    return controller.register_site({.site = site, .world_size = 2}).generation;
  }
  server::Task task(const std::string& site, int64_t generation = 0) {
    return controller.next_task(site, generation, 0ms);
  }
  static std::vector<tensor::OwnedTensor> weights(float w) {
    std::vector<tensor::OwnedTensor> t{{"w", {kDLFloat, 32, 1}, {1}, {}}};
    t[0].data.resize(sizeof(float));
    std::memcpy(t[0].data.data(), &w, sizeof(float));
    return t;
  }
  static float value_of(const std::vector<tensor::OwnedTensor>& model) {
    float w = 0;
    std::memcpy(&w, model.at(0).data.data(), sizeof(float));
    return w;
  }
  static float weight_of(const server::Task& task) {
    REQUIRE(task.model);
    return value_of(task.model->tensors());
  }
  // {"validation": {"accuracy": accuracy, "loss": 1 - accuracy, "num_samples": samples}}
  static nlohmann::json evaluation(double accuracy, double samples = 10) {
    return {{"validation", {{"accuracy", accuracy}, {"loss", 1 - accuracy},
                            {"num_samples", samples}}}};
  }
  static server::SiteUpdate update(const std::string& site, int64_t round, float w,
                                   int64_t generation = 0) {
    return {.site = site,
            .round = round,
            .generation = generation,
            .weights = weights(w),
            .num_samples = 10,
            .num_steps = 1};
  }
  void send_update(const std::string& site, int64_t round, float w, int64_t generation = 0) {
    controller.accept_update(update(site, round, w, generation));
  }
  void report_restart(const std::string& site, int64_t failed_generation) {
    controller.failure({.site = site,
                        .rank = 1,
                        .cause = "killed by signal 9 (SIGKILL)",
                        .generation = failed_generation,
                        .restarting = true});
  }
  // Every site joined, the first sent the initial model (w = `initial`), round 1 is under way.
  void start(const std::vector<std::string>& sites, float initial = 0) {
    for (const auto& s : sites) join(s);
    REQUIRE(task(sites.front()).kind == server::TaskKind::SendInitialModel);
    controller.accept_initial_model({.site = sites.front(), .weights = weights(initial)});
  }
  // start(), then every site takes its task of round 1.
  void start_training(const std::vector<std::string>& sites) {
    start(sites);
    for (const auto& s : sites) REQUIRE(task(s).kind == server::TaskKind::Train);
  }
};

}  // namespace flare::testing
