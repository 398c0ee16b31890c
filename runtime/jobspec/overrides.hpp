// Command-line overrides (flare-run --set key.path=value) merged into a parsed
// job document before it is read, so they are validated like file values.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

namespace flare::jobspec {

// Each "key.path=value" as a one-key document. `value` is read as a TOML value
// ("3", "0.01", "true", "[1, 2]", "{ a = 1 }"), or taken as a string when it is
// not one ("/tmp/x", "fedavg"). Throws JobSpecError for a malformed override.
std::vector<toml::table> parse_overrides(const std::vector<std::string>& overrides);

// Merges the overrides into `root` in order. Dotted keys create or replace
// single keys inside existing tables; a value that is a table replaces the table.
void apply_overrides(toml::table& root, std::vector<toml::table>&& overrides);

}  // namespace flare::jobspec
