// How flare-admin shows jobs to a person: a table for `list`, every field
// for `status`. All text from the server goes through common::printable.
#pragma once

#include <string>
#include <vector>

#include "transport/deploy.pb.h"

namespace flare::admin {

// "ID  NAME  STATE  ROUNDS  SITES" with aligned columns; "no jobs\n" when empty.
std::string job_table(const std::vector<deploy::v1::JobSummary>& jobs);

// One "field: value" line per field the job has (times in UTC).
std::string job_details(const deploy::v1::JobSummary& job);

// "finished" / "failed" / "aborted": the job will not change any more.
bool job_is_over(const deploy::v1::JobSummary& job);

}  // namespace flare::admin
