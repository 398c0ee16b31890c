#include "server/progress_display.hpp"

#include <cstdio>
#include <string>

#include "common/printable_text.hpp"

namespace flare::server {

namespace {

// `step` of `total` in whole `parts` (4: quarters, 100: percent). Reports come
// from sites, and a plugin may say step 12 of 10, or of 0: what is shown is
// clamped to [0, parts], and the product is computed in 128 bits, which no
// step overflows.
int parts_done(int64_t step, int64_t total, int parts) {
  if (total <= 0 || step <= 0) return 0;
  if (step >= total) return parts;
  return static_cast<int>(static_cast<__int128>(step) * parts / total);
}

std::string bar(int64_t step, int64_t total, int width) {
  const int filled = parts_done(step, total, width);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

// A phase name as shown: printable, and short enough for the bar's line.
std::string shown_phase(const std::string& phase) {
  constexpr size_t kMaxPhase = 24;
  return common::printable(phase.size() > kMaxPhase ? phase.substr(0, kMaxPhase) + "..." : phase);
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
  out_ << common::printable(line, common::LineBreaks::Keep) << "\n";
  if (interactive_) redraw_locked();
  out_.flush();
}

void ProgressDisplay::site_progress(const std::string& site, int64_t round,
                                    const std::string& phase, int64_t epoch, int64_t step,
                                    int64_t total) {
  std::lock_guard lock(mutex_);
  const std::string name = common::printable(site);
  SiteState& s = sites_[name];
  const std::string shown = shown_phase(phase);
  if (s.phase != shown || s.round != round || s.epoch != epoch) s.last_quarter = -1;
  s.phase = shown;
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
  const int quarter = parts_done(step, total, 4);
  if (quarter == s.last_quarter) return;
  s.last_quarter = quarter;
  out_ << round_label(round) << "  " << name << "  " << shown
       << " epoch " << epoch << ": " << step << "/" << total << " steps ("
       << parts_done(step, total, 100) << "%)\n";
  out_.flush();
}

void ProgressDisplay::redraw_locked() {
  std::string line;
  for (const auto& [site, s] : sites_) {
    if (!line.empty()) line += "  ";
    line += site + " " + round_label(s.round) + " " + s.phase + " e" +
            std::to_string(s.epoch) + " " + bar(s.step, s.total, 16) + " " +
            std::to_string(parts_done(s.step, s.total, 100)) + "%";
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
  // The aggregator's own figures (a DP accountant's epsilon), as of the last
  // round that reported them.
  for (auto r = rounds.rbegin(); r != rounds.rend(); ++r) {
    if (r->aggregator.empty()) continue;
    out_ << "Aggregator after round " << r->model_round << ":";
    for (const auto& [name, value] : r->aggregator.items())
      out_ << "  " << name << " " << fixed(value.get<double>(), 4);
    out_ << "\n";
    break;
  }
  out_.flush();
}

}  // namespace flare::server
