// The supervisor's few messages to the server (a failure report, a refusal):
// a server that does not answer may be restarting, so each is tried again
// within the job's reconnect window instead of being lost.
#pragma once

#include <chrono>
#include <functional>

#include <spdlog/spdlog.h>

#include "transport/server_connection.hpp"

namespace flare::client {

// Runs `send` (a call on `server`) until it goes through. While the server is
// unreachable it waits for it and tries again until `window` passes
// (server.reconnect_timeout_s), then throws ServerUnreachableError naming the
// window and the last error. Any other refusal is thrown at once.
void deliver_within(transport::ServerConnection& server, std::chrono::milliseconds window,
                    const std::function<void()>& send, spdlog::logger& log);

}  // namespace flare::client
