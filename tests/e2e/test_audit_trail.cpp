// A whole job through flare-run over mutual TLS: each site known by the
// certificate the run issued it, its updates in the audit trail with their
// checksums, and the run's files (keys, logs, models) private to their owner.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <set>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, path);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("a run over mutual TLS audits each site's identity and every update it accepted") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 2, ""));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";

  std::set<std::string> identities;
  std::set<std::pair<std::string, int>> updates;
  for (const auto& line : read_json_lines(run / "logs" / "audit.jsonl")) {
    INFO(line.dump());
    if (line["event"] == "connection") {
      CHECK(mentions(line["peer"].get<std::string>(), "127.0.0.1"));
      identities.insert(line["identity"].get<std::string>());
    } else if (line["event"] == "update_accepted") {
      CHECK(line["bytes"].get<int64_t>() > 0);
      CHECK(line["sha256"].get<std::string>().size() == 64);
      updates.insert({line["site"].get<std::string>(), line["round"].get<int>()});
    } else {
      CHECK(line["event"] == "initial_model_accepted");
    }
  }
  CHECK(identities == std::set<std::string>{"site/site-1", "site/site-2"});
  CHECK(updates == std::set<std::pair<std::string, int>>{
                       {"site-1", 0}, {"site-1", 1}, {"site-2", 0}, {"site-2", 1}});

  CHECK(mode_of(run) == 0700);
  CHECK(mode_of(run / "tls" / "site-1" / "participant.key") == 0600);
  CHECK(mode_of(run / "logs" / "audit.jsonl") == 0600);
  CHECK(mode_of(run / "logs" / "server.log") == 0600);
  CHECK(mode_of(run / "logs" / "site-1.rank0.log") == 0600);
  CHECK(mode_of(run / "models" / "global_round_2.safetensors") == 0600);
}
