// The updates an aggregator that needs them all at once keeps until finalize
// (ABI 1.4 FLARE_AGGREGATOR_KEEPS_UPDATES: median, Krum): each accepted
// update's spool file stays mapped, so the views accept() was given stay
// valid, and the pages the aggregator has read go back (release_pages). The
// files are unlinked: clear() at the round's end is what frees them, and
// nothing of them is ever left on disk.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "server/update_spool.hpp"

namespace flare::server {

class KeptUpdates {
 public:
  void keep(UpdateSpool::Mapping mapping);
  // The host service: drops the pages of [data, data + bytes) when they lie
  // inside one kept update; ignores any other range. Any thread.
  void release_pages(const void* data, size_t bytes) const;
  // The round is over: every kept update is unmapped, its file gone.
  void clear();
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::vector<UpdateSpool::Mapping> kept_;
};

}  // namespace flare::server
