#include "overrides.hpp"

#include <optional>
#include <string_view>

#include "document.hpp"
#include "job_spec.hpp"
#include "toml_text.hpp"

namespace flare::jobspec {
namespace {

// The key path of a one-assignment document `key = value`, or nothing when the
// document holds anything else (e.g. a value with a newline and a second key).
std::optional<std::vector<std::string>> single_key_path(const toml::table& doc) {
  std::vector<std::string> path;
  const toml::table* table = &doc;
  while (table && table->size() == 1) {
    const auto first = table->begin();  // its pair lives inside the iterator
    const auto& [key, value] = *first;
    path.emplace_back(key.str());
    table = value.is_table() && !value.as_table()->is_inline() ? value.as_table() : nullptr;
    if (!table) return path;
  }
  return std::nullopt;
}

std::optional<toml::table> parse_assignment(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

// Moves every key of `from` into `into`; tables made by dotted keys merge into
// the tables already there, anything else replaces what was there.
void merge(toml::table& into, toml::table&& from) {
  for (auto&& [key, value] : from) {
    toml::table* existing = into.get_as<toml::table>(key.str());
    if (existing && value.is_table() && !value.as_table()->is_inline()) {
      merge(*existing, std::move(*value.as_table()));
    } else {
      into.insert_or_assign(key, std::move(value));
    }
  }
}

}  // namespace

std::vector<toml::table> parse_overrides(const std::vector<std::string>& overrides) {
  std::vector<toml::table> docs;
  for (const std::string& override : overrides) {
    const auto equals = override.find('=');
    std::string key = override.substr(0, equals);
    key.erase(0, key.find_first_not_of(" \t"));
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string source = std::string(kOverrideSource) + key;
    if (equals == std::string::npos || key.empty())
      throw JobSpecError(source + ": expected key.path=value, found " + toml_string(override));
    const auto key_doc = parse_assignment(key + " = 0", source);
    const auto key_path = key_doc ? single_key_path(*key_doc) : std::nullopt;
    if (!key_path)
      throw JobSpecError(source + ": expected a dotted key path such as trainer.config.lr, found " +
                         toml_string(key));
    const std::string value = override.substr(equals + 1);
    auto doc = parse_assignment(key + " = " + value, source);
    if (!doc || single_key_path(*doc) != key_path)
      doc = parse_assignment(key + " = " + toml_string(value), source);
    docs.push_back(std::move(*doc));
  }
  return docs;
}

void apply_overrides(toml::table& root, std::vector<toml::table>&& overrides) {
  for (toml::table& doc : overrides) merge(root, std::move(doc));
}

std::string string_override(std::string_view key_path, std::string_view value) {
  return std::string(key_path) + "=" + toml_string(value);
}

}  // namespace flare::jobspec
