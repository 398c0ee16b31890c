// Transfers cut off mid-way, held for a grace period so the site can resume
// them from the last acknowledged part instead of starting over: an upload's
// open UpdateIntake (still folded into the aggregate), a download's task.
// Each is keyed by site, generation and (uploads) the site's upload id; one
// stream at a time works on it (taken while active, parked between cuts).
// A parked one left longer than the grace period is dropped by a thread of
// its own, exactly as a broken stream's was before: an upload's intake is
// then taken back (UpdateIntake's destructor).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace flare::server {

template <class Transfer>
class ParkedTransfers {
 public:
  using Clock = std::chrono::steady_clock;
  // `expired` (may be empty) hears of each transfer dropped at the end of its
  // grace period, before it is destroyed (without this object's lock held).
  ParkedTransfers(std::chrono::milliseconds grace,
                  std::function<void(const std::string& key, Transfer&)> expired = {})
      : grace_(grace), expired_(std::move(expired)), reaper_([this] { reap(); }) {}
  ~ParkedTransfers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    reaper_.join();
  }
  ParkedTransfers(const ParkedTransfers&) = delete;
  ParkedTransfers& operator=(const ParkedTransfers&) = delete;

  // A stream starts working on `transfer` (active). One already under `key`
  // (a site that started over) is dropped.
  void start(const std::string& key, std::shared_ptr<Transfer> transfer) {
    std::shared_ptr<Transfer> dropped;  // destroyed after the lock
    std::lock_guard lock(mutex_);
    auto& slot = slots_[key];
    dropped = std::exchange(slot.transfer, std::move(transfer));
    slot.active = true;
  }
  // Its stream was cut: `transfer` waits for a resume, if it is still the
  // one under `key` (else a newer stream replaced it, and it is dropped).
  void park(const std::string& key, const std::shared_ptr<Transfer>& transfer) {
    {
      std::lock_guard lock(mutex_);
      auto it = slots_.find(key);
      if (it == slots_.end() || it->second.transfer != transfer) return;
      it->second.active = false;
      it->second.deadline = Clock::now() + grace_;
    }
    changed_.notify_all();
  }
  // Its stream ended (done or refused): forgotten, if it is the one under `key`.
  void finish(const std::string& key, const std::shared_ptr<Transfer>& transfer) {
    std::shared_ptr<Transfer> dropped;
    std::lock_guard lock(mutex_);
    auto it = slots_.find(key);
    if (it == slots_.end() || it->second.transfer != transfer) return;
    dropped = std::move(it->second.transfer);
    slots_.erase(it);
    changed_.notify_all();  // a take() waiting on it
  }
  // Whatever is under `key` is no longer wanted (the site moved on).
  void drop(const std::string& key) {
    std::shared_ptr<Transfer> dropped;
    std::lock_guard lock(mutex_);
    auto it = slots_.find(key);
    if (it == slots_.end() || it->second.active) return;
    dropped = std::move(it->second.transfer);
    slots_.erase(it);
  }
  // The parked transfer under `key`, now active (a resuming stream works on
  // it), or null. One still active (its cut not yet noticed here) is waited
  // for up to `wait`.
  std::shared_ptr<Transfer> take(const std::string& key, std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    Slot* slot = parked_locked(lock, key, wait);
    if (!slot) return nullptr;
    slot->active = true;
    return slot->transfer;
  }
  // What `reading` returns of the parked transfer under `key` (waiting as
  // take() does), or `unknown`.
  template <class Result, class Read>
  Result peek(const std::string& key, std::chrono::milliseconds wait, Result unknown,
              Read&& reading) {
    std::unique_lock lock(mutex_);
    Slot* slot = parked_locked(lock, key, wait);
    return slot ? reading(*slot->transfer) : unknown;
  }

 private:
  struct Slot {
    std::shared_ptr<Transfer> transfer;
    bool active = false;
    Clock::time_point deadline{};
  };

  Slot* parked_locked(std::unique_lock<std::mutex>& lock, const std::string& key,
                      std::chrono::milliseconds wait) {
    Slot* slot = nullptr;
    changed_.wait_for(lock, wait, [&] {
      auto it = slots_.find(key);
      slot = it == slots_.end() ? nullptr : &it->second;
      return !slot || !slot->active;
    });
    return slot && !slot->active ? slot : nullptr;
  }

  void reap() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto next = Clock::time_point::max();
      for (auto it = slots_.begin(); it != slots_.end();) {
        Slot& slot = it->second;
        if (slot.active || slot.deadline > Clock::now()) {
          if (!slot.active) next = std::min(next, slot.deadline);
          ++it;
          continue;
        }
        const std::string key = it->first;
        auto transfer = std::move(slot.transfer);
        it = slots_.erase(it);
        lock.unlock();  // the drop takes other locks (the aggregator's)
        if (expired_) expired_(key, *transfer);
        transfer.reset();
        lock.lock();
        it = slots_.begin();  // others may have changed meanwhile
      }
      if (next == Clock::time_point::max()) {
        changed_.wait(lock);
      } else {
        changed_.wait_until(lock, next);
      }
    }
  }

  std::chrono::milliseconds grace_;
  std::function<void(const std::string&, Transfer&)> expired_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Slot> slots_;
  bool stopping_ = false;
  std::thread reaper_;  // last: it starts once the rest is constructed
};

}  // namespace flare::server
