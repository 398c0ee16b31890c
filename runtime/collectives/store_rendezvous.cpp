#include "collectives/store_rendezvous.hpp"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace flare::collectives {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Rank 0 writes its generation here first; the other ranks read it to tell
// their group's store from the one of the group before.
const std::string kGenerationKey = "flare/generation";
// Between attempts, so that a store not up yet is not hammered.
constexpr milliseconds kRetryPause{100};
// How often a rank looks whether all others have arrived.
constexpr milliseconds kArrivalPoll{20};
// How often a rank looks whether rank 0's store listens yet.
constexpr milliseconds kListenPoll{10};
// Rank 0 gives up this much after the others, so that they still find its
// store up to tell them who is missing.
constexpr milliseconds kHostGrace{500};

std::string arrived_key(int rank) { return "flare/arrived/" + std::to_string(rank); }

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// c10::Error's what() carries a backtrace; its first line says what happened.
std::string brief(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  const std::string text = c10_error ? c10_error->what_without_backtrace() : error.what();
  return text.substr(0, text.find('\n'));
}

// "rank 1 (node 1)", "ranks 2, 3 (node 1)", "ranks 1, 3 (nodes 1, 2)".
std::string ranks_text(const std::vector<int>& ranks, int ranks_per_node) {
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  std::set<int> nodes;
  for (size_t i = 0; i < ranks.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(ranks[i]);
    if (ranks_per_node > 0) nodes.insert(ranks[i] / ranks_per_node);
  }
  if (nodes.empty()) return out;
  out += nodes.size() == 1 ? " (node " : " (nodes ";
  for (auto it = nodes.begin(); it != nodes.end(); ++it)
    out += (it == nodes.begin() ? "" : ", ") + std::to_string(*it);
  return out + ")";
}

// Whether something accepts TCP connections at host:port: one attempt,
// given up after `timeout`, closed at once.
bool listening(const std::string& host, int port, milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return false;
  bool accepted = false;
  for (const addrinfo* a = found; a && !accepted; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      accepted = true;
    } else if (errno == EINPROGRESS) {
      pollfd connecting{fd, POLLOUT, 0};
      int error = 0;
      socklen_t size = sizeof error;
      accepted = ::poll(&connecting, 1, static_cast<int>(timeout.count())) == 1 &&
                 ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0;
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return accepted;
}

class Rendezvous {
 public:
  explicit Rendezvous(const ProcessGroupOptions& options)
      : options_(options), deadline_(Clock::now() + options.rendezvous_timeout) {}

  c10::intrusive_ptr<c10d::Store> join() {
    auto store = options_.rank == 0 ? host_store() : find_store();
    await_every_rank(*store);
    // The backends' own handshakes through the store are bounded alike.
    store->setTimeout(options_.rendezvous_timeout);
    return store;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::string group =
        options_.group_name.empty() ? "worker group" : "worker group of " + options_.group_name;
    throw RendezvousError(group + ": " + what);
  }

  std::string address() const {
    return options_.master_addr + ":" + std::to_string(options_.master_port);
  }

  std::string within() const {
    char text[48];
    std::snprintf(text, sizeof(text), "within %g s",
                  std::chrono::duration<double>(options_.rendezvous_timeout).count());
    return text;
  }

  // Never zero: to c10d, a timeout of 0 means none.
  milliseconds left() const {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline_ - Clock::now());
    return std::max(left, milliseconds(1));
  }

  bool no_time_for_another_try() const { return Clock::now() + kRetryPause >= deadline_; }

  c10::intrusive_ptr<c10d::TCPStore> open_store(bool host) const {
    c10d::TCPStoreOptions store;
    store.port = static_cast<std::uint16_t>(options_.master_port);
    store.isServer = host;
    store.waitWorkers = false;  // arrivals are counted per rank, to name who is missing
    // c10d connects within whole seconds (less than one gives up at once).
    store.timeout = std::chrono::ceil<std::chrono::seconds>(left());
    return c10::make_intrusive<c10d::TCPStore>(options_.master_addr, store);
  }

  // The port may still be held for a moment by the group before this one.
  c10::intrusive_ptr<c10d::Store> host_store() const {
    for (;;) {
      try {
        auto store = open_store(true);
        store->set(kGenerationKey, bytes_of(std::to_string(options_.generation)));
        return store;
      } catch (const std::exception& e) {
        if (no_time_for_another_try())
          fail("could not host the rendezvous at " + address() + " " + within() + ": " + brief(e));
      }
      std::this_thread::sleep_for(kRetryPause);
    }
  }

  c10::intrusive_ptr<c10d::Store> find_store() const {
    std::string why = "nothing answered";
    for (;;) {
      // c10d's client, finding nothing listening, sleeps a whole second before
      // it tries again, and the other ranks are usually up before rank 0's
      // store: they connect once it listens.
      if (!listening(options_.master_addr, options_.master_port, std::min(left(), kRetryPause))) {
        if (no_time_for_another_try())
          fail("could not reach the rendezvous at " + address() + " (node 0) " + within() + " (" +
               why + ")");
        std::this_thread::sleep_for(kListenPoll);
        continue;
      }
      std::optional<int64_t> stamp;
      try {
        auto store = open_store(false);
        const auto value = store->get(kGenerationKey);
        stamp = std::stoll(std::string(value.begin(), value.end()));
        if (*stamp == options_.generation) return store;
        why = "it still served generation " + std::to_string(*stamp);
      } catch (const std::exception& e) {
        why = brief(e);
      }
      if (stamp && *stamp > options_.generation)
        fail("the rendezvous at " + address() + " serves generation " + std::to_string(*stamp) +
             ", newer than this rank's " + std::to_string(options_.generation));
      if (no_time_for_another_try())
        fail("could not reach the rendezvous at " + address() + " (node 0) " + within() + " (" +
             why + ")");
      std::this_thread::sleep_for(kRetryPause);
    }
  }

  // Polls rather than waits: a timed-out c10d wait leaves its connection
  // unusable, and the connection is needed to tell who is missing.
  void await_every_rank(c10d::Store& store) const {
    std::vector<std::string> keys;
    for (int r = 0; r < options_.world_size; ++r) keys.push_back(arrived_key(r));
    try {
      store.set(keys[options_.rank], bytes_of("1"));
      const auto give_up = options_.rank == 0 ? deadline_ + kHostGrace : deadline_;
      while (!store.check(keys)) {
        if (Clock::now() >= give_up) {
          std::vector<int> missing;
          for (int r = 0; r < options_.world_size; ++r)
            if (!store.check({keys[r]})) missing.push_back(r);
          if (!missing.empty())  // else the last one came just now
            fail(ranks_text(missing, options_.ranks_per_node) +
                 " did not join the rendezvous at " + address() + " " + within());
        }
        std::this_thread::sleep_for(kArrivalPoll);
      }
    } catch (const RendezvousError&) {
      throw;
    } catch (const std::exception& e) {
      fail("lost the rendezvous at " + address() + " before every rank arrived (" + brief(e) +
           ")");
    }
  }

  const ProcessGroupOptions& options_;
  const Clock::time_point deadline_;
};

}  // namespace

c10::intrusive_ptr<c10d::Store> join_rendezvous(const ProcessGroupOptions& options) {
  return Rendezvous(options).join();
}

}  // namespace flare::collectives
