#include "report/report_page.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "report/markup.hpp"
#include "report/run_charts.hpp"
#include "report/svg_chart.hpp"
#include "storage/atomic_file.hpp"

namespace flare::report {

namespace fs = std::filesystem;

namespace {

constexpr int kPageWidth = kChartGap + kChartColumns * (kChartWidth + kChartGap);

const std::string kStyle =
    "body{margin:0;font-family:sans-serif;color:#222;background:#f4f4f4}"
    "header{height:" + std::to_string(kHeaderHeight) + "px;box-sizing:border-box;padding:12px 16px;overflow:hidden;"
    "background:#fff;border-bottom:1px solid #ccc}"
    "header h1{font-size:20px;margin:0 0 6px}"
    "header p{margin:2px 0;font-size:13px;white-space:nowrap;overflow:hidden;"
    "text-overflow:ellipsis}"
    ".failed{color:#b00020;font-weight:bold}.succeeded{color:#1b7a1b;font-weight:bold}"
    ".charts{position:relative}.chart-box{position:absolute;box-shadow:0 0 0 1px #ccc}"
    "main{padding:0 16px 24px}h2{font-size:16px;margin:20px 0 6px}"
    "table{border-collapse:collapse;font-size:13px;background:#fff}"
    "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#eee}"
    "td.text,th.text{text-align:left}tr.best td{background:#eef7ee}"
    "pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px;overflow:auto}"
    "p.note{font-size:13px;color:#555;max-width:1000px}";

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string cell(const std::string& text, bool is_text = false) {
  return std::string(is_text ? "<td class=\"text\">" : "<td>") + escape_html(text) + "</td>";
}

// A table of rows of figures: the label columns, then one column per figure
// any row has, in `preferred` order first, then by name.
struct FigureRow {
  std::vector<std::string> labels;
  const Figures* figures;
  bool highlighted = false;
};

std::string figures_table(const std::vector<std::string>& label_headers,
                          const std::vector<FigureRow>& rows,
                          const std::vector<std::string>& preferred) {
  std::set<std::string> present;
  for (const FigureRow& row : rows)
    for (const auto& [name, value] : *row.figures) present.insert(name);
  std::vector<std::string> columns;
  for (const std::string& name : preferred)
    if (present.erase(name)) columns.push_back(name);
  columns.insert(columns.end(), present.begin(), present.end());

  std::string html = "<table><tr>";
  for (const std::string& h : label_headers) html += "<th class=\"text\">" + escape_html(h) + "</th>";
  for (const std::string& c : columns) html += "<th>" + escape_html(c) + "</th>";
  html += "</tr>";
  for (const FigureRow& row : rows) {
    html += row.highlighted ? "<tr class=\"best\">" : "<tr>";
    for (const std::string& label : row.labels) html += cell(label, true);
    for (const std::string& c : columns) {
      const auto it = row.figures->find(c);
      html += cell(it == row.figures->end() ? "" : readable_number(it->second));
    }
    html += "</tr>";
  }
  return html + "</table>";
}

std::optional<GlobalRound> best_model(const RunRecord& record) {
  std::optional<GlobalRound> best;
  for (const GlobalRound& g : record.global_rounds)
    if (g.best) best = g;
  return best;
}

std::string status_line(const RunRecord& record) {
  if (!record.end)
    return "<span class=\"failed\">no end recorded</span>: the run is going on, or it was "
           "killed";
  const std::string rounds =
      " (rounds completed: " + std::to_string(record.end->rounds_completed) + ")";
  if (record.end->status == "succeeded")
    return "<span class=\"succeeded\">succeeded</span>" + rounds;
  const std::string reason = record.end->reason.substr(0, record.end->reason.find('\n'));
  return "<span class=\"failed\">" + escape_html(record.end->status) + "</span>" + rounds +
         ": " + escape_html(reason);
}

std::string best_line(const RunRecord& record, const RunFolder& folder) {
  const std::string key = folder.key_metric.empty() ? "?" : folder.key_metric;
  const std::string ranking = "key metric " + escape_html(key) + ", key_metric_mode " +
                              escape_html(folder.key_metric_mode.empty() ? "?" : folder.key_metric_mode);
  const auto best = best_model(record);
  if (!best) return "Best model: none yet (" + ranking + ")";
  std::string text = "Best model: models/best.safetensors, the global model after round " +
                     std::to_string(best->round);
  if (const auto it = best->figures.find(key); it != best->figures.end())
    text += ": " + escape_html(key) + " " + readable_number(it->second);
  return text + " (" + ranking + ")";
}

std::string header(const RunRecord& record, const RunFolder& folder) {
  const std::string name = folder.job_name.empty() ? "(job.toml unreadable)" : folder.job_name;
  return "<header><h1>Run report: " + escape_html(name) + " \u2014 " +
         escape_html(folder.root.filename().string()) + "</h1><p>Status: " +
         status_line(record) + "</p><p>" + best_line(record, folder) + "</p><p>Run folder: " +
         escape_html(folder.root.string()) + "</p></header>";
}

std::string charts_section(const std::vector<LineChart>& charts) {
  const size_t rows = (charts.size() + kChartColumns - 1) / kChartColumns;
  const int height = kChartGap + static_cast<int>(rows) * (kChartHeight + kChartGap);
  std::string html = "<section class=\"charts\" style=\"width:" + std::to_string(kPageWidth) +
                     "px;height:" + std::to_string(height) + "px\">";
  for (size_t i = 0; i < charts.size(); ++i) {
    const int left = kChartGap + static_cast<int>(i % kChartColumns) * (kChartWidth + kChartGap);
    const int top = kChartGap + static_cast<int>(i / kChartColumns) * (kChartHeight + kChartGap);
    html += "<div class=\"chart-box\" style=\"left:" + std::to_string(left) + "px;top:" +
            std::to_string(top) + "px;width:" + std::to_string(kChartWidth) + "px;height:" +
            std::to_string(kChartHeight) + "px\" data-page-left=\"" + std::to_string(left) +
            "\" data-page-top=\"" + std::to_string(kHeaderHeight + top) + "\">" +
            render_svg(charts[i]) + "</div>";
  }
  return html + "</section>";
}

std::string rounds_section(const RunRecord& record) {
  std::string html;
  if (!record.global_rounds.empty()) {
    std::vector<FigureRow> rows;
    for (const GlobalRound& g : record.global_rounds)
      rows.push_back({{g.round == 0 ? "initial" : std::to_string(g.round),
                       g.model.empty() ? "(not saved)" : "models/" + g.model, g.best ? "*" : ""},
                      &g.figures, g.best});
    html += "<h2>Global model per round</h2>" +
            figures_table({"round", "model file", "best"}, rows,
                          {"val_acc", "val_loss", "test_acc", "test_loss", "round_seconds",
                           "images_per_s"});
  }
  if (!record.site_rounds.empty()) {
    std::vector<FigureRow> rows;
    for (const SiteRound& r : record.site_rounds)
      rows.push_back({{std::to_string(r.round), r.site}, &r.figures});
    html += "<h2>Sites per round: training</h2>" +
            figures_table({"round", "site"}, rows,
                          {"train_seconds", "images_per_s", "num_samples", "num_steps",
                           "train_loss", "train_accuracy"});
    rows.clear();
    for (const SiteRound& r : record.site_rounds)
      rows.push_back({{std::to_string(r.round), r.site}, &r.received_model});
    html += "<h2>Sites per round: the global model received, measured on the site's data</h2>" +
            figures_table({"round", "site"}, rows, {"val_acc", "val_loss", "test_acc", "test_loss"});
  }
  if (!record.aggregator_rounds.empty()) {
    std::vector<FigureRow> rows;
    for (const AggregatorRound& a : record.aggregator_rounds)
      rows.push_back({{std::to_string(a.round)}, &a.figures});
    html += "<h2>Aggregator per round</h2>" + figures_table({"round"}, rows, {});
  }
  return html;
}

std::string events_section(const RunRecord& record) {
  std::string html;
  if (record.end && record.end->status != "succeeded")
    html += "<h2>Why the job failed</h2><pre>" + escape_html(record.end->reason) + "</pre>";
  if (record.failures.empty() && record.warnings.empty()) return html;
  html += "<h2>Failures and warnings</h2><ul>";
  for (const std::string& f : record.failures) html += "<li>failure: " + escape_html(f) + "</li>";
  for (const std::string& w : record.warnings) html += "<li>warning: " + escape_html(w) + "</li>";
  return html + "</ul>";
}

std::string models_section(const RunRecord& record, const RunFolder& folder) {
  std::map<std::string, int64_t> round_of;
  for (const GlobalRound& g : record.global_rounds)
    if (!g.model.empty()) round_of[g.model] = g.round;
  const auto best = best_model(record);
  std::string html = "<h2>Model files</h2>";
  if (folder.models.empty()) return html + "<p>None written.</p>";
  html += "<table><tr><th class=\"text\">file</th><th class=\"text\">what</th><th>bytes</th>"
          "</tr>";
  for (const RunFolder::ModelFile& m : folder.models) {
    std::string what;
    if (m.name == "best.safetensors")
      what = best ? "the best global model (round " + std::to_string(best->round) + ")"
                  : "the best global model";
    else if (m.name == "aggregator_state.safetensors")
      what = "the aggregator's state, to resume";
    else if (const auto it = round_of.find(m.name); it != round_of.end())
      what = it->second == 0 ? "the initial global model"
                             : "the global model after round " + std::to_string(it->second);
    html += "<tr>" + cell((folder.root / "models" / m.name).string(), true) + cell(what, true) +
            cell(std::to_string(m.bytes)) + "</tr>";
  }
  return html + "</table>";
}

std::string footer(const RunRecord& record) {
  std::string text = "Drawn by flare-run from metrics.jsonl (the schema: docs/metrics.md)";
  if (record.unreadable_lines > 0)
    text += "; " + std::to_string(record.unreadable_lines) + " line(s) could not be read";
  return "<p class=\"note\">" + escape_html(text) + ".</p>";
}

}  // namespace

RunFolder read_run_folder(const fs::path& root) {
  RunFolder folder{.root = root, .job_toml = read_text(root / "job.toml")};
  try {
    const toml::table job = toml::parse(folder.job_toml);
    folder.job_name = job["job"]["name"].value_or(std::string());
    folder.key_metric = job["server"]["key_metric"].value_or(std::string());
    folder.key_metric_mode = job["server"]["key_metric_mode"].value_or(std::string());
  } catch (const toml::parse_error&) {
    // The page still shows the text and everything metrics.jsonl holds.
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root / "models", ec)) {
    if (!entry.is_regular_file(ec)) continue;
    folder.models.push_back({entry.path().filename().string(), entry.file_size(ec)});
  }
  std::sort(folder.models.begin(), folder.models.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return folder;
}

std::string render_report(const RunRecord& record, const RunFolder& folder) {
  const std::vector<LineChart> charts = charts_of(record);
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Run report: " +
      escape_html(folder.job_name) + " " + escape_html(folder.root.filename().string()) +
      "</title><style>" + kStyle + "</style></head><body>" + header(record, folder) +
      charts_section(charts) + "<main>";
  if (charts.empty()) html += "<p>Nothing was measured yet.</p>";
  else
    html += "<p class=\"note\">A site's <i>train_</i> figures are its training in the round; its "
            "<i>val_</i> and <i>test_</i> figures measure the global model it received at the "
            "round's start. Hover a point for its value; each chart's numbers are also in the "
            "tables below.</p>";
  html += rounds_section(record) + events_section(record) + models_section(record, folder) +
          "<h2>Settings (job.toml, as resolved)</h2><pre>" + escape_html(folder.job_toml) +
          "</pre>" + footer(record) + "</main></body></html>\n";
  return html;
}

fs::path write_run_report(const fs::path& run_dir) {
  const fs::path file = run_dir / "report.html";
  storage::write_file_atomically(
      file, render_report(read_run_record(run_dir / "metrics.jsonl"), read_run_folder(run_dir)));
  return file;
}

}  // namespace flare::report
