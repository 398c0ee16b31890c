// A job whose sites are named as a deployment names them ([clients] names):
// flare-run runs them under those names (their folders, logs, certificates,
// metrics and --site-policy), in the list's order (each site's data shard).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

const fs::path kClient = fs::path(FLARE_RUN_BIN).parent_path() / "flare-client";

// Two sites, not in alphabetical order: the list's order is the shard order.
std::string named_job(const fs::path& workspace) {
  std::string spec = c_trainer_job(workspace, 1, "report_steps = 2");
  spec.replace(spec.find("count = 2"), 9, "names = [\"hospital-b\", \"hospital-a\"]");
  return spec;
}

}  // namespace

TEST_CASE("a job's sites run under the names the job gives them, in its order") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", named_job(dir.path() / "ws"));
  const auto hash = run_command({kClient.string(), "--hash-plugin", "c_counter_trainer",
                                 "--plugin-path", fs::path(FLARE_C_TRAINER).parent_path().string()});
  REQUIRE(hash.exit_code == 0);
  write_text(dir.path() / "policy.toml", hash.output);
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(), "--use_tracking",
                              "--site-policy",
                              "hospital-a=" + (dir.path() / "policy.toml").string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(job_line(run)["status"] == "succeeded");

  const std::set<std::string> names = {"hospital-a", "hospital-b"};
  std::set<std::string> folders;
  for (const auto& entry : fs::directory_iterator(run / "sites"))
    folders.insert(entry.path().filename().string());
  CHECK(folders == names);
  for (const std::string& site : names) {
    CHECK(fs::exists(run / "logs" / (site + ".rank0.log")));
    CHECK(fs::exists(run / "tls" / site / "participant.crt"));
  }
  CHECK(occurrences(run / "logs" / "hospital-a.log", "admits the job") == 1);
  CHECK(occurrences(run / "logs" / "hospital-b.log", "no site policy") == 1);

  std::set<std::string> trained;
  for (const auto& line : lines_of_kind(run, "site")) trained.insert(line["site"].get<std::string>());
  CHECK(trained == names);
  // The trainer reports 100 * step + its site index: hospital-b is shard 0.
  int steps = 0;
  for (const auto& line : lines_of_kind(run, "train_step")) {
    CAPTURE(line.dump());
    const double site_index = line["site"] == "hospital-b" ? 0 : 1;
    CHECK(names.contains(line["site"].get<std::string>()));
    CHECK(line["images_per_s"].get<double>() == 100.0 * line["step"].get<double>() + site_index);
    ++steps;
  }
  CHECK(steps == 4);
  std::set<std::string> identities;
  for (const auto& line : read_json_lines(run / "logs" / "audit.jsonl"))
    if (line["event"] == "connection") identities.insert(line["identity"].get<std::string>());
  CHECK(identities == std::set<std::string>{"site/hospital-a", "site/hospital-b"});
}

TEST_CASE("flare-run exports a named job with its names and refuses another count for it") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", named_job(dir.path() / "ws"));
  const auto exported = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(),
                                     "--export_config", (dir.path() / "out").string()});
  INFO(exported.output);
  REQUIRE(exported.exit_code == 0);
  CHECK(occurrences(dir.path() / "out" / "job.toml", "names = [\"hospital-b\", \"hospital-a\"]") == 1);

  const auto more = run_command({FLARE_RUN_BIN, (dir.path() / "out" / "job.toml").string(),
                                 "--n_clients", "3"});
  CHECK(more.exit_code == 2);
  CHECK_MESSAGE(mentions(more.output, "clients.count: expected 2, the number of names in "
                                      "clients.names (one site per name), found the integer 3"),
                more.output);
  const auto wrong_site = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(),
                                       "--site-policy", "site-1=" + (dir.path() / "job.toml").string()});
  CHECK(wrong_site.exit_code == 2);
  CHECK_MESSAGE(mentions(wrong_site.output, "expected a site of the job (hospital-b, hospital-a), "
                                            "found 'site-1'"),
                wrong_site.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}
