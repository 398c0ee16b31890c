#include "policy/version_requirement.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

namespace flare::policy {

int Version::compare(const Version& other) const {
  const size_t n = std::max(parts.size(), other.parts.size());
  for (size_t i = 0; i < n; ++i) {
    const long a = i < parts.size() ? parts[i] : 0;
    const long b = i < other.parts.size() ? other.parts[i] : 0;
    if (a != b) return a < b ? -1 : 1;
  }
  return 0;
}

std::optional<Version> parse_version(std::string_view text) {
  Version v;
  size_t start = 0;
  while (true) {
    const size_t dot = std::min(text.find('.', start), text.size());
    const auto part = text.substr(start, dot - start);
    long value = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || value < 0)
      return std::nullopt;
    v.parts.push_back(value);
    if (dot == text.size()) return v;
    start = dot + 1;
  }
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

VersionRequirement VersionRequirement::parse(std::string_view text) {
  VersionRequirement r;
  r.text_ = std::string(trim(text));
  std::string_view rest = text;
  while (true) {
    const size_t comma = std::min(rest.find(','), rest.size());
    std::string_view clause = trim(rest.substr(0, comma));
    Op op = Op::Eq;
    // Two-character operators first: ">=" is not ">" followed by "=1.2".
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {">=", Op::Ge}, {"<=", Op::Le}, {"==", Op::Eq}, {">", Op::Gt}, {"<", Op::Lt}};
    for (const auto& [spelling, which] : kOps) {
      if (clause.starts_with(spelling)) {
        op = which;
        clause = trim(clause.substr(spelling.size()));
        break;
      }
    }
    const auto version = parse_version(clause);
    if (!version)
      throw std::invalid_argument("a version (\"1.2.0\") or a requirement (\">=1.2, <2\")");
    r.clauses_.push_back({op, *version});
    if (comma == rest.size()) return r;
    rest = rest.substr(comma + 1);
  }
}

bool VersionRequirement::allows(const Version& version) const {
  return std::all_of(clauses_.begin(), clauses_.end(), [&](const Clause& c) {
    const int order = version.compare(c.version);
    switch (c.op) {
      case Op::Eq: return order == 0;
      case Op::Ge: return order >= 0;
      case Op::Gt: return order > 0;
      case Op::Le: return order <= 0;
      case Op::Lt: return order < 0;
    }
    return false;
  });
}

bool VersionRequirement::allows(std::string_view version) const {
  const auto parsed = parse_version(version);
  return parsed && allows(*parsed);
}

}  // namespace flare::policy
