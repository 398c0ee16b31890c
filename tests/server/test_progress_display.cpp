// The terminal: plain lines when stdout is not a terminal, and the summary table.
#include <doctest/doctest.h>

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
