// Facts about this host a launcher needs: where our programs are, a free port.
#pragma once

#include <filesystem>

namespace flare::common {

// The folder holding the running executable (flare-run, flare-client, ...).
std::filesystem::path executable_dir();

// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
int free_tcp_port();

// Ends this process as soon as the process that started it is gone, so a
// launcher killed with SIGKILL leaves no orphaned clients or workers behind.
// The kernel kills it (SIGKILL: it leaves even when stopped) when the parent
// dies; a parent that died before this call, while the program was still
// loading, is found by comparing getppid() with the pid the launcher put in
// kParentPidVariable (common/child_process.hpp), and then the process exits
// at once (code 3). Without that variable (started by hand) the parent is the
// one it has now. A wrapper between launcher and program must exec it.
void exit_when_parent_dies();

}  // namespace flare::common
