#include "table_reader.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "toml_text.hpp"

namespace flare::jobspec {
namespace {

std::string known_list(std::span<const std::string_view> known) {
  std::string out;
  for (const std::string_view key : known) out.append(out.empty() ? "" : ", ").append(key);
  return out;
}

}  // namespace

void TableReader::allow_only(std::span<const std::string_view> known) const {
  for (const auto& [key, value] : *table_) {
    const std::string_view name = key.str();
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string found = "unknown key " + toml_key(name);
    if (const std::string match = closest_match(name, known); !match.empty())
      found += " (did you mean " + match + "?)";
    doc_->fail(value, key_path(name), "one of " + known_list(known), found);
  }
}

std::optional<TableReader> TableReader::table(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_table()) doc_->fail(*node, key_path(key), "a table", describe(*node));
  return TableReader(*node->as_table(), key_path(key), *doc_);
}

std::optional<int64_t> TableReader::integer(std::string_view key, IntegerRange range,
                                            std::string_view max_name) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  std::string expected = "an integer";
  if (range.max == std::numeric_limits<int64_t>::max()) {
    expected += " >= " + std::to_string(range.min);
  } else {
    expected += " from " + std::to_string(range.min) + " to " + std::to_string(range.max);
    if (!max_name.empty()) expected.append(" (").append(max_name).append(")");
  }
  const auto value = node->value_exact<int64_t>();
  if (!value || *value < range.min || *value > range.max)
    doc_->fail(*node, key_path(key), expected, describe(*node));
  return value;
}

std::optional<double> TableReader::number(std::string_view key, const NumberRange& range) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  std::optional<double> value = node->value_exact<double>();
  if (const auto integer = node->value_exact<int64_t>()) value = static_cast<double>(*integer);
  if (!value || !(*value >= range.min && *value <= range.max))  // NaN fails too
    doc_->fail(*node, key_path(key),
               "a number from " + toml_float(range.min) + " to " + toml_float(range.max),
               describe(*node));
  return value;
}

std::optional<double> TableReader::seconds(std::string_view key,
                                           const DurationRange& range) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  // An integer is a fine number of seconds: `round_timeout_s = 3600`.
  std::optional<double> value = node->value_exact<double>();
  if (const auto integer = node->value_exact<int64_t>()) value = static_cast<double>(*integer);
  // Written so that NaN fails too.
  if (!value || !(*value >= range.min_s && *value <= range.max_s))
    doc_->fail(*node, key_path(key),
               "a number of seconds from " + toml_float(range.min_s) + " to " +
                   std::to_string(static_cast<int64_t>(range.max_s)) + " (" +
                   std::string(range.max_in_words) + ")",
               describe(*node));
  return value;
}

std::optional<bool> TableReader::boolean(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  const auto value = node->value_exact<bool>();
  if (!value) doc_->fail(*node, key_path(key), "a boolean (true or false)", describe(*node));
  return value;
}

std::optional<std::string> TableReader::string(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  auto value = node->value_exact<std::string>();
  if (!value || value->empty())
    doc_->fail(*node, key_path(key), "a non-empty string", describe(*node));
  return value;
}

std::optional<std::string> TableReader::choice(
    std::string_view key, std::initializer_list<std::string_view> choices) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  auto value = node->value_exact<std::string>();
  if (value && std::find(choices.begin(), choices.end(), *value) != choices.end()) return value;
  std::string expected;
  for (const std::string_view choice : choices)
    expected.append(expected.empty() ? "one of " : ", ").append(toml_string(choice));
  // No did-you-mean: the list is short, and "gpu" is closest to "cpu".
  doc_->fail(*node, key_path(key), expected, describe(*node));
}

std::optional<std::filesystem::path> TableReader::path(std::string_view key) const {
  const auto text = string(key);
  if (!text) return std::nullopt;
  return resolve_path(doc_->base_dir(*find(key)), *text);
}

std::optional<std::vector<std::filesystem::path>> TableReader::path_list(
    std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  const auto* array = node->as_array();
  if (!array) doc_->fail(*node, key_path(key), "an array of paths", describe(*node));
  std::vector<std::filesystem::path> paths;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const auto text = item.value_exact<std::string>();
    if (!text || text->empty())
      doc_->fail(item, key_path(key) + "[" + std::to_string(i) + "]", "a non-empty string",
                 describe(item));
    paths.push_back(resolve_path(doc_->base_dir(item), *text));
  }
  return paths;
}

void TableReader::fail(std::string_view key, std::string_view expected,
                       std::string_view found) const {
  const toml::node* node = find(key);
  doc_->fail(node ? *node : *table_, key_path(key), expected, found);
}

void TableReader::fail_at(const toml::node& node, std::string_view key_path,
                          std::string_view expected, std::string_view found) const {
  doc_->fail(node, key_path, expected, found);
}

std::filesystem::path resolve_path(const std::filesystem::path& base,
                                   const std::filesystem::path& path) {
  std::filesystem::path out = (base / path).lexically_normal();
  if (!out.has_filename() && out.has_relative_path()) out = out.parent_path();
  return out;
}

}  // namespace flare::jobspec
