// Which generation each site's worker group runs, decided by the server, never
// by a request: a site's first registration is handed generation 0; a restart
// its supervisor reports supersedes the running generation and opens the next,
// which the restarted group's registration is handed. Every later request is
// checked against it, so one claiming a generation the server never handed
// out (or a superseded one) cannot take a site over. A site the server
// dropped, or one that registered with a server since restarted, is told to
// register again. Thread-safe: progress
// reports check it without the controller's lock.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace flare::server {

class WorkerGenerations {
 public:
  explicit WorkerGenerations(const std::vector<std::string>& sites);

  // Hands the site's open generation to the group registering. A site that
  // registers again while its generation runs (it lost the server for a
  // while) is handed the next one, superseding it: the server holds one
  // registration per site, the newest.
  int64_t hand_out(const std::string& site);
  // Refuses (RejectedRequest) a request of `what` unless `generation` is the
  // site's current one and was handed out.
  void require_current(const std::string& site, int64_t generation, const char* what) const;
  bool is_current(const std::string& site, int64_t generation) const;
  // The site's current generation, handed out or open; refuses an unknown site.
  int64_t current(const std::string& site) const;
  // The current generation failed and restarts: the next one opens.
  void supersede(const std::string& site);
  // The server gave up on the site's running generation (silent too long):
  // the next one opens, and a request of the dropped one is told to register
  // again (RegisterAgain), as is one of a generation this server never knew
  // (it restarted since the site registered). A no-op unless one runs.
  void drop(const std::string& site, const std::string& reason);

 private:
  struct Group {
    int64_t generation = 0;
    bool handed_out = false;
    bool dropped = false;  // generation - 1 was dropped, not restarted
    std::string drop_reason;
  };
  // The site's group (const or not, as `groups`); refuses an unknown site.
  template <class Groups>
  static auto& group_locked(Groups& groups, const std::string& site);

  mutable std::mutex mutex_;
  std::map<std::string, Group> groups_;  // one per site, fixed at construction
};

}  // namespace flare::server
