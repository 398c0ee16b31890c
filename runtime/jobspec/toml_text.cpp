#include "toml_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "job_spec.hpp"

namespace flare::jobspec {

std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;  // UTF-8 passes through: TOML files are UTF-8
        }
    }
  }
  return out += '"';
}

std::string toml_key(std::string_view key) {
  const bool bare = !key.empty() && key.find_first_not_of(
                                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-") == std::string_view::npos;
  return bare ? std::string(key) : toml_string(key);
}

std::string toml_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string out(buffer, result.ptr);
  // "1" or "1e+20" would read back as an integer or be invalid TOML.
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  const auto e = out.find('e');
  if (e != std::string::npos && out.find('.') == std::string::npos) out.insert(e, ".0");
  return out;
}

std::string toml_value(const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::string:
      return toml_string(value.get_ref<const std::string&>());
    case Type::boolean:
      return value.get<bool>() ? "true" : "false";
    case Type::number_integer:
      return std::to_string(value.get<int64_t>());
    case Type::number_unsigned: {
      const auto number = value.get<uint64_t>();
      if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw JobSpecError("expected an integer TOML can hold (<= 2^63-1), found " +
                           std::to_string(number));
      return std::to_string(number);
    }
    case Type::number_float:
      return toml_float(value.get<double>());
    case Type::array: {
      std::string out = "[";
      for (const auto& item : value)
        out.append(out.size() > 1 ? ", " : "").append(toml_value(item));
      return out += "]";
    }
    case Type::object: {
      std::string out = "{";
      for (const auto& [key, item] : value.items())
        out.append(out.size() > 1 ? ", " : " ")
            .append(toml_key(key))
            .append(" = ")
            .append(toml_value(item));
      return out += out.size() > 1 ? " }" : "}";
    }
    default:
      throw JobSpecError("expected a JSON value TOML can hold, found " +
                         std::string(value.type_name()));
  }
}

}  // namespace flare::jobspec
