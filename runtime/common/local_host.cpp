#include "local_host.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "common/child_process.hpp"

namespace flare::common {

std::filesystem::path executable_dir() {
  return std::filesystem::canonical("/proc/self/exe").parent_path();
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a socket on 127.0.0.1 to find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void exit_when_parent_dies() {
  pid_t launcher = ::getppid();
  if (const char* recorded = std::getenv(kParentPidVariable)) {
    launcher = static_cast<pid_t>(std::strtol(recorded, nullptr, 10));
    ::unsetenv(kParentPidVariable);  // this process's children get its own pid
  }
  // Asked for first, checked second: a parent dying after prctl is signalled,
  // one that died before has already handed this process to another parent.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != launcher) {
    std::fprintf(stderr, "the process that started this one (pid %d) is gone; exiting\n",
                 static_cast<int>(launcher));
    std::_Exit(3);
  }
}

}  // namespace flare::common
