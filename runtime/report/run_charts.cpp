#include "report/run_charts.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace flare::report {

namespace {

enum class Family { Accuracy, Loss };

bool in_family(const std::string& name, Family family) {
  if (name.ends_with("num_samples")) return false;
  return name.find(family == Family::Loss ? "loss" : "acc") != std::string::npos;
}

// Series by name, in name order, each point sorted by x (a restarted round
// reports again; its points stay in the order they came).
class SeriesSet {
 public:
  void add(const std::string& name, double x, double y) { by_name_[name].push_back({x, y}); }
  std::vector<Series> take() {
    std::vector<Series> all;
    for (auto& [name, points] : by_name_) {
      std::stable_sort(points.begin(), points.end(),
                       [](const Point& a, const Point& b) { return a.x < b.x; });
      all.push_back({name, std::move(points)});
    }
    return all;
  }

 private:
  std::map<std::string, std::vector<Point>> by_name_;
};

void add_if_drawn(std::vector<LineChart>& charts, LineChart chart) {
  if (!chart.series.empty()) charts.push_back(std::move(chart));
}

LineChart global_chart(const RunRecord& record, Family family) {
  SeriesSet set;
  for (const GlobalRound& g : record.global_rounds)
    for (const auto& [name, value] : g.figures)
      if (in_family(name, family)) set.add(name, static_cast<double>(g.round), value);
  const bool loss = family == Family::Loss;
  return {.id = loss ? "global-loss" : "global-accuracy",
          .title = loss ? "Global model: loss per round" : "Global model: accuracy per round",
          .x_label = "rounds completed (0: initial model)",
          .y_label = loss ? "loss" : "accuracy",
          .series = set.take(),
          .whole_x = true,
          .markers = true};
}

// A site's training figures (train_*) and its measure of the global model it
// received (val_*, test_*), per round trained.
LineChart site_chart(const RunRecord& record, Family family) {
  SeriesSet set;
  for (const SiteRound& r : record.site_rounds) {
    const double x = static_cast<double>(r.round);
    for (const auto& [name, value] : r.figures)
      if (in_family(name, family)) set.add(r.site + " " + name, x, value);
    for (const auto& [name, value] : r.received_model)
      if (in_family(name, family)) set.add(r.site + " " + name, x, value);
  }
  const bool loss = family == Family::Loss;
  return {.id = loss ? "site-loss" : "site-accuracy",
          .title = loss ? "Sites: loss per round" : "Sites: accuracy per round",
          .x_label = "round",
          .y_label = loss ? "loss" : "accuracy",
          .series = set.take(),
          .whole_x = true,
          .markers = true};
}

LineChart throughput_chart(const RunRecord& record) {
  SeriesSet set;
  for (const SiteRound& r : record.site_rounds)
    if (const auto it = r.figures.find("images_per_s"); it != r.figures.end())
      set.add(r.site, static_cast<double>(r.round), it->second);
  for (const GlobalRound& g : record.global_rounds)
    if (const auto it = g.figures.find("images_per_s"); it != g.figures.end())
      set.add("all sites", static_cast<double>(g.round), it->second);
  return {.id = "throughput",
          .title = "Training throughput per round",
          .x_label = "round",
          .y_label = "images/s",
          .series = set.take(),
          .whole_x = true,
          .markers = true};
}

// "step-train_loss"; characters an id or a URL fragment would trip on become '_'.
std::string step_chart_id(const std::string& figure) {
  std::string id = "step-" + figure;
  for (char& c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) c = '_';
  return id;
}

std::vector<LineChart> step_charts(const RunRecord& record) {
  std::vector<std::string> figures;  // first seen first, train_loss ahead of all
  std::map<std::string, SeriesSet> sets;
  for (const TrainStep& s : record.train_steps) {
    for (const auto& [name, value] : s.figures) {
      if (!sets.contains(name)) figures.push_back(name);
      sets[name].add(s.site, static_cast<double>(s.step), value);
    }
  }
  std::stable_partition(figures.begin(), figures.end(),
                        [](const std::string& name) { return name == "train_loss"; });
  std::vector<LineChart> charts;
  for (const std::string& name : figures) {
    const std::string y_label = name == "images_per_s" ? "images/s" : name;
    add_if_drawn(charts, {.id = step_chart_id(name),
                          .title = "Training: " + y_label + " per step",
                          .x_label = "step (from the start of the job)",
                          .y_label = y_label,
                          .series = sets[name].take(),
                          .whole_x = true});
  }
  return charts;
}

}  // namespace

std::vector<LineChart> charts_of(const RunRecord& record) {
  std::vector<LineChart> charts;
  add_if_drawn(charts, global_chart(record, Family::Accuracy));
  add_if_drawn(charts, global_chart(record, Family::Loss));
  add_if_drawn(charts, site_chart(record, Family::Accuracy));
  add_if_drawn(charts, site_chart(record, Family::Loss));
  add_if_drawn(charts, throughput_chart(record));
  for (LineChart& chart : step_charts(record)) charts.push_back(std::move(chart));
  return charts;
}

}  // namespace flare::report
