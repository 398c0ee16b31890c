// When each registered site was last heard from (a heartbeat or any request
// of its current group), so the controller can drop a site silent past
// server.heartbeat_timeout_s. Its own lock: heartbeats and progress reports
// arrive on RPC threads that never wait for the controller's.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace flare::server {

class SiteLiveness {
 public:
  using Clock = std::chrono::steady_clock;

  // The site was heard from now; starts watching it.
  void seen(const std::string& site);
  // Stops watching the site (dropped, or gone) until it is seen again.
  void forget(const std::string& site);

  struct Silence {
    std::string site;
    double seconds = 0;  // since it was last heard from
  };
  // The watched sites silent for longer than `timeout`, in name order.
  std::vector<Silence> silent_longer_than(std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Clock::time_point> last_seen_;
};

}  // namespace flare::server
