#include "server/kept_updates.hpp"

namespace flare::server {

void KeptUpdates::keep(UpdateSpool::Mapping mapping) {
  std::lock_guard lock(mutex_);
  kept_.push_back(std::move(mapping));
}

void KeptUpdates::release_pages(const void* data, size_t bytes) const {
  std::lock_guard lock(mutex_);
  for (const auto& m : kept_) {
    if (m.contains(data, bytes)) {
      m.release_pages(data, bytes);
      return;
    }
  }
}

void KeptUpdates::clear() {
  std::vector<UpdateSpool::Mapping> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(kept_);
  }
}

size_t KeptUpdates::size() const {
  std::lock_guard lock(mutex_);
  return kept_.size();
}

}  // namespace flare::server
