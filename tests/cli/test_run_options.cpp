// flare-run's command line: both spellings, overrides, and usage errors.
#include "cli/run_options.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

using flare::cli::parse_run_options;
using flare::cli::RunOptions;
using flare::cli::to_overrides;
using flare::cli::UsageError;

namespace {

RunOptions parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"flare-run"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_run_options(static_cast<int>(argv.size()), argv.data());
}

// The first line of the UsageError `args` cause, or "no error".
std::string usage_error(std::initializer_list<const char*> args) {
  try {
    parse(args);
  } catch (const UsageError& error) {
    const std::string message = error.what();
    return message.substr(0, message.find('\n'));
  }
  return "no error";
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("reads the job file and no options") {
  const RunOptions options = parse({"jobs/cifar10.toml"});
  CHECK(options.job_file == "jobs/cifar10.toml");
  CHECK_FALSE(options.n_clients);
  CHECK_FALSE(options.num_rounds);
  CHECK_FALSE(options.use_tracking);
  CHECK_FALSE(options.export_config);
  CHECK_FALSE(options.workspace);
  CHECK(options.sets.empty());
  CHECK_FALSE(options.show_help);
  CHECK(to_overrides(options).empty());
}

TEST_CASE("reads the underscore spellings") {
  const RunOptions options =
      parse({"job.toml", "--n_clients", "3", "--num_rounds=7", "--use_tracking", "--export_config",
             "out", "--workspace", "ws"});
  CHECK(options.n_clients == 3);
  CHECK(options.num_rounds == 7);
  CHECK(options.use_tracking);
  CHECK(options.export_config == std::filesystem::path("out"));
  CHECK(options.workspace == std::filesystem::path("ws"));
}

TEST_CASE("reads the dash spellings") {
  const RunOptions options = parse(
      {"--n-clients=4", "--num-rounds", "2", "--use-tracking", "--export-config=cfg", "job.toml"});
  CHECK(options.job_file == "job.toml");
  CHECK(options.n_clients == 4);
  CHECK(options.num_rounds == 2);
  CHECK(options.use_tracking);
  CHECK(options.export_config == std::filesystem::path("cfg"));
}

TEST_CASE("collects repeated --set options in order") {
  const RunOptions options = parse({"job.toml", "--set", "a.b=1", "--set=trainer.config.lr=0.01"});
  CHECK(options.sets == Strings{"a.b=1", "trainer.config.lr=0.01"});
}

TEST_CASE("turns options into job spec overrides with --set last") {
  const RunOptions options = parse({"job.toml", "--set", "job.num_rounds=9", "--n_clients", "3",
                                    "--num_rounds", "4", "--use_tracking", "--workspace", "2024"});
  CHECK(to_overrides(options) == Strings{"clients.count=3", "job.min_clients=3", "job.num_rounds=4",
                                         "job.use_tracking=true", "job.workspace=\"2024\"",
                                         "job.num_rounds=9"});
}

TEST_CASE("leaves min_clients alone when a --set names it") {
  const RunOptions options =
      parse({"job.toml", "--n_clients", "3", "--set", "job.min_clients = 2"});
  CHECK(to_overrides(options) == Strings{"clients.count=3", "job.min_clients = 2"});
}

TEST_CASE("needs no job file for --help or --version") {
  const RunOptions help = parse({"--help"});
  CHECK(help.show_help);
  CHECK(help.help_text.find("--n_clients") != std::string::npos);
  CHECK(help.help_text.find("--set") != std::string::npos);
  CHECK(parse({"--version"}).show_version);
}

TEST_CASE("rejects a command line without a job file") {
  CHECK(usage_error({}) == "expected a job file (JOB.toml), found none");
  CHECK(usage_error({"--num_rounds", "3"}) == "expected a job file (JOB.toml), found none");
}

TEST_CASE("rejects an unknown option naming it") {
  CHECK(usage_error({"job.toml", "--rounds", "3"}) == "unrecognised option '--rounds'");
}

TEST_CASE("rejects an abbreviated option instead of guessing") {
  CHECK(usage_error({"job.toml", "--num", "3"}) == "unrecognised option '--num'");
}

TEST_CASE("rejects a count that is not a positive integer") {
  CHECK(usage_error({"job.toml", "--n_clients", "0"}) ==
        "--n_clients: expected an integer >= 1, found 0");
  CHECK(usage_error({"job.toml", "--num-rounds", "-2"}) ==
        "--num_rounds: expected an integer >= 1, found -2");
  CHECK(usage_error({"job.toml", "--n_clients", "two"}) ==
        "the argument ('two') for option '--n_clients' is invalid");
}

TEST_CASE("rejects an option given under both spellings") {
  CHECK(usage_error({"job.toml", "--n_clients", "2", "--n-clients", "3"}) ==
        "expected --n_clients once, found it also as --n-clients");
}

TEST_CASE("rejects a second job file") {
  CHECK(usage_error({"a.toml", "b.toml"}) ==
        "too many positional options have been specified on the command line");
}

TEST_CASE("--resume takes a run folder and no job file") {
  const RunOptions options = parse({"--resume", "workspace/latest"});
  REQUIRE(options.resume_dir);
  CHECK(*options.resume_dir == "workspace/latest");
  CHECK(options.job_file.empty());
  CHECK(to_overrides(options).empty());
}

TEST_CASE("--resume keeps a site's policy, which is the site's and not the job's") {
  const RunOptions options = parse({"--resume", "run-1", "--site-policy", "site-2=p.toml"});
  CHECK(options.site_policies.at("site-2") == "p.toml");
}

TEST_CASE("--resume refuses a job file or an option that would change the job") {
  CHECK(usage_error({"--resume", "run-1", "job.toml"}) ==
        "--resume runs RUN_DIR/job.toml unchanged: expected no job file or job option beside it, "
        "found a job file ('job.toml')");
  CHECK(usage_error({"job.toml", "--resume", "run-1"}) ==
        "--resume runs RUN_DIR/job.toml unchanged: expected no job file or job option beside it, "
        "found a job file ('job.toml')");
  for (const auto& [option, value] :
       std::vector<std::pair<const char*, const char*>>{{"--n_clients", "2"},
                                                        {"--num-rounds", "4"},
                                                        {"--workspace", "w"},
                                                        {"--export_config", "out"},
                                                        {"--set", "job.num_rounds=9"}}) {
    const std::string error = usage_error({"--resume", "run-1", option, value});
    CHECK(error == "--resume runs RUN_DIR/job.toml unchanged: expected no job file or job option "
                   "beside it, found " + std::string(option));
  }
  CHECK(usage_error({"--resume", "run-1", "--use_tracking"}) ==
        "--resume runs RUN_DIR/job.toml unchanged: expected no job file or job option beside it, "
        "found --use_tracking");
}

TEST_CASE("--resume refuses an empty run folder name") {
  CHECK(usage_error({"--resume", ""}) == "--resume: expected a run folder, found ''");
}
