#include "local_host.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <thread>

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
  const pid_t parent = ::getppid();
  // The kernel's signal covers most cases; the poll covers a parent that died
  // before prctl ran.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  std::thread([parent] {
    while (::getppid() == parent) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::_Exit(3);
  }).detach();
}

}  // namespace flare::common
