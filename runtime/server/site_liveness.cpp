#include "server/site_liveness.hpp"

namespace flare::server {

void SiteLiveness::seen(const std::string& site) {
  std::lock_guard lock(mutex_);
  last_seen_[site] = Clock::now();
}

void SiteLiveness::forget(const std::string& site) {
  std::lock_guard lock(mutex_);
  last_seen_.erase(site);
}

std::vector<SiteLiveness::Silence> SiteLiveness::silent_longer_than(
    std::chrono::milliseconds timeout) const {
  const auto now = Clock::now();
  std::vector<Silence> silent;
  std::lock_guard lock(mutex_);
  for (const auto& [site, at] : last_seen_) {
    if (now - at > timeout)
      silent.push_back({site, std::chrono::duration<double>(now - at).count()});
  }
  return silent;
}

}  // namespace flare::server
