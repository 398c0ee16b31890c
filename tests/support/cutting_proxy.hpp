// A TCP proxy on loopback between a site's ServerConnection and a real
// server that cuts the connection (a reset, as a dropped link or a restarted
// router gives) once a given number of bytes went one way: a real cut, in
// the middle of a real gRPC stream. Optionally it then refuses connections
// for a while (a server that is unreachable a moment). Counts the bytes it
// forwards each way, to tell a resumed transfer from one that started over.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flare::testing {

class CuttingProxy {
 public:
  enum Direction { kToServer = 0, kToSite = 1 };

  explicit CuttingProxy(int server_port) : server_port_(server_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = loopback(0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 16) != 0)
      throw std::runtime_error("CuttingProxy: cannot listen on loopback");
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CuttingProxy() {
    stopping_ = true;
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    ::close(listener_);
  }
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // From now on, counts the bytes going `direction`; after `bytes` of them,
  // resets the connection carrying them, once, then refuses connections for
  // `blackout`.
  void cut_after(Direction direction, uint64_t bytes,
                 std::chrono::milliseconds blackout = std::chrono::milliseconds(0)) {
    std::lock_guard lock(mutex_);
    watched_ = direction;
    armed_at_[0] = forwarded_[0].load();
    armed_at_[1] = forwarded_[1].load();
    cut_at_bytes_ = bytes;
    blackout_ = blackout;
    armed_ = true;
  }
  bool has_cut() const { return cut_done_; }
  // Bytes forwarded `direction` since cut_after.
  uint64_t bytes_since_armed(Direction direction) const {
    return forwarded_[direction] - armed_at_[direction];
  }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  // Closed with a reset, not a FIN: the peer sees the connection fail.
  static void reset(int fd) {
    const linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    ::close(fd);
  }
  bool in_blackout() {
    std::lock_guard lock(mutex_);
    return cut_done_ && std::chrono::steady_clock::now() < cut_time_ + blackout_;
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int site = ::accept(listener_, nullptr, nullptr);
      if (site < 0) continue;
      if (in_blackout()) {
        reset(site);
        continue;
      }
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = loopback(server_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        reset(site);
        ::close(server);
        continue;
      }
      {
        std::lock_guard lock(mutex_);
        open_.insert(site);
        open_.insert(server);
      }
      pumps_.emplace_back([this, site, server] { pump(site, server); });
    }
  }

  // How many of `n` bytes going `direction` may pass before the cut (n: no cut).
  size_t allowed(Direction direction, size_t n) {
    std::lock_guard lock(mutex_);
    if (!armed_ || cut_done_ || direction != watched_) return n;
    const uint64_t sent = forwarded_[direction] - armed_at_[direction];
    const uint64_t left = cut_at_bytes_ > sent ? cut_at_bytes_ - sent : 0;
    if (left >= n) return n;
    cut_done_ = true;
    cut_time_ = std::chrono::steady_clock::now();
    return static_cast<size_t>(left);
  }

  void pump(int site, int server) {
    std::vector<char> buffer(64 << 10);
    pollfd fds[2] = {{site, POLLIN, 0}, {server, POLLIN, 0}};
    bool open = true;
    while (open && !stopping_) {
      if (::poll(fds, 2, 50) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const auto direction = i == 0 ? kToServer : kToSite;
        const int to = i == 0 ? server : site;
        const ssize_t got = ::read(fds[i].fd, buffer.data(), buffer.size());
        if (got <= 0) {
          open = false;
          break;
        }
        const size_t pass = allowed(direction, static_cast<size_t>(got));
        if (!write_all(to, buffer.data(), pass)) open = false;
        forwarded_[direction] += pass;
        if (pass < static_cast<size_t>(got)) open = false;
      }
    }
    {
      std::lock_guard lock(mutex_);
      open_.erase(site);
      open_.erase(server);
    }
    reset(site);
    reset(server);
  }

  static bool write_all(int fd, const char* data, size_t n) {
    while (n > 0) {
      const ssize_t put = ::send(fd, data, n, MSG_NOSIGNAL);
      if (put <= 0) return false;
      data += put;
      n -= static_cast<size_t>(put);
    }
    return true;
  }

  int server_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_ = false;
  std::mutex mutex_;
  std::set<int> open_;
  Direction watched_ = kToServer;
  bool armed_ = false;
  std::atomic<bool> cut_done_ = false;
  uint64_t cut_at_bytes_ = 0;
  uint64_t armed_at_[2] = {0, 0};
  std::atomic<uint64_t> forwarded_[2] = {0, 0};
  std::chrono::steady_clock::time_point cut_time_;
  std::chrono::milliseconds blackout_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
};

}  // namespace flare::testing
