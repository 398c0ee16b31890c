// Reading back what a report.html drew: each chart's series and their exact
// numbers (the data-values attributes the SVG writer puts on every series).
#pragma once

#include <cstdlib>
#include <map>
#include <regex>
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
  static const std::regex kSeries("data-series=\"([^\"]*)\" data-values=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), kSeries);
       it != std::sregex_iterator(); ++it) {
    DrawnPoints points;
    const std::string values = (*it)[2];
    const char* p = values.c_str();
    while (*p) {
      char* end = nullptr;
      const double x = std::strtod(p, &end);
      const double y = std::strtod(end + 1, &end);  // past the ','
      points.emplace_back(x, y);
      p = *end ? end + 1 : end;
    }
    series[(*it)[1]] = std::move(points);
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
