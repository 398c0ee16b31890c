// The keys that describe a site's worker group (devices, accelerator, backend,
// nodes, rendezvous and its timeout, restarts, progress timeout), shared by
// [clients] and [sites.<name>]: read into a SiteSpec and written back.
// Internal to flare_jobspec.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "job_spec.hpp"
#include "table_reader.hpp"

namespace flare::jobspec {

inline constexpr std::array<std::string_view, 9> kWorkerGroupKeys = {
    "devices",      "accelerator",        "backend",
    "nodes",        "master_addr",        "master_port",
    "max_restarts", "progress_timeout_s", "rendezvous_timeout_s"};

// Overrides `group` with every worker-group key `table` holds, then rejects a
// combination no machine can run (NCCL or device ids with accelerator "cpu"),
// naming a key of `table`. Other keys are the caller's to allow or reject.
void read_worker_group(const TableReader& table, SiteSpec& group);

// `key = value` lines for every field of `group`, in kWorkerGroupKeys order.
std::string worker_group_toml(const SiteSpec& group);

}  // namespace flare::jobspec
