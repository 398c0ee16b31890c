// The job spec's schema: which tables and keys exist, their types, ranges and
// defaults. Turns a parsed (and overridden) document into a resolved JobSpec.
#pragma once

#include <toml++/toml.h>

#include "document.hpp"
#include "job_spec.hpp"

namespace flare::jobspec {

JobSpec read_job(const toml::table& root, const Document& doc);

}  // namespace flare::jobspec
