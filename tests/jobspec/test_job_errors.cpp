// load_job on broken files: every message names the file, the line, the key
// and says what was expected and what was found.
#include <doctest/doctest.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

#include <string>

using flare::jobspec::JobSpecError;
using flare::jobspec::load_job;

TEST_CASE("says that a missing job file is missing") {
  const JobFolder folder;
  const auto file = folder.root() / "nope.toml";
  CHECK(message_of<JobSpecError>([&] { load_job(file); }) ==
        file.string() + ": expected a job file, found no file at that path");
}

TEST_CASE("rejects a folder given as the job file") {
  const JobFolder folder;
  CHECK(message_of<JobSpecError>([&] { load_job(folder.root()); }) ==
        folder.root().string() + ": expected a job file, found a directory");
}

TEST_CASE("reports a TOML syntax error with its line and column") {
  CHECK(
      error_for("[job]\nname = \"a\"\nnum_rounds = \n") ==
      "job.toml:3:14: invalid TOML: Error while parsing key-value pair: expected value, saw '\\n'");
}

TEST_CASE("rejects a value of the wrong type naming its line and key") {
  CHECK(error_for("[job]\nname = \"a\"\nnum_rounds = \"five\"\n") ==
        "job.toml:3: job.num_rounds: expected an integer from 1 to 1000000, found the string "
        "\"five\"");
  CHECK(error_for("[job]\nuse_tracking = 1\n") ==
        "job.toml:2: job.use_tracking: expected a boolean (true or false), found the integer 1");
  CHECK(error_for("[server]\nround_timeout_s = \"1h\"\n") ==
        "job.toml:2: server.round_timeout_s: expected a number of seconds from 0.001 to 604800 "
        "(7 days), found the string \"1h\"");
  CHECK(error_for("clients = 3\n") == "job.toml:1: clients: expected a table, found the integer 3");
  CHECK(error_for("[job]\nplugin_path = [\"a\", 3]\n") ==
        "job.toml:2: job.plugin_path[1]: expected a non-empty string, found the integer 3");
  CHECK(error_for("[trainer]\nplugin = \"x\"\nconfig = 1\n") ==
        "job.toml:3: trainer.config: expected a table, found the integer 1");
  CHECK(error_for("[trainer]\nplugin = \"x\"\nversion = \"latest\"\n") ==
        "job.toml:3: trainer.version: expected a version (\"1.2.0\") or a requirement "
        "(\">=1.2, <2\"), found the string \"latest\"");
}

TEST_CASE("rejects numbers out of range") {
  CHECK(error_for("[job]\nnum_rounds = 0\n") ==
        "job.toml:2: job.num_rounds: expected an integer from 1 to 1000000, found the integer 0");
  CHECK(error_for("[clients]\ncount = -1\n") ==
        "job.toml:2: clients.count: expected an integer from 1 to 100000, found the integer -1");
  CHECK(error_for("[clients]\ndevices = 0\n") ==
        "job.toml:2: clients.devices: expected an integer from 1 to 4096, a list of distinct CUDA "
        "device ids or \"auto\", found the integer 0");
  CHECK(error_for("[job]\nseed = -3\n") ==
        "job.toml:2: job.seed: expected an integer >= 0, found the integer -3");
  CHECK(error_for("[server]\nround_timeout_s = 0\n") ==
        "job.toml:2: server.round_timeout_s: expected a number of seconds from 0.001 to 604800 "
        "(7 days), found the integer 0");
  CHECK(error_for("[server]\nworker_start_timeout_s = -0.5\n") ==
        "job.toml:2: server.worker_start_timeout_s: expected a number of seconds from 0.001 to "
        "604800 (7 days), found the number -0.5");
  CHECK(error_for("[server]\nport = 70000\n") ==
        "job.toml:2: server.port: expected an integer from 0 to 65535, found the integer 70000");
  CHECK(error_for("[job]\nname = \"\"\n") ==
        "job.toml:2: job.name: expected a non-empty string, found the string \"\"");
}

TEST_CASE("refuses a duration that would overflow where it is used, for every timeout key") {
  // 1e18 s was once accepted and became a collective timeout of 1e21 ms.
  for (const char* key : {"server.round_timeout_s", "server.worker_start_timeout_s",
                          "clients.progress_timeout_s", "clients.rendezvous_timeout_s",
                          "sites.site-1.rendezvous_timeout_s"}) {
    const std::string path = key;
    const auto dot = path.rfind('.');
    for (const char* value : {"1e18", "1e300", "inf", "nan", "604800.5", "0.0009"}) {
      const std::string text =
          "[" + path.substr(0, dot) + "]\n" + path.substr(dot + 1) + " = " + value + "\n";
      const std::string message = error_for(text);
      CHECK_MESSAGE(message.starts_with("job.toml:2: " + path +
                                        ": expected a number of seconds from 0.001 to 604800 "
                                        "(7 days), found the number "),
                    text << " -> " << message);
    }
  }
}

TEST_CASE("accepts the ends of a duration's range") {
  CHECK(error_for("[data]\ndir = \"d\"\n[trainer]\nplugin = \"x\"\n"
                  "[server]\nround_timeout_s = 604800\nworker_start_timeout_s = 0.001\n") ==
        "no error");
}

TEST_CASE("refuses an empty job file: a job names its trainer") {
  CHECK(error_for("") ==
        "job.toml: trainer: expected a [trainer] table naming the job's trainer (plugin = "
        "\"<name>\" or path = \"<file.so>\"), found none");
}

TEST_CASE("refuses a job without a trainer, which once meant cifar10") {
  CHECK(error_for("[job]\nnum_rounds = 2\n[data]\ndir = \"d\"\n") ==
        "job.toml: trainer: expected a [trainer] table naming the job's trainer (plugin = "
        "\"<name>\" or path = \"<file.so>\"), found none");
}

TEST_CASE("refuses a job without its data, naming data.dir") {
  CHECK(error_for("[trainer]\nplugin = \"x\"\n") ==
        "job.toml: data.dir: expected the folder of the job's data, found none");
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\n") ==
        "job.toml:3: data.dir: expected the folder of the job's data, found none");
}

TEST_CASE("refuses sampling fewer sites a round than min_clients, or both ways of sampling") {
  CHECK(error_for("[job]\nmin_clients = 3\nclients_per_round = 2\n[clients]\ncount = 4\n") ==
        "job.toml:3: job.clients_per_round: expected at least job.min_clients (3), found 2");
  CHECK(error_for("[job]\nclients_per_round = 2\nclient_fraction = 0.5\n[clients]\ncount = 4\n") ==
        "job.toml:3: job.client_fraction: expected one of job.clients_per_round or "
        "job.client_fraction, found both");
}

TEST_CASE("refuses a heartbeat timeout that fits fewer than three beats") {
  CHECK(error_for("[server]\nheartbeat_interval_s = 2\nheartbeat_timeout_s = 5\n") ==
        "job.toml:3: server.heartbeat_timeout_s: expected server.heartbeat_timeout_s at least 3 x "
        "server.heartbeat_interval_s (2.0 s), found 5.0 s");
}

TEST_CASE("rejects min_clients above the client count") {
  CHECK(error_for("[job]\nmin_clients = 3\n[clients]\ncount = 2\n") ==
        "job.toml:2: job.min_clients: expected an integer from 1 to 2 (clients.count), found the "
        "integer 3");
}

TEST_CASE("rejects an unknown key with a suggestion") {
  CHECK(
      error_for("[job]\nname = \"a\"\nnum_round = 3\n") ==
      "job.toml:3: job.num_round: expected one of name, num_rounds, min_clients, clients_per_round, "
            "client_fraction, seed, workspace, "
      "use_tracking, plugin_path, found unknown key num_round (did you mean num_rounds?)");
  CHECK(
      error_for("[client]\ncount = 2\n") ==
      "job.toml:1: client: expected one of job, clients, sites, data, trainer, aggregator, server, "
      "found unknown key client (did you mean clients?)");
}

TEST_CASE("rejects a save_every below 1 and a negative keep_last, naming the range") {
  CHECK(error_for("[server]\nsave_every = 0\n") ==
        "job.toml:2: server.save_every: expected an integer from 1 to 1000000, found the "
        "integer 0");
  CHECK(error_for("[server]\nkeep_last = -1\n") ==
        "job.toml:2: server.keep_last: expected an integer from 0 to 1000000, found the "
        "integer -1");
}

TEST_CASE("rejects a data split that is neither iid nor dirichlet, and an alpha out of range") {
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\ndir = \"d\"\nsplit = \"label\"\n") ==
        "job.toml:5: data.split: expected one of \"iid\", \"dirichlet\", found the string "
        "\"label\"");
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\ndir = \"d\"\nalpha = 0\n") ==
        "job.toml:5: data.alpha: expected a number from 0.001 to 1.0e+06, found the integer 0");
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\ndir = \"d\"\nalpha = nan\n")
            .starts_with("job.toml:5: data.alpha: expected a number from 0.001 to 1.0e+06"));
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\ndir = \"d\"\nsplit = \"dirichlet\"\n"
                  "alpha = 0.1\n") == "no error");
}

TEST_CASE("rejects a wire_dtype that is none of the four, naming them") {
  CHECK(error_for("[server]\nwire_dtype = \"fp16\"\n") ==
        "job.toml:2: server.wire_dtype: expected one of \"float32\", \"bfloat16\", \"float16\", "
        "\"int8\", found the string \"fp16\"");
  CHECK(error_for("[server]\nwire_dtype = 16\n") ==
        "job.toml:2: server.wire_dtype: expected one of \"float32\", \"bfloat16\", \"float16\", "
        "\"int8\", found the integer 16");
}

TEST_CASE("rejects a key_metric_mode other than auto, max or min, naming them") {
  CHECK(error_for("[server]\nkey_metric_mode = \"lower\"\n") ==
        "job.toml:2: server.key_metric_mode: expected one of \"auto\", \"max\", \"min\", found "
        "the string \"lower\"");
  CHECK(error_for("[server]\nkey_metric_mode = -1\n") ==
        "job.toml:2: server.key_metric_mode: expected one of \"auto\", \"max\", \"min\", found "
        "the integer -1");
  CHECK(error_for("[trainer]\nplugin = \"x\"\n[data]\ndir = \"d\"\n[server]\n"
                  "key_metric = \"val_loss\"\nkey_metric_mode = \"min\"\n") == "no error");
}

TEST_CASE("rejects an unknown key far from every known one without a suggestion") {
  CHECK(error_for("[server]\nbanana = 1\n") ==
        "job.toml:2: server.banana: expected one of key_metric, key_metric_mode, round_timeout_s, "
        "worker_start_timeout_s, answer_timeout_s, heartbeat_interval_s, heartbeat_timeout_s, "
            "reconnect_timeout_s, save_every, keep_last, keep_checkpoints, wire_dtype, "
        "host, port, found unknown key banana");
}

TEST_CASE("rejects an answer timeout a site cannot ping within, and a non-boolean oversubscribe") {
  CHECK(error_for("[server]\nanswer_timeout_s = 1\n") ==
        "job.toml:2: server.answer_timeout_s: expected a number of seconds from 2.0 to 86400 "
        "(1 day), found the integer 1");
  CHECK(error_for("[clients]\noversubscribe = 1\n") ==
        "job.toml:2: clients.oversubscribe: expected a boolean (true or false), found the "
        "integer 1");
}

TEST_CASE("accepts any key inside a plugin's config table") {
  CHECK(error_for("[data]\ndir = \"d\"\n[trainer]\nplugin = \"x\"\n[trainer.config]\n"
                  "anything_goes = 1\n") == "no error");
}

TEST_CASE("rejects a site override for a site the job does not have") {
  CHECK(error_for("[clients]\ncount = 2\n[sites.site-3]\ndevices = 1\n") ==
        "job.toml:3: sites.site-3: expected a site of this job (site-1 to site-2), found unknown "
        "site site-3");
  CHECK(error_for("[sites.site-1]\ndevice = 1\n") ==
        "job.toml:2: sites.site-1.device: expected one of devices, accelerator, backend, nodes, "
        "master_addr, master_port, max_restarts, progress_timeout_s, rendezvous_timeout_s, "
        "found unknown key device "
        "(did you mean devices?)");
  CHECK(error_for("[sites.site-1]\ndevices = 0\n") ==
        "job.toml:2: sites.site-1.devices: expected an integer from 1 to 4096, a list of distinct "
        "CUDA device ids or \"auto\", found the integer 0");
}

TEST_CASE("rejects a plugin given both by name and by path") {
  CHECK(error_for("[trainer]\nplugin = \"cifar10\"\npath = \"libx.so\"\n") ==
        "job.toml:1: trainer: expected exactly one of trainer.plugin or trainer.path, found both");
}

TEST_CASE("rejects a plugin table with neither a name nor a path") {
  CHECK(error_for("[aggregator]\n[aggregator.config]\nweight = \"num_steps\"\n") ==
        "job.toml:1: aggregator: expected exactly one of aggregator.plugin or aggregator.path, "
        "found neither");
}

TEST_CASE("rejects a file path given as a plugin name") {
  CHECK(error_for("[trainer]\nplugin = \"lib/libx.so\"\n") ==
        "job.toml:2: trainer.plugin: expected a plugin name of letters, digits, '.', '_' or '-' "
        "(a file goes in path), found \"lib/libx.so\"");
}
