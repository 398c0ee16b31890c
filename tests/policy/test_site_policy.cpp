// A site's policy file: read with file:line:key errors, and what it allows.
#include <doctest/doctest.h>

#include <string>

#include "policy/site_policy.hpp"

using namespace flare::policy;

namespace {

const std::string kHash(64, 'a');
const std::string kOtherHash(64, 'b');

std::string error_for(const std::string& text) {
  try {
    load_policy_text(text, "policy.toml");
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a policy file lists plugins by name and hash, and the device limits") {
  const auto policy = load_policy_text("[limits]\nmax_devices = 4\naccelerators = [\"cpu\"]\n\n"
                                       "[plugins.cifar10]\nsha256 = \"" + kHash +
                                       "\"\nversion = \"1.0.0\"\n",
                                       "policy.toml");
  CHECK(policy.max_devices == 4);
  CHECK(policy.accelerators == std::vector<std::string>{"cpu"});
  REQUIRE(policy.plugins.count("cifar10") == 1);
  CHECK(policy.plugins.at("cifar10").sha256 == kHash);
  CHECK(policy.plugins.at("cifar10").version == "1.0.0");
}

TEST_CASE("policy file errors name the file, the line and the key") {
  CHECK(error_for("[limits]\nmax_devices = 0\n") ==
        "policy.toml:2: limits.max_devices: expected an integer from 1 to 1000000, found the "
        "integer 0");
  CHECK(error_for("[plugins.cifar10]\nsha256 = \"abc\"\n").starts_with(
      "policy.toml:2: plugins.cifar10.sha256: expected the library's SHA-256 as 64 lowercase hex"));
  CHECK(error_for("[plugins.cifar10]\nversion = \"1.0\"\n").starts_with(
      "policy.toml:1: plugins.cifar10.sha256: expected the library's SHA-256"));
  CHECK(error_for("[plugins.cifar10]\nsha256 = \"" + kHash + "\"\nversion = \"new\"\n") ==
        "policy.toml:3: plugins.cifar10.version: expected the version the library states "
        "(\"1.0.0\"), found the string \"new\"");
  CHECK(error_for("[limits]\naccelerators = [\"tpu\"]\n").starts_with(
      "policy.toml:2: limits.accelerators: expected a list of \"cpu\" / \"cuda\""));
  CHECK(error_for("[limit]\n").starts_with("policy.toml:1: limit: "));
  CHECK(error_for("[limits\n").starts_with("policy.toml:1: invalid TOML: "));
}

TEST_CASE("a plugin is allowed only by name, file hash and version") {
  const auto policy = load_policy_text(
      "[plugins.cifar10]\nsha256 = \"" + kHash + "\"\nversion = \"1.0.0\"\n", "policy.toml");
  const PluginOnSite allowed{.name = "cifar10", .file = "/p/libflare_cifar10.so", .sha256 = kHash};
  CHECK(plugin_refusal(policy, allowed) == "");

  auto unknown = allowed;
  unknown.name = "other";
  CHECK(plugin_refusal(policy, unknown) == "plugin 'other' is not allowed by this site's policy");

  auto changed = allowed;
  changed.sha256 = kOtherHash;
  CHECK(plugin_refusal(policy, changed) ==
        "plugin 'cifar10' (/p/libflare_cifar10.so) has SHA-256 " + kOtherHash +
            ", this site's policy allows " + kHash);

  auto wants_newer = allowed;
  wants_newer.version_requirement = ">=1.1";
  CHECK(plugin_refusal(policy, wants_newer) ==
        "the job asks for plugin 'cifar10' version >=1.1; this site allows version 1.0.0");
  auto wants_this = allowed;
  wants_this.version_requirement = ">=1, <2";
  CHECK(plugin_refusal(policy, wants_this) == "");
}

TEST_CASE("the devices a job may use on a site are bounded") {
  const auto policy =
      load_policy_text("[limits]\nmax_devices = 2\naccelerators = [\"cuda\"]\n", "policy.toml");
  CHECK(devices_refusal(policy, 2, "cuda") == "");
  CHECK(devices_refusal(policy, 3, "cuda") ==
        "the job asks for 3 devices on this site; its policy allows at most 2");
  CHECK(devices_refusal(policy, 1, "cpu") ==
        "the job would run on cpu, which this site's policy does not allow");
  CHECK(devices_refusal(load_policy_text("", "policy.toml"), 1000, "cpu") == "");
}

TEST_CASE("a policy entry reads back as the entry it was written from") {
  const AllowedPlugin entry{.name = "c_counter_trainer", .sha256 = kHash, .version = "1.0"};
  const auto policy = load_policy_text(policy_entry(entry), "policy.toml");
  REQUIRE(policy.plugins.count("c_counter_trainer") == 1);
  CHECK(policy.plugins.at("c_counter_trainer").sha256 == kHash);
  CHECK(policy.plugins.at("c_counter_trainer").version == "1.0");
}
