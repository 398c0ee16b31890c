// Reading back what a report.html drew: each chart's series and their exact
// numbers (the data-values attributes the SVG writer puts on every series).
#pragma once

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace flare::testing {

using DrawnPoints = std::vector<std::pair<double, double>>;

// Series name -> points of the <svg> with id `chart_id` in `html`; empty when
// there is no such chart.
inline std::map<std::string, DrawnPoints> drawn_series(const std::string& html,
                                                       const std::string& chart_id) {
  std::map<std::string, DrawnPoints> series;
  const size_t begin = html.find("id=\"" + chart_id + "\"");
  if (begin == std::string::npos) return series;
  const std::string svg = html.substr(begin, html.find("</svg>", begin) - begin);
  // Found by hand: std::regex recurses per character and overflows the
  // stack on a series of thousands of points.
  const std::string name_key = "data-series=\"", values_key = "\" data-values=\"";
  for (size_t at = svg.find(name_key); at != std::string::npos; at = svg.find(name_key, at)) {
    const size_t name_begin = at + name_key.size();
    const size_t name_end = svg.find(values_key, name_begin);
    if (name_end == std::string::npos) break;
    const size_t values_begin = name_end + values_key.size();
    const size_t values_end = svg.find('"', values_begin);
    at = values_end;
    DrawnPoints points;
    const std::string values = svg.substr(values_begin, values_end - values_begin);
    const char* p = values.c_str();
    while (*p) {
      char* end = nullptr;
      const double x = std::strtod(p, &end);
      const double y = std::strtod(end + 1, &end);  // past the ','
      points.emplace_back(x, y);
      p = *end ? end + 1 : end;
    }
    series[svg.substr(name_begin, name_end - name_begin)] = std::move(points);
  }
  return series;
}

// How many charts (<svg class="chart") `html` holds.
inline int chart_count(const std::string& html) {
  int count = 0;
  for (size_t at = html.find("class=\"chart\""); at != std::string::npos;
       at = html.find("class=\"chart\"", at + 1))
    ++count;
  return count;
}

}  // namespace flare::testing
