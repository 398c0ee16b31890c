// A plugin's free-form TOML table as the JSON text the plugin ABI carries.
#pragma once

#include <toml++/toml.h>

#include <nlohmann/json.hpp>

namespace flare::jobspec {

// Integers stay integers, floats floats; dates and times become their TOML
// text (JSON has no such type).
nlohmann::json to_json(const toml::node& node);

}  // namespace flare::jobspec
