// The job spec: what a federated job is (rounds, sites, plugins, data, server),
// read from a TOML file plus command-line overrides, validated, resolved
// (every default filled, every path absolute) and written back out.
// The library's public face: its other headers are internal to runtime/jobspec/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flare::jobspec {

// A trainer or aggregator plugin: by name (libflare_<name>.so on the plugin
// search path) or by file. Exactly one of `name` / `path` is set.
struct PluginRef {
  std::string name;
  std::filesystem::path path{};                      // absolute when set
  // What the plugin's version must satisfy (policy/version_requirement.hpp),
  // as written; empty: any version. Checked at load against its descriptor,
  // and by a site's policy before its workers start.
  std::string version{};
  nlohmann::json config = nlohmann::json::object();  // the plugin's TOML table
  bool operator==(const PluginRef&) const = default;
};

// A site's worker group: how many ranks, on which devices, over how many
// hosts, and how its supervisor treats a failed or hung rank. Written as
// [clients] (every site's defaults) and [sites.<name>] (one site's overrides).
// Devices are only named here; devices::plan_devices resolves "auto" against
// the machine a group starts on.
struct SiteSpec {
  std::string name;                       // clients.names, else "site-1" .. "site-N"; empty in site_defaults
  int devices = 1;                        // ranks per node; 0 when devices = "auto"
  std::vector<int> device_ids;            // CUDA ids of devices = [..], one per rank
  bool devices_auto = false;              // devices = "auto": decided on the node at start
  std::string accelerator = "auto";       // "auto" | "cpu" | "cuda"
  std::string backend = "auto";           // "auto" (NCCL on CUDA, Gloo on CPU) | "gloo" | "nccl"
  int nodes = 1;                          // hosts the group spans (torchrun's nnodes)
  std::string master_addr = "127.0.0.1";  // rendezvous host of a multi-node group
  int master_port = 0;                    // 0 = chosen at start (every node on this machine)
  int max_restarts = 0;                   // restarts of a failed group, from the global model
  double progress_timeout_s = 600;        // a busy rank silent this long counts as hung
  double rendezvous_timeout_s = 300;      // bounds joining the group: every rank must arrive
  bool operator==(const SiteSpec&) const = default;
};

struct JobSpec {
  std::filesystem::path source;  // absolute path of the file it was read from
  std::string name = "cifar10";
  int num_rounds = 5;   // >= 1
  int min_clients = 2;  // 1..n_clients; defaults to n_clients
  // Sites asked to train each round, drawn from those still in the job with
  // the job's seed: clients_per_round (min_clients..n_clients, default all),
  // or client_fraction of n_clients (rounded up, at least min_clients), not both.
  int clients_per_round = 0;   // 0: client_fraction decides, else all
  double client_fraction = 0;  // 0: unset
  uint64_t seed = 0;
  std::filesystem::path workspace;  // default <cwd>/workspace/<name>
  bool use_tracking = false;
  std::vector<std::filesystem::path> plugin_path;  // extra plugin folders
  int n_clients = 2;                               // >= 1
  // More CPU ranks on one machine than devices::kCpuRanksPerCore per core
  // are refused unless the job says it means it ([clients] oversubscribe).
  bool oversubscribe = false;
  // [clients]: the worker group every site starts from; [sites.<name>]
  // overrides it key by key. Its name is empty.
  SiteSpec site_defaults{.name = {}, .devices = 2};
  // One per client, in order: the order decides each site's data shard.
  std::vector<SiteSpec> sites;
  std::filesystem::path data_dir;  // data.dir: every job names its data
  // How the training data is split across sites (trainers read it through
  // flare/data_split.hpp): "iid" or "dirichlet", label-skewed by data.alpha.
  std::string data_split = "iid";
  double data_alpha = 0.5;
  PluginRef trainer;               // [trainer]: every job names its trainer
  PluginRef aggregator{.name = "fedavg"};
  std::string key_metric = "val_acc";   // ranks global models for "best"
  // Which way it ranks: "max" (higher is better), "min", or "auto": lower
  // for a name containing "loss", higher for any other.
  std::string key_metric_mode = "auto";
  double round_timeout_s = 3600;        // every timeout: 0.001 s to 7 days
  double worker_start_timeout_s = 300;
  // A site gives up on a server that has not answered for this long (a call,
  // or a keepalive ping during a long one): a stopped or vanished server.
  double answer_timeout_s = 30;  // 2 s to 1 day
  // Liveness: a site's rank 0 beats every interval from its own thread,
  // whatever its trainer does; a site silent for the timeout is dropped from
  // the round (it may register again). At least 3 beats fit in the timeout.
  double heartbeat_interval_s = 5;
  double heartbeat_timeout_s = 60;
  // A site whose server vanished (restarted) keeps trying to reach it and
  // register again for this long before it gives up.
  double reconnect_timeout_s = 300;
  // Round checkpoints (resume after a server stop) kept, newest first.
  int64_t keep_checkpoints = 2;
  // Global models written: rounds 0, k, 2k, ... and the last; and of those
  // only the newest n kept (0: all). For big models.
  int64_t save_every = 1;
  int64_t keep_last = 0;
  // The dtype float32 model tensors travel in, both ways: "float32"
  // (uncompressed), "bfloat16", "float16" or "int8" (blockwise). Other dtypes
  // travel as they are; aggregation stays float32. The transport's
  // wire_encoding_for_dtype (transport/wire_codec.hpp) maps it.
  std::string wire_dtype = "float32";
  std::string server_host = "127.0.0.1";
  int server_port = 0;  // 0 = pick a free port

  // Compares `source` too: a job exported and loaded back differs only there.
  bool operator==(const JobSpec&) const = default;
};

// Sites sampled per round (clients_per_round, or client_fraction of n_clients).
inline int sampled_per_round(const JobSpec& spec) {
  if (spec.client_fraction > 0) {
    const double wanted = std::ceil(spec.client_fraction * spec.n_clients - 1e-9);
    return std::clamp(static_cast<int>(wanted), spec.min_clients, spec.n_clients);
  }
  return spec.clients_per_round > 0 ? spec.clients_per_round : spec.n_clients;
}

// The job's [data] table as trainers receive it (flare_worker_info.data_json):
// {"dir": ..., "split": ..., "alpha": ...}.
inline nlohmann::json data_table(const JobSpec& spec) {
  return {{"dir", spec.data_dir.string()}, {"split", spec.data_split}, {"alpha", spec.data_alpha}};
}

// Everything wrong with a job file or an override. The message names where
// and what: "<file>:<line>: <key.path>: expected <what>, found <what>", with
// "--set <key.path>" in place of the line for a command-line override.
class JobSpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads, overrides, validates and resolves a job. `overrides` are "key.path=value"
// (flare-run --set), applied in order after the file; `value` is read as a TOML
// value, or as a string when it is not one. Relative paths resolve against the
// job file's folder when they come from the file, against the current
// directory when they come from an override. Throws JobSpecError.
JobSpec load_job(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// load_job on `text` given as the content of `file`, which need not exist:
// messages name `file` and relative paths resolve against its folder. For
// jobs that do not come from a file (and the job-spec fuzzer).
JobSpec load_job_text(std::string_view text, const std::filesystem::path& file,
                      const std::vector<std::string>& overrides = {});

// Every key a job file may hold, as dotted paths in the order of the file's
// tables: "job.name", ..., "sites.<name>.devices" (any site's override),
// "trainer.config" (a table of the plugin's own keys, which the plugin checks).
// docs/job-spec.md documents exactly these (a test compares the two).
std::vector<std::string> accepted_keys();

// "site-1" .. "site-<count>": the sites of a job without [clients] names.
std::vector<std::string> default_site_names(int count);
// Whether the job's sites are those (no clients.names, or that very list).
bool has_default_site_names(const JobSpec& spec);
// The job's sites for a message: "site-1 to site-3", or the first few
// names: "hospital-a, hospital-b".
std::string site_list(const JobSpec& spec);

// The resolved job as a TOML document that load_job reads back to the same job.
std::string to_toml(const JobSpec& spec);

// Writing a job file failed: a problem of the disk or folder written to
// (full, read-only, not a folder), not of the job. The message names the file
// or folder and the system's reason ("No space left on device").
class JobWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes to_toml(spec) to dir/job.toml, creating dir. Throws JobWriteError,
// or JobSpecError for a job to_toml cannot write.
void export_job(const JobSpec& spec, const std::filesystem::path& dir);

// The value of `devices` as the job spec spells it: 2, [0, 1] or "auto".
std::string devices_toml(const SiteSpec& site);

// The override (as load_job takes it) that sets `key_path` to the string
// `value`, quoted so that it stays a string whatever it looks like ("2024").
std::string string_override(std::string_view key_path, std::string_view value);

}  // namespace flare::jobspec
