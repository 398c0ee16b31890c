// How long in-memory provisioning takes (a CA, the server, N sites: one key
// and one signature each), so flare-run's loopback mTLS start-up cost is known.
// Usage: flare-bench-ephemeral [repeats]   prints the median per site count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "identity/ephemeral.hpp"

int main(int argc, char** argv) {
  int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 11;
  std::printf("sites  median_ms  min_ms  ms_per_participant\n");
  for (int sites : {2, 100}) {
    std::vector<std::string> names;
    for (int i = 1; i <= sites; ++i) names.push_back("site-" + std::to_string(i));
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
      auto start = std::chrono::steady_clock::now();
      auto federation = flare::identity::provision_ephemeral("127.0.0.1", 8002, names);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      if (federation.sites.size() != names.size()) return 1;
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    std::printf("%5d  %9.2f  %6.2f  %18.3f\n", sites, median, ms.front(), median / (sites + 2));
  }
  return 0;
}
