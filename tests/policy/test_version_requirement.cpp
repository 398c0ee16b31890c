// Plugin versions and the requirements jobs put on them.
#include <doctest/doctest.h>

#include <stdexcept>

#include "policy/version_requirement.hpp"

using flare::policy::VersionRequirement;

TEST_CASE("a bare version asks for exactly that version, missing parts counting as 0") {
  const auto exact = VersionRequirement::parse("1.2");
  CHECK(exact.allows("1.2"));
  CHECK(exact.allows("1.2.0"));
  CHECK_FALSE(exact.allows("1.2.1"));
  CHECK_FALSE(exact.allows("1.10"));
}

TEST_CASE("comparisons joined by commas must all hold") {
  const auto range = VersionRequirement::parse(">=1.2, <2");
  CHECK(range.allows("1.2.0"));
  CHECK(range.allows("1.10.3"));  // numbers, not text: 10 > 2
  CHECK_FALSE(range.allows("1.1.9"));
  CHECK_FALSE(range.allows("2.0"));
  CHECK(VersionRequirement::parse(">1").allows("1.0.1"));
  CHECK_FALSE(VersionRequirement::parse(">1").allows("1.0"));
  CHECK(VersionRequirement::parse("<=2").allows("2.0.0"));
  CHECK(VersionRequirement::parse("==3.1").allows("3.1.0"));
}

TEST_CASE("a version that does not parse is never allowed") {
  CHECK_FALSE(VersionRequirement::parse(">=0").allows("dev"));
  CHECK_FALSE(VersionRequirement::parse(">=0").allows(""));
}

TEST_CASE("a requirement that is not one says what was expected") {
  for (const char* bad : {"", "latest", ">=", "1..2", "1.2,", "~1.2", "-1"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(VersionRequirement::parse(bad), std::invalid_argument);
  }
}
