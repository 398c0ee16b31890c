// What the user watches in the terminal: round, site, phase, epoch and a
// progress bar when stdout is a terminal; plain lines (at each quarter of a
// phase) when it is not. Thread-safe: the server's RPC threads call it.
#pragma once

#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "server/domain.hpp"

namespace flare::server {

class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, bool interactive, int num_rounds);

  void message(const std::string& line);
  void site_progress(const std::string& site, int64_t round, const std::string& phase,
                     int64_t epoch, int64_t step, int64_t total);
  void summary(const std::vector<RoundFigures>& rounds);

 private:
  struct SiteState {
    std::string phase;
    int64_t round = 0, epoch = 0, step = 0, total = 0;
    int last_quarter = -1;
  };
  std::string round_label(int64_t round) const;
  void redraw_locked();
  void clear_line_locked();

  std::ostream& out_;
  bool interactive_;
  int num_rounds_;
  std::mutex mutex_;
  std::map<std::string, SiteState> sites_;
  bool line_drawn_ = false;
};

}  // namespace flare::server
