// Where each value of a job came from (the job file, at a line, or a --set
// override) and how to report a problem with it. Internal to flare_jobspec.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace flare::jobspec {

// Nodes parsed from an override carry this source name followed by the key the
// user typed, which is how errors and relative paths tell them apart.
inline constexpr std::string_view kOverrideSource = "--set ";

class Document {
 public:
  // `file` as the user named it: messages repeat it as given.
  explicit Document(std::filesystem::path file);

  const std::filesystem::path& file() const { return file_; }

  // The folder a relative path in `node` resolves against.
  std::filesystem::path base_dir(const toml::node& node) const;

  // "<file>:<line>: <key_path>" or "<file>: --set <key>[: <key_path>]".
  std::string where(const toml::node& node, std::string_view key_path) const;

  [[noreturn]] void fail(const toml::node& node, std::string_view key_path,
                         std::string_view expected, std::string_view found) const;
  // A required key the document lacks: "<file>: <key_path>: expected
  // <expected>, found none" (no line: nothing in the file is wrong).
  [[noreturn]] void fail_missing(std::string_view key_path, std::string_view expected) const;

 private:
  std::filesystem::path file_;
  std::filesystem::path file_dir_;
};

// "a string \"abc\"", "the integer 3", "a table": what a node is, for "found ...".
std::string describe(const toml::node& node);

// "parent.key", quoting `key` when it is not a bare TOML key.
std::string child_key(std::string_view parent, std::string_view key);

// The candidate closest to `key` by edit distance when it is close enough to
// be a likely typo, else empty.
std::string closest_match(std::string_view key, std::span<const std::string_view> candidates);

}  // namespace flare::jobspec
