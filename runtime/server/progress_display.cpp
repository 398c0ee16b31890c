#include "server/progress_display.hpp"

#include <cstdio>
#include <string>

namespace flare::server {

namespace {

std::string bar(int64_t step, int64_t total, int width) {
  const int filled = total > 0 ? static_cast<int>(width * step / total) : 0;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string fixed(double v, int decimals) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string ProgressDisplay::round_label(int64_t round) const {
  if (round >= num_rounds_) return "final evaluation";
  return "round " + std::to_string(round + 1) + "/" + std::to_string(num_rounds_);
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool interactive, int num_rounds)
    : out_(out), interactive_(interactive), num_rounds_(num_rounds) {}

void ProgressDisplay::clear_line_locked() {
  if (interactive_ && line_drawn_) {
    out_ << "\r\033[2K";
    line_drawn_ = false;
  }
}

void ProgressDisplay::message(const std::string& line) {
  std::lock_guard lock(mutex_);
  clear_line_locked();
  out_ << line << "\n";
  if (interactive_) redraw_locked();
  out_.flush();
}

void ProgressDisplay::site_progress(const std::string& site, int64_t round,
                                    const std::string& phase, int64_t epoch, int64_t step,
                                    int64_t total) {
  std::lock_guard lock(mutex_);
  SiteState& s = sites_[site];
  if (s.phase != phase || s.round != round || s.epoch != epoch) s.last_quarter = -1;
  s.phase = phase;
  s.round = round;
  s.epoch = epoch;
  s.step = step;
  s.total = total;
  if (interactive_) {
    redraw_locked();
    out_.flush();
    return;
  }
  // Plain output stays short: training at each quarter, evaluation not at all.
  if (phase != "train") return;
  const int quarter = total > 0 ? static_cast<int>(4 * step / total) : 0;
  if (quarter == s.last_quarter) return;
  s.last_quarter = quarter;
  out_ << round_label(round) << "  " << site << "  " << phase
       << " epoch " << epoch << ": " << step << "/" << total << " steps ("
       << (total > 0 ? 100 * step / total : 0) << "%)\n";
  out_.flush();
}

void ProgressDisplay::redraw_locked() {
  std::string line;
  for (const auto& [site, s] : sites_) {
    if (!line.empty()) line += "  ";
    line += site + " " + round_label(s.round) + " " + s.phase + " e" +
            std::to_string(s.epoch) + " " + bar(s.step, s.total, 16) + " " +
            std::to_string(s.total > 0 ? 100 * s.step / s.total : 0) + "%";
  }
  out_ << "\r\033[2K" << line;
  line_drawn_ = !line.empty();
}

void ProgressDisplay::summary(const std::vector<RoundFigures>& rounds) {
  std::lock_guard lock(mutex_);
  clear_line_locked();
  char row[160];
  out_ << "\nGlobal model after each round (validation: mean over sites, weighted by samples)\n";
  std::snprintf(row, sizeof(row), "%-8s %10s %10s %10s %12s %12s %5s\n", "round", "val_acc",
                "test_acc", "val_loss", "round_s", "images/s", "best");
  out_ << row;
  for (const auto& r : rounds) {
    const std::string label = r.model_round == 0 ? "initial" : std::to_string(r.model_round);
    std::snprintf(row, sizeof(row), "%-8s %10s %10s %10s %12s %12s %5s\n", label.c_str(),
                  fixed(r.metric("val_acc"), 4).c_str(), fixed(r.metric("test_acc"), 4).c_str(),
                  fixed(r.metric("val_loss"), 4).c_str(), fixed(r.round_seconds, 2).c_str(),
                  fixed(r.images_per_s, 1).c_str(), r.best ? "*" : "");
    out_ << row;
  }
  out_.flush();
}

}  // namespace flare::server
