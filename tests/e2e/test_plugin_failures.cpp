// A plugin that hands back garbage or crashes fails the job naming that
// plugin and the call, blamed on it: the aggregator's faults are the
// aggregator's (not a site's rank's), a crash in flare-run is said on its
// terminal and in the server log, and a trainer's crash in flare-worker
// reaches the job's reason through its site's failure report.
#include <doctest/doctest.h>

#include <string>

#include <sys/resource.h>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

void replace(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  text.replace(at, from.size(), to);
}

// The plain-C trainer's job, one rank per site, aggregated by the
// garbage_aggregator fixture handing back `garbage` from finalize.
std::string job_with_aggregator(const fs::path& ws, const std::string& garbage) {
  std::string spec = c_trainer_job(ws, 1, "", "devices = 1");
  replace(spec, "plugin = \"fedavg\"",
          "path = \"" FLARE_GARBAGE_AGGREGATOR "\"\nconfig = { garbage = \"" + garbage + "\" }");
  return spec;
}

CommandResult run_job(const TempFolder& dir, const std::string& spec) {
  // The crashes are meant: no core files.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  write_text(dir.path() / "job.toml", spec);
  return run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
}

}  // namespace

TEST_CASE("an aggregator's NaN global model fails the job as the aggregator's failure") {
  TempFolder dir;
  const auto r = run_job(dir, job_with_aggregator(dir.path() / "ws", "nan"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(run, {{"aggregator", "garbage_aggregator"},
                                {"file", FLARE_GARBAGE_AGGREGATOR},
                                {"call", "finalize"},
                                {"action", "fail_job"}}) == 1);
  CHECK(lines_of_kind(run, "failure").size() == 1);  // no site's rank is blamed
  const auto reason = job_line(run).value("reason", "");
  CHECK_MESSAGE(mentions(reason, "plugin 'garbage_aggregator'"), reason);
  CHECK_MESSAGE(mentions(reason, "finalize handed back an invalid result"), reason);
  CHECK_MESSAGE(mentions(reason, "holds NaN"), reason);
  CHECK(mentions(r.output, "finalize handed back an invalid result"));
  CHECK_FALSE(fs::exists(run / "models" / "global_round_1.safetensors"));
}

TEST_CASE("an aggregator's invalid pointer crashes flare-run saying so on stderr and in the log") {
  TempFolder dir;
  const auto r = run_job(dir, job_with_aggregator(dir.path() / "ws", "garbage_pointer"));
  INFO(r.output);
  CHECK(r.exit_code != 0);
  const std::string report =
      "flare-run: plugin 'garbage_aggregator' (" FLARE_GARBAGE_AGGREGATOR
      ") crashed in call finalize (SIGSEGV while the host read its result: it handed back an "
      "invalid pointer)\n";
  CHECK(mentions(r.output, report));
  CHECK(occurrences(dir.path() / "ws" / "run-1" / "logs" / "server.log", report) == 1);
}

TEST_CASE("a trainer's crash in train reaches the job's reason through its site's report") {
  TempFolder dir;
  std::string spec = c_trainer_job(dir.path() / "ws", 1, "garbage = \"crash_in_train\"",
                                   "devices = 1", 1);
  replace(spec, FLARE_C_TRAINER, FLARE_GARBAGE_TRAINER);
  const auto r = run_job(dir, spec);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(run, {{"site", "site-1"}, {"rank", 0}, {"cause", {{"signal", 11}}}}) ==
        1);
  const auto reason = job_line(run).value("reason", "");
  CHECK_MESSAGE(mentions(reason, "plugin 'garbage_trainer' (" FLARE_GARBAGE_TRAINER
                                 ") crashed in call train (SIGSEGV)"),
                reason);
}
