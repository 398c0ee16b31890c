// The options a plugin's config may hold: each key with its type and range.
// A plugin class of the C++ SDK declares them once,
//
//   static flare::ConfigSchema config_schema() {
//     return flare::ConfigSchema().number("lr", {0}).choice("mode", {"fast", "exact"});
//   }
//
// and the glue (plugin.hpp) checks every config against them before the
// plugin is built: in validate_config (ABI 1.2), which the host calls before
// the job starts, and again in create. The plugin then reads values whose
// keys, types and ranges are known good. Header-only; part of the C++ SDK.
#pragma once

#include <flare/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace flare {

// One end of a number's range; `inclusive` false leaves the value itself out.
struct Bound {
  double value;
  bool inclusive = true;
};

class ConfigSchema {
 public:
  // An integer from `min` to `max`.
  ConfigSchema& integer(std::string key, int64_t min,
                        int64_t max = std::numeric_limits<int64_t>::max()) {
    Option option{std::move(key), Type::Integer};
    option.least = min;
    option.most = max;
    return add(std::move(option));
  }
  // A finite number (an integer is one too) within `min` and `max`.
  ConfigSchema& number(std::string key, Bound min = {-kInfinity},
                       Bound max = {kInfinity}) {
    Option option{std::move(key), Type::Number};
    option.min = min;
    option.max = max;
    return add(std::move(option));
  }
  ConfigSchema& boolean(std::string key) { return add({std::move(key), Type::Boolean}); }
  // A string that is one of `values`.
  ConfigSchema& choice(std::string key, std::vector<std::string> values) {
    Option option{std::move(key), Type::Choice};
    option.values = std::move(values);
    return add(std::move(option));
  }

  // Throws flare::Error (FLARE_ERROR_INVALID_ARGUMENT) for a config that is
  // not an object, a key not declared here (naming those that are), or a
  // value of another type or outside its range:
  // "option 'lr': expected a number >= 0, found -1". A null value is absent.
  void check(const nlohmann::json& config) const {
    if (!config.is_object())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "expected the config to be an object of options, found " + config.dump());
    for (const auto& [key, value] : config.items()) {
      const Option* option = find(key);
      if (!option) throw Error(FLARE_ERROR_INVALID_ARGUMENT, unknown(key));
      if (!value.is_null() && !accepts(*option, value))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT, "option '" + key + "': expected " +
                                                      expected(*option) + ", found " +
                                                      found(value));
    }
  }

 private:
  static constexpr double kInfinity = std::numeric_limits<double>::infinity();
  enum class Type { Integer, Number, Boolean, Choice };
  struct Option {
    std::string key;
    Type type;
    int64_t least = 0, most = 0;            // Integer
    Bound min{-kInfinity}, max{kInfinity};  // Number
    std::vector<std::string> values;        // Choice
  };

  ConfigSchema& add(Option option) {
    options_.push_back(std::move(option));
    return *this;
  }

  const Option* find(const std::string& key) const {
    for (const Option& option : options_)
      if (option.key == key) return &option;
    return nullptr;
  }

  static bool within(const Option& o, double v) {
    return (o.min.inclusive ? v >= o.min.value : v > o.min.value) &&
           (o.max.inclusive ? v <= o.max.value : v < o.max.value);
  }

  static bool accepts(const Option& o, const nlohmann::json& value) {
    switch (o.type) {
      case Type::Integer: {
        if (!value.is_number_integer()) return false;
        // JSON keeps integers above 2^63 - 1 unsigned: above every range here.
        if (value.is_number_unsigned() &&
            value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return false;
        const auto v = value.get<int64_t>();
        return v >= o.least && v <= o.most;
      }
      case Type::Number:
        return value.is_number() && std::isfinite(value.get<double>()) &&
               within(o, value.get<double>());
      case Type::Boolean:
        return value.is_boolean();
      case Type::Choice:
        return value.is_string() && std::find(o.values.begin(), o.values.end(),
                                              value.get<std::string>()) != o.values.end();
    }
    return false;
  }

  static std::string text(double v) {
    if (v == std::floor(v) && std::abs(v) < 0x1p53) return std::to_string(static_cast<int64_t>(v));
    return nlohmann::json(v).dump();
  }

  static std::string expected(const Option& o) {
    switch (o.type) {
      case Type::Integer:
        if (o.most == std::numeric_limits<int64_t>::max())
          return "an integer >= " + std::to_string(o.least);
        return "an integer from " + std::to_string(o.least) + " to " + std::to_string(o.most);
      case Type::Number: {
        const bool low = std::isfinite(o.min.value), high = std::isfinite(o.max.value);
        const std::string from = std::string(o.min.inclusive ? ">= " : "> ") + text(o.min.value);
        const std::string to = std::string(o.max.inclusive ? "<= " : "< ") + text(o.max.value);
        if (low && high) return "a number " + from + " and " + to;
        if (low) return "a number " + from;
        if (high) return "a number " + to;
        return "a finite number";
      }
      case Type::Boolean:
        return "true or false";
      case Type::Choice: {
        std::string all;
        for (const std::string& v : o.values) all += (all.empty() ? "" : ", ") + nlohmann::json(v).dump();
        return "one of " + all;
      }
    }
    return "?";
  }

  static std::string found(const nlohmann::json& value) {
    if (value.is_number_float() && !std::isfinite(value.get<double>()))
      return std::isnan(value.get<double>()) ? "nan" : (value.get<double>() > 0 ? "inf" : "-inf");
    return value.dump();
  }

  std::string unknown(const std::string& key) const {
    std::string known;
    for (const Option& o : options_) known += (known.empty() ? "" : ", ") + o.key;
    return "unknown option '" + key + "' (" + (known.empty() ? "this plugin takes none" : "known: " + known) + ")";
  }

  std::vector<Option> options_;
};

}  // namespace flare
