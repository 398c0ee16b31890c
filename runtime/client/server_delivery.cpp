#include "client/server_delivery.hpp"

#include <algorithm>
#include <string>

namespace flare::client {

namespace {
// How often a waiting supervisor checks its window.
constexpr std::chrono::milliseconds kWaitSlice = std::chrono::seconds(5);
}  // namespace

void deliver_within(transport::ServerConnection& server, std::chrono::milliseconds window,
                    const std::function<void()>& send, spdlog::logger& log) {
  const auto deadline = std::chrono::steady_clock::now() + window;
  bool told = false;
  for (;;) {
    try {
      send();
      if (told) log.info("the server answers again; delivered");
      return;
    } catch (const transport::ServerUnreachableError& e) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        throw transport::ServerUnreachableError(
            std::string(e.what()) + "; gave up after trying again for " +
            fmt::format("{:g}", window.count() / 1000.0) + " s (server.reconnect_timeout_s)");
      if (!told)
        log.warn("{}; trying again for up to {:g} s (server.reconnect_timeout_s)", e.what(),
                 window.count() / 1000.0);
      told = true;
      try {
        server.wait_until_reachable(std::min(left, kWaitSlice));
      } catch (const transport::TransportError&) {
        // not back within the slice: the window decides
      }
    }
  }
}

}  // namespace flare::client
