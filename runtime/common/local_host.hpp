// Facts about this host a launcher needs: where our programs are, a free port.
#pragma once

#include <filesystem>

namespace flare::common {

// The folder holding the running executable (flare-run, flare-client, ...).
std::filesystem::path executable_dir();

// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
int free_tcp_port();

// Exits this process (code 3) as soon as its parent is gone, so a launcher
// killed with SIGKILL leaves no orphaned clients or workers behind.
void exit_when_parent_dies();

}  // namespace flare::common
