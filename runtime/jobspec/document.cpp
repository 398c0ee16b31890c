#include "document.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <vector>

#include "job_spec.hpp"
#include "toml_text.hpp"

namespace flare::jobspec {
namespace {

std::string_view source_name(const toml::node& node) {
  const auto& path = node.source().path;
  return path ? std::string_view(*path) : std::string_view();
}

bool from_override(const toml::node& node) {
  return source_name(node).starts_with(kOverrideSource);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

Document::Document(std::filesystem::path file)
    : file_(std::move(file)), file_dir_(std::filesystem::absolute(file_).parent_path()) {}

std::filesystem::path Document::base_dir(const toml::node& node) const {
  return from_override(node) ? std::filesystem::current_path() : file_dir_;
}

std::string Document::where(const toml::node& node, std::string_view key_path) const {
  std::string out = file_.string();
  if (from_override(node)) {
    const std::string_view typed = source_name(node);
    out.append(": ").append(typed);
    if (typed.substr(kOverrideSource.size()) != key_path) out.append(": ").append(key_path);
    return out;
  }
  if (node.source().begin.line != 0)
    out.append(":").append(std::to_string(node.source().begin.line));
  return out.append(": ").append(key_path);
}

void Document::fail(const toml::node& node, std::string_view key_path, std::string_view expected,
                    std::string_view found) const {
  std::string message = where(node, key_path);
  message.append(": expected ").append(expected).append(", found ").append(found);
  throw JobSpecError(message);
}

void Document::fail_missing(std::string_view key_path, std::string_view expected) const {
  throw JobSpecError(file_.string() + ": " + std::string(key_path) + ": expected " +
                     std::string(expected) + ", found none");
}

std::string describe(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      out << "the string " << toml_string(*node.value<std::string>());
      break;
    case toml::node_type::integer:
      out << "the integer " << *node.value<int64_t>();
      break;
    case toml::node_type::floating_point:
      out << "the number " << toml_float(*node.value<double>());
      break;
    case toml::node_type::boolean:
      out << "the boolean " << (*node.value<bool>() ? "true" : "false");
      break;
    case toml::node_type::table:
      out << "a table";
      break;
    case toml::node_type::array:
      out << "an array";
      break;
    case toml::node_type::date:
      out << "a date";
      break;
    case toml::node_type::time:
      out << "a time";
      break;
    case toml::node_type::date_time:
      out << "a date-time";
      break;
    case toml::node_type::none:
      out << "nothing";
      break;
  }
  return out.str();
}

std::string child_key(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) out.push_back('.');
  return out.append(toml_key(key));
}

std::string closest_match(std::string_view key, std::span<const std::string_view> candidates) {
  // Up to a third of the key's letters may be wrong, at least two (a swap).
  const std::size_t allowed = std::max<std::size_t>(2, key.size() / 3);
  std::string best;
  std::size_t best_distance = allowed + 1;
  for (const std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

}  // namespace flare::jobspec
