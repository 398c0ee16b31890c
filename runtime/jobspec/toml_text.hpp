// TOML text written by hand: the exported job keeps the spec's section order
// and prints floats in their shortest exact form (toml++'s formatter sorts
// keys and prints 17 digits). Also quotes values for --set overrides.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace flare::jobspec {

// A TOML basic string: quoted, with quotes, backslashes and controls escaped.
std::string toml_string(std::string_view text);

// A key as written in TOML: bare when it is only letters, digits, '_' and '-'.
std::string toml_key(std::string_view key);

// Shortest text that reads back to the same double, always a TOML float.
std::string toml_float(double value);

// A JSON value as an inline TOML value. Throws JobSpecError for what TOML
// cannot hold (null, integers above INT64_MAX).
std::string toml_value(const nlohmann::json& value);

}  // namespace flare::jobspec
