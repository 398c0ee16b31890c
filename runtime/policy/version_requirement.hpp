// Plugin versions ("1.2.0", as a plugin's descriptor states it) and the
// requirements a job puts on them ("1.2.0", ">=1.2, <2"). The job spec checks
// a requirement's spelling, a site's policy and the plugin loader check a
// version against it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flare::policy {

// Dotted non-negative numbers; missing parts count as 0 ("1.2" == "1.2.0").
struct Version {
  std::vector<long> parts;
  int compare(const Version& other) const;
};

// nullopt unless `text` is dotted numbers, e.g. "1", "1.2", "10.0.3".
std::optional<Version> parse_version(std::string_view text);

// One comparison or several joined by commas, all of which must hold:
// "1.2.0" (exactly), "==1.2", ">=1.2", ">1", "<=2", "<2.0", ">=1.2, <2".
class VersionRequirement {
 public:
  // Throws std::invalid_argument saying what is wrong with `text`.
  static VersionRequirement parse(std::string_view text);
  bool allows(const Version& version) const;
  // False as well for a version that does not parse.
  bool allows(std::string_view version) const;
  const std::string& text() const { return text_; }

 private:
  enum class Op { Eq, Ge, Gt, Le, Lt };
  struct Clause {
    Op op;
    Version version;
  };
  std::vector<Clause> clauses_;
  std::string text_;
};

}  // namespace flare::policy
