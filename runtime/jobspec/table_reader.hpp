// Typed, validated reads from one table of a job document. Each read returns
// nothing when the key is absent and throws JobSpecError (via Document::fail)
// when the value has the wrong type or range. Internal to flare_jobspec.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "document.hpp"
#include "key_ranges.hpp"

namespace flare::jobspec {

class TableReader {
 public:
  TableReader(const toml::table& table, std::string key_path, const Document& doc)
      : table_(&table), key_path_(std::move(key_path)), doc_(&doc) {}

  const toml::table& node() const { return *table_; }
  const std::string& key_path() const { return key_path_; }
  std::string key_path(std::string_view key) const { return child_key(key_path_, key); }

  // Rejects any key outside `known`, suggesting the closest known one.
  void allow_only(std::initializer_list<std::string_view> known) const {
    allow_only(std::span<const std::string_view>(known.begin(), known.size()));
  }
  void allow_only(std::span<const std::string_view> known) const;

  const toml::node* find(std::string_view key) const { return table_->get(key); }
  std::optional<TableReader> table(std::string_view key) const;
  // An integer within `range` (key_ranges.hpp); `max_name` names what sets
  // the maximum when another key does ("clients.count").
  std::optional<int64_t> integer(std::string_view key, IntegerRange range,
                                 std::string_view max_name = {}) const;
  // A number within `range` (an integer is fine).
  std::optional<double> number(std::string_view key, const NumberRange& range) const;
  // A number of seconds within `range` (an integer is fine).
  std::optional<double> seconds(std::string_view key, const DurationRange& range) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<std::string> string(std::string_view key) const;  // non-empty
  // A string that is one of `choices`.
  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> choices) const;
  // A non-empty string made absolute (see Document::base_dir).
  std::optional<std::filesystem::path> path(std::string_view key) const;
  std::optional<std::vector<std::filesystem::path>> path_list(std::string_view key) const;

  [[noreturn]] void fail(std::string_view key, std::string_view expected,
                         std::string_view found) const;
  // A required key, named by its full key path, that the document lacks.
  [[noreturn]] void fail_missing(std::string_view key_path, std::string_view expected) const {
    doc_->fail_missing(key_path, expected);
  }
  // For a node inside a value (an array item), named by its own key path.
  [[noreturn]] void fail_at(const toml::node& node, std::string_view key_path,
                            std::string_view expected, std::string_view found) const;

 private:
  const toml::table* table_;
  std::string key_path_;
  const Document* doc_;
};

// An absolute, normalised path without a trailing separator.
std::filesystem::path resolve_path(const std::filesystem::path& base,
                                   const std::filesystem::path& path);

}  // namespace flare::jobspec
