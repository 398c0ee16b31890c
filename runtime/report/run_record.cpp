#include "report/run_record.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

namespace flare::report {

namespace {

using nlohmann::json;

Figures numbers_in(const json& object) {
  Figures figures;
  for (const auto& [key, value] : object.items())
    if (value.is_number()) figures[key] = value.get<double>();
  return figures;
}

// The numbers of `line` but its bookkeeping keys (the round, the step).
Figures figures_of(const json& line, std::initializer_list<const char*> bookkeeping) {
  Figures figures = numbers_in(line);
  for (const char* key : bookkeeping) figures.erase(key);
  return figures;
}

std::string failure_in_words(const json& line) {
  if (line.contains("aggregator"))
    return "aggregator " + line.value("aggregator", std::string()) + ", " +
           line.value("call", std::string()) + ": " + line.value("error", std::string());
  std::string text = line.value("site", std::string("?")) + " rank " +
                     std::to_string(line.value("rank", int64_t{-1}));
  if (const auto cause = line.find("cause"); cause != line.end() && cause->is_object()) {
    if (cause->contains("signal_name"))
      text += " killed by " + cause->value("signal_name", std::string());
    else if (cause->contains("exit_code"))
      text += " exited with " + std::to_string(cause->value("exit_code", int64_t{0}));
    else if (cause->contains("hang_s"))
      text += " hung";
  }
  return text + " (" + line.value("action", std::string("?")) + ")";
}

// Adds `line` to `record`; throws json::exception when a key its kind needs
// is missing or of another type. A kind the report does not draw is skipped.
void add_line(const json& line, RunRecord& record) {
  const std::string kind = line.value("kind", std::string());
  if (kind == "site") {
    SiteRound r{.site = line.at("site").get<std::string>(), .round = line.at("round").get<int64_t>(),
                .figures = figures_of(line, {"round"})};
    if (const auto model = line.find("received_model"); model != line.end() && model->is_object())
      r.received_model = numbers_in(*model);
    record.site_rounds.push_back(std::move(r));
  } else if (kind == "global") {
    GlobalRound r{.round = line.at("round").get<int64_t>(), .figures = figures_of(line, {"round"}),
                  .best = line.value("best", false)};
    if (const auto model = line.find("model"); model != line.end() && model->is_string())
      r.model = model->get<std::string>();
    record.global_rounds.push_back(std::move(r));
  } else if (kind == "train_step") {
    record.train_steps.push_back({.site = line.at("site").get<std::string>(),
                                  .round = line.at("round").get<int64_t>(),
                                  .step = line.at("step").get<int64_t>(),
                                  .figures = figures_of(line, {"round", "step", "epoch"})});
  } else if (kind == "aggregator") {
    record.aggregator_rounds.push_back(
        {.round = line.at("round").get<int64_t>(), .figures = figures_of(line, {"round"})});
  } else if (kind == "failure") {
    record.failures.push_back(failure_in_words(line));
  } else if (kind == "warning") {
    record.warnings.push_back(line.value("message", std::string("(no message)")));
  } else if (kind == "job") {
    record.end = JobEnd{.status = line.at("status").get<std::string>(),
                        .reason = line.value("reason", std::string()),
                        .rounds_completed = line.value("rounds_completed", int64_t{0})};
  }
}

}  // namespace

RunRecord read_run_record(const std::filesystem::path& metrics_file) {
  RunRecord record;
  std::ifstream in(metrics_file);
  std::string text;
  while (std::getline(in, text)) {
    if (text.empty()) continue;
    try {
      const json line = json::parse(text);
      if (line.is_object())
        add_line(line, record);
      else
        ++record.unreadable_lines;
    } catch (const json::exception&) {
      ++record.unreadable_lines;  // a torn last line, or a key of the wrong type
    }
  }
  return record;
}

}  // namespace flare::report
