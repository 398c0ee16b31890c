#include "report/markup.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace flare::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string exact_number(double value) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof(buf), value).ptr;
  return std::string(buf, end);
}

std::string readable_number(double value) {
  char buf[32];
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e3 && magnitude < 1e9)
    std::snprintf(buf, sizeof(buf), "%.0f", value);  // images/s: 12976, not 1.298e+04
  else
    std::snprintf(buf, sizeof(buf), "%.4g", value);
  return buf;
}

std::string fixed_number(double value, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

}  // namespace flare::report
