// A crash inside a plugin call is reported as that plugin's, in that call, on
// stderr and in the report file, and the process still dies of its signal; a
// crash elsewhere is left alone. Real processes (crash_in_plugin), real signals.
#include "plugin_host/crash_report.hpp"

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/resource.h>

#include <doctest/doctest.h>

#include "common/child_process.hpp"
#include "temp_folder.hpp"

namespace {

using flare::testing::TempFolder;

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;
const std::string plugin_label =
    "plugin 'garbage_aggregator' (" + (fixtures / "libflare_garbage_aggregator.so").string() + ")";

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct CrashedRun {
  flare::common::ExitStatus status;
  std::string stderr_text;
  std::string report_file;
};

CrashedRun run_with_garbage(const std::string& garbage) {
  // The crashes are meant: no core files.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  TempFolder dir;
  flare::common::ChildProcess child(
      {CRASH_IN_PLUGIN_BIN, fixtures.string(), garbage, (dir / "report.log").string()},
      dir / "stderr.txt");
  const auto status = child.wait_for(std::chrono::seconds(20));
  REQUIRE(status);
  return {*status, read_text(dir / "stderr.txt"), read_text(dir / "report.log")};
}

void check_reported(const CrashedRun& run, int signal, const std::string& report) {
  INFO("stderr: " << run.stderr_text);
  CHECK(run.status.signal == signal);
  const std::string line = "crash_in_plugin: " + plugin_label + " " + report + "\n";
  CHECK(run.stderr_text.find(line) != std::string::npos);
  CHECK(run.report_file == line);
}

}  // namespace

TEST_CASE("a segmentation fault inside a plugin call names the plugin and the call") {
  check_reported(run_with_garbage("crash"), SIGSEGV, "crashed in call finalize (SIGSEGV)");
}

TEST_CASE("an abort inside a plugin call names the plugin and the call") {
  check_reported(run_with_garbage("abort"), SIGABRT, "crashed in call finalize (SIGABRT)");
}

TEST_CASE("an invalid pointer a plugin hands back is reported when the host reads it") {
  for (const char* garbage : {"garbage_pointer", "garbage_name"}) {
    CAPTURE(garbage);
    check_reported(run_with_garbage(garbage), SIGSEGV,
                   "crashed in call finalize (SIGSEGV while the host read its result: it "
                   "handed back an invalid pointer)");
  }
}

TEST_CASE("a crash outside plugin calls is not blamed on a plugin") {
  const auto run = run_with_garbage("host_abort");
  CHECK(run.status.signal == SIGABRT);
  CHECK(run.stderr_text.find("plugin") == std::string::npos);
  CHECK(run.report_file.empty());
}
