// Sites decide what runs on them: flare-run --site-policy hands site-2 a
// policy file, which its flare-client enforces before any worker starts. A
// refusal fails the job naming the site and the reason, in metrics.jsonl and
// on the terminal, and site-2 never starts a rank.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

const fs::path kTrainer = FLARE_C_TRAINER;  // libflare_c_counter_trainer.so
const fs::path kClient = fs::path(FLARE_RUN_BIN).parent_path() / "flare-client";

// The policy entry of the trainer installed in `folder`, as an operator gets it.
std::string hash_plugin_entry(const fs::path& folder) {
  const auto r = run_command({kClient.string(), "--hash-plugin", "c_counter_trainer",
                              "--plugin-path", folder.string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(mentions(r.output, "[plugins.\"c_counter_trainer\"]"));
  REQUIRE(mentions(r.output, "version = \"1.0\""));
  return r.output;
}

struct PolicyRun {
  CommandResult result;
  fs::path run;
};

// A one-round job of two sites of `devices` ranks, site-2 under `policy`.
PolicyRun run_with_policy(const TempFolder& dir, const std::string& policy,
                          const std::string& devices = "devices = 2",
                          const std::string& trainer_extra = "") {
  std::string spec = c_trainer_job(dir.path() / "ws", 1, "", devices);
  if (!trainer_extra.empty())
    spec.replace(spec.find("[trainer.config]"), 0, trainer_extra + "\n");
  write_text(dir.path() / "job.toml", spec);
  write_text(dir.path() / "policy.toml", policy);
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(), "--site-policy",
                              "site-2=" + (dir.path() / "policy.toml").string()});
  return {r, dir.path() / "ws" / "run-1"};
}

// The job failed because site-2 refused it, saying `why`, before any of its
// ranks started; site-1 was not blamed.
void check_refused(const PolicyRun& r, const std::string& why) {
  INFO(r.result.output);
  CHECK(r.result.exit_code == 1);
  const auto refusals = lines_of_kind(r.run, "refusal");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0]["site"] == "site-2");
  CHECK_MESSAGE(mentions(refusals[0]["reason"].get<std::string>(), why), refusals[0].dump());
  const auto job = job_line(r.run);
  CHECK(job["status"] == "failed");
  CHECK(mentions(job["reason"].get<std::string>(), "site-2 refused the job: "));
  // The terminal says it too: the operator sees which site and why.
  CHECK(mentions(r.result.output, "site-2 refused the job"));
  CHECK(mentions(r.result.output, why));
  CHECK_FALSE(fs::exists(r.run / "logs" / "site-2.rank0.log"));
  CHECK(lines_of_kind(r.run, "failure").empty());
}

}  // namespace

TEST_CASE("a site whose policy allows the job's trainer and devices runs it") {
  TempFolder dir;
  const auto r = run_with_policy(
      dir, "[limits]\nmax_devices = 2\n\n" + hash_plugin_entry(kTrainer.parent_path()));
  INFO(r.result.output);
  REQUIRE(r.result.exit_code == 0);
  CHECK(job_line(r.run)["status"] == "succeeded");
  CHECK(lines_of_kind(r.run, "refusal").empty());
  CHECK(occurrences(r.run / "logs" / "site-2.log", "admits the job") == 1);
  CHECK(occurrences(r.run / "logs" / "site-1.log", "no site policy") == 1);
}

TEST_CASE("a trainer not on a site's allow-list is refused by that site") {
  TempFolder dir;
  check_refused(run_with_policy(dir, "[plugins.other]\nsha256 = \"" + std::string(64, '0') + "\"\n"),
                "plugin 'c_counter_trainer' is not allowed by this site's policy");
}

TEST_CASE("a trainer whose file changed since the site hashed it is refused") {
  TempFolder dir;
  const fs::path installed = dir.path() / "plugins";
  fs::create_directories(installed);
  fs::copy_file(kTrainer, installed / kTrainer.filename());
  const std::string entry = hash_plugin_entry(installed);
  // Bytes appended after the ELF data: still loadable, no longer the file allowed.
  std::ofstream(installed / kTrainer.filename(), std::ios::app) << "tampered";
  std::string job_trainer = "path = \"" + (installed / kTrainer.filename()).string() + "\"";
  TempFolder run_dir;
  std::string spec = c_trainer_job(run_dir.path() / "ws", 1, "");
  spec.replace(spec.find("path = "), spec.find('\n', spec.find("path = ")) - spec.find("path = "),
               job_trainer);
  write_text(run_dir.path() / "job.toml", spec);
  write_text(run_dir.path() / "policy.toml", entry);
  const auto r = run_command({FLARE_RUN_BIN, (run_dir.path() / "job.toml").string(),
                              "--site-policy", "site-2=" + (run_dir.path() / "policy.toml").string()});
  check_refused({r, run_dir.path() / "ws" / "run-1"}, "this site's policy allows");
}

TEST_CASE("a trainer version the site does not allow is refused") {
  TempFolder dir;
  std::string entry = hash_plugin_entry(kTrainer.parent_path());
  entry.replace(entry.find("version = \"1.0\""), 15, "version = \"0.9\"");
  check_refused(run_with_policy(dir, entry, "devices = 2", "version = \">=1.0\""),
                "the job asks for plugin 'c_counter_trainer' version >=1.0; this site allows "
                "version 0.9");
}

TEST_CASE("a job asking more devices of a site than its policy allows is refused") {
  TempFolder dir;
  check_refused(run_with_policy(dir, "[limits]\nmax_devices = 1\n\n" +
                                         hash_plugin_entry(kTrainer.parent_path())),
                "the job asks for 2 devices on this site; its policy allows at most 1");
}

TEST_CASE("a site whose policy file is wrong refuses, naming the file, line and key") {
  TempFolder dir;
  check_refused(run_with_policy(dir, "[limits]\nmax_devices = \"two\"\n"),
                "policy.toml:2: limits.max_devices: expected an integer");
}

TEST_CASE("--site-policy names a site of the job and an existing file") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 1, ""));
  write_text(dir.path() / "policy.toml", "");
  const auto wrong_site = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(),
                                       "--site-policy", "site-9=" + (dir.path() / "policy.toml").string()});
  CHECK(wrong_site.exit_code == 2);
  CHECK_MESSAGE(mentions(wrong_site.output, "found 'site-9'"), wrong_site.output);
  const auto no_file = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(),
                                    "--site-policy", "site-2=" + (dir.path() / "nope.toml").string()});
  CHECK(no_file.exit_code == 2);
  CHECK_MESSAGE(mentions(no_file.output, "nope.toml: expected a policy file"), no_file.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}
