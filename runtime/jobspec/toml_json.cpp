#include "toml_json.hpp"

#include <sstream>

namespace flare::jobspec {

nlohmann::json to_json(const toml::node& node) {
  if (const auto* table = node.as_table()) {
    auto out = nlohmann::json::object();
    for (const auto& [key, value] : *table) out[std::string(key.str())] = to_json(value);
    return out;
  }
  if (const auto* array = node.as_array()) {
    auto out = nlohmann::json::array();
    for (const auto& value : *array) out.push_back(to_json(value));
    return out;
  }
  if (const auto value = node.value_exact<std::string>()) return *value;
  if (const auto value = node.value_exact<int64_t>()) return *value;
  if (const auto value = node.value_exact<double>()) return *value;
  if (const auto value = node.value_exact<bool>()) return *value;
  std::ostringstream text;  // date, time or date-time
  node.visit([&](const auto& leaf) { text << leaf; });
  return text.str();
}

}  // namespace flare::jobspec
