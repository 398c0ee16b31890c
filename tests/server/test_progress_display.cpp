// The terminal: a live bar on a terminal, plain lines when stdout is not one,
// and the summary table; what sites report is clamped and printable either way.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <sstream>

#include "server/progress_display.hpp"

using namespace flare;

TEST_CASE("plain output shows training as it enters each quarter, and evaluation not at all") {
  std::ostringstream out;
  server::ProgressDisplay display(out, false, 2);
  for (int step = 1; step <= 8; ++step) display.site_progress("site-1", 0, "train", 1, step, 8);
  display.site_progress("site-1", 0, "evaluate", 1, 1, 8);
  CHECK(out.str() ==
        "round 1/2  site-1  train epoch 1: 1/8 steps (12%)\n"
        "round 1/2  site-1  train epoch 1: 2/8 steps (25%)\n"
        "round 1/2  site-1  train epoch 1: 4/8 steps (50%)\n"
        "round 1/2  site-1  train epoch 1: 6/8 steps (75%)\n"
        "round 1/2  site-1  train epoch 1: 8/8 steps (100%)\n");
}

TEST_CASE("the summary lists every model's figures and marks the best") {
  std::ostringstream out;
  server::ProgressDisplay display(out, false, 1);
  display.summary({{.model_round = 0, .metrics = {{"val_acc", 0.1}}},
                   {.model_round = 1,
                    .metrics = {{"val_acc", 0.5}, {"test_acc", 0.25}, {"val_loss", 1.5}},
                    .round_seconds = 2.5,
                    .images_per_s = 1234.5,
                    .best = true}});
  const std::string text = out.str();
  CHECK_MESSAGE(text.find("initial      0.1000          -          -            -            -") !=
                    std::string::npos,
                text);
  CHECK_MESSAGE(text.find("1            0.5000     0.2500     1.5000         2.50       1234.5     *") !=
                    std::string::npos,
                text);
}

TEST_CASE("the live bar shows a step past the total, or any other count, within the bar") {
  std::ostringstream out;
  server::ProgressDisplay display(out, /*interactive=*/true, 2);
  // Each once built a bar of negative length (std::length_error), or overflowed.
  display.site_progress("site-1", 0, "train", 1, 12, 10);
  CHECK_MESSAGE(out.str().ends_with("site-1 round 1/2 train e1 [################] 100%"), out.str());
  display.site_progress("site-1", 0, "train", 1, std::numeric_limits<int64_t>::max(), 3);
  CHECK(out.str().ends_with("[################] 100%"));
  display.site_progress("site-1", 0, "train", 1, std::numeric_limits<int64_t>::max() / 2,
                        std::numeric_limits<int64_t>::max());
  CHECK_MESSAGE(out.str().ends_with("[#######.........] 49%"), out.str());  // just under half
  display.site_progress("site-1", 0, "train", 1, -5, 10);
  CHECK(out.str().ends_with("[................] 0%"));
  display.site_progress("site-1", 0, "train", 1, 5, 0);
  CHECK(out.str().ends_with("[................] 0%"));
  // A message redraws the bar below it.
  display.message("round 1/2: training on 1 sites");
  CHECK(out.str().ends_with("round 1/2: training on 1 sites\n\r\x1b[2Ksite-1 round 1/2 train e1 "
                            "[................] 0%"));
}

TEST_CASE("plain lines show a step past the total as 100%") {
  std::ostringstream out;
  server::ProgressDisplay display(out, false, 2);
  display.site_progress("site-1", 0, "train", 1, 12, 10);
  CHECK(out.str() == "round 1/2  site-1  train epoch 1: 12/10 steps (100%)\n");
}

TEST_CASE("text a site sent is shown without its control characters, and a phase cut short") {
  std::ostringstream out;
  server::ProgressDisplay display(out, true, 1);
  display.site_progress("site-1", 0, "\x1b[2J\rtrain", 1, 1, 2);
  CHECK_MESSAGE(out.str().ends_with("site-1 round 1/1 \\x1b[2J\\x0dtrain e1 [########........] 50%"),
                out.str());
  display.site_progress("site-1", 0, std::string(1000, 'p'), 1, 1, 2);
  CHECK(out.str().ends_with(" " + std::string(24, 'p') + "... e1 [########........] 50%"));
  std::ostringstream plain;
  server::ProgressDisplay lines(plain, false, 1);
  lines.message("site-1 worker rank 0 failed: \x1b]0;title\x07\nlast lines of its log:\nboom");
  CHECK(plain.str() ==
        "site-1 worker rank 0 failed: \\x1b]0;title\\x07\nlast lines of its log:\nboom\n");
}
