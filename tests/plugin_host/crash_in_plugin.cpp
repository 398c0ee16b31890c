// A real process for test_crash_report: runs one round of the garbage_aggregator
// fixture with plugin crash reports installed, so the crash is a real signal.
//   crash_in_plugin FIXTURE_DIR GARBAGE REPORT_FILE
// GARBAGE "host_abort": the plugin behaves and the host itself aborts after.
#include <cstdlib>
#include <string>

#include "plugin_fixtures.hpp"
#include "plugin_host/crash_report.hpp"

int main(int argc, char** argv) {
  using namespace flare::host;
  if (argc != 4) return 2;
  const std::string garbage = argv[2];
  install_plugin_crash_reports("crash_in_plugin");
  const CrashReportFile report(argv[3]);
  const HostServices host;
  AggregatorInstance aggregator(
      load_plugin({"garbage_aggregator", {}, {argv[1]}}, FLARE_PLUGIN_AGGREGATOR),
      R"({"garbage": ")" + garbage + R"("})", host);
  flare::testing::run_round(aggregator);
  aggregator.finalize();
  if (garbage == "host_abort") std::abort();
  return 0;
}
