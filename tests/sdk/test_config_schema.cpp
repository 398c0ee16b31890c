// flare::ConfigSchema: what the glue checks a plugin's config against before
// the plugin is built (validate_config and create).
#include <flare/config_schema.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

using flare::ConfigSchema;
using nlohmann::json;

namespace {

const ConfigSchema schema = ConfigSchema()
                                .integer("batch_size", 1)
                                .integer("workers", 0, 8)
                                .number("lr", {0, false})
                                .number("momentum", {0}, {1, false})
                                .boolean("shuffle")
                                .choice("weight", {"num_samples", "uniform"});

// The message check() refuses `config` with, or "accepted".
std::string verdict(const json& config) {
  try {
    schema.check(config);
  } catch (const flare::Error& e) {
    CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("accepts declared options within their ranges, and an empty config") {
  CHECK(verdict(json::object()) == "accepted");
  CHECK(verdict({{"batch_size", 4}, {"workers", 8}, {"lr", 0.01}, {"momentum", 0},
                 {"shuffle", true}, {"weight", "uniform"}}) == "accepted");
  CHECK(verdict({{"lr", 1}}) == "accepted");  // an integer is a number
}

TEST_CASE("refuses an option it does not declare, naming the ones it does") {
  CHECK(verdict({{"colour", "blue"}}) ==
        "unknown option 'colour' (known: batch_size, workers, lr, momentum, shuffle, weight)");
  CHECK_THROWS_WITH_AS(ConfigSchema().check({{"lr", 1}}),
                       "unknown option 'lr' (this plugin takes none)", flare::Error);
}

TEST_CASE("refuses a value of another type, saying what was expected and found") {
  CHECK(verdict({{"batch_size", "four"}}) ==
        "option 'batch_size': expected an integer >= 1, found \"four\"");
  CHECK(verdict({{"batch_size", 4.5}}) ==
        "option 'batch_size': expected an integer >= 1, found 4.5");
  CHECK(verdict({{"shuffle", 1}}) == "option 'shuffle': expected true or false, found 1");
  CHECK(verdict({{"weight", "loss"}}) ==
        "option 'weight': expected one of \"num_samples\", \"uniform\", found \"loss\"");
}

TEST_CASE("refuses a value outside its range, open and closed ends alike") {
  CHECK(verdict({{"workers", 9}}) == "option 'workers': expected an integer from 0 to 8, found 9");
  CHECK(verdict({{"batch_size", 0}}) == "option 'batch_size': expected an integer >= 1, found 0");
  CHECK(verdict({{"lr", 0}}) == "option 'lr': expected a number > 0, found 0");
  CHECK(verdict({{"momentum", 1}}) ==
        "option 'momentum': expected a number >= 0 and < 1, found 1");
  CHECK(verdict({{"momentum", -0.5}}) ==
        "option 'momentum': expected a number >= 0 and < 1, found -0.5");
}

TEST_CASE("refuses an integer beyond int64 and a number that is not finite") {
  CHECK(verdict({{"batch_size", std::numeric_limits<uint64_t>::max()}}) ==
        "option 'batch_size': expected an integer >= 1, found 18446744073709551615");
  CHECK(verdict({{"lr", std::numeric_limits<double>::infinity()}}) ==
        "option 'lr': expected a number > 0, found inf");
  CHECK(verdict({{"lr", std::nan("")}}) == "option 'lr': expected a number > 0, found nan");
}

TEST_CASE("refuses a config that is not an object") {
  CHECK(verdict(json::array({1, 2})) ==
        "expected the config to be an object of options, found [1,2]");
}
