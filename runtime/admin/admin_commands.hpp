// flare-admin's commands against the server's Admin service (deploy.proto):
// each prints for a person and returns the exit code of the contract: 0
// success (wait: the job finished), 1 the job failed or was aborted, a
// refused request or an unreachable server (the reason printed).
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "transport/deploy.grpc.pb.h"

namespace flare::admin {

struct AdminCommand {
  std::string name;    // submit, list, status, wait, abort, metrics, download
  std::string target;  // the job file (submit) or the job id
  bool wait = false;   // submit --wait
  std::optional<double> timeout_s;  // wait --timeout
  std::string out;     // --out FILE; empty: stdout (metrics)
  std::string model = "final";
};

// The commands and the words usage errors name them by.
inline constexpr const char* kCommandList =
    "submit JOB.toml [--wait] | list | status JOB | wait JOB [--timeout S] | abort JOB | "
    "metrics JOB [--out FILE] | download JOB [--model final|best|N] --out FILE";

// Why `command` is not a complete command line (empty when it is).
std::string usage_problem(const AdminCommand& command);

int run_command(const AdminCommand& command, deploy::v1::Admin::StubInterface& server,
                std::ostream& out, std::ostream& err);

}  // namespace flare::admin
