#include "server/worker_generations.hpp"

#include "server/domain.hpp"

namespace flare::server {

WorkerGenerations::WorkerGenerations(const std::vector<std::string>& sites) {
  for (const auto& site : sites) groups_[site];
}

template <class Groups>
auto& WorkerGenerations::group_locked(Groups& groups, const std::string& site) {
  const auto it = groups.find(site);
  if (it == groups.end()) throw RejectedRequest("unknown site '" + site + "'");
  return it->second;
}

int64_t WorkerGenerations::hand_out(const std::string& site) {
  std::lock_guard lock(mutex_);
  Group& group = group_locked(groups_, site);
  // The site registering while its group is registered: its rank 0 lost the
  // server for a while (a stopped server, a cut network) and came back. The
  // new registration wins; the running generation is superseded.
  if (group.handed_out) ++group.generation;
  group.handed_out = true;
  group.dropped = false;
  return group.generation;
}

bool WorkerGenerations::is_current(const std::string& site, int64_t generation) const {
  std::lock_guard lock(mutex_);
  const Group& group = group_locked(groups_, site);
  return group.handed_out && generation == group.generation;
}

void WorkerGenerations::require_current(const std::string& site, int64_t generation,
                                        const char* what) const {
  std::lock_guard lock(mutex_);
  const Group& group = group_locked(groups_, site);
  if (group.handed_out && generation == group.generation) return;
  const std::string current = std::to_string(group.generation);
  if (group.dropped && generation == group.generation - 1) {
    throw RegisterAgain(std::string(what) + " from " + site + " refused: the server dropped " +
                        "its worker group generation " + std::to_string(generation) +
                        " (" + group.drop_reason + "); register again");
  }
  if (!group.handed_out && generation >= group.generation) {
    throw RegisterAgain(std::string(what) + " from " + site + " refused: this server holds no " +
                        "registration of its worker group generation " +
                        std::to_string(generation) + " (not registered yet, or the server " +
                        "restarted since); register again");
  }
  if (generation < group.generation) {
    throw RejectedRequest(std::string(what) + " from " + site + "'s worker group generation " +
                          std::to_string(generation) + " refused: the site now runs generation " +
                          current);
  }
  throw RejectedRequest(std::string(what) + " from " + site + " refused: it claims worker group " +
                        "generation " + std::to_string(generation) +
                        ", which the server has not handed out (the site's is " + current +
                        (group.handed_out ? ")" : ", not registered yet)"));
}

int64_t WorkerGenerations::current(const std::string& site) const {
  std::lock_guard lock(mutex_);
  return group_locked(groups_, site).generation;
}

void WorkerGenerations::supersede(const std::string& site) {
  std::lock_guard lock(mutex_);
  Group& group = group_locked(groups_, site);
  ++group.generation;
  group.handed_out = false;
  group.dropped = false;
}

void WorkerGenerations::drop(const std::string& site, const std::string& reason) {
  std::lock_guard lock(mutex_);
  Group& group = group_locked(groups_, site);
  if (!group.handed_out) return;
  ++group.generation;
  group.handed_out = false;
  group.dropped = true;
  group.drop_reason = reason;
}

}  // namespace flare::server
