#include "report/svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "report/markup.hpp"

namespace flare::report {

namespace {

// Tableau 10: distinct for the common colour blindnesses, readable on white.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr size_t kPaletteSize = std::size(kPalette);
constexpr double kLegendLeft = kPlotArea.left + kPlotArea.width + 16;
constexpr size_t kLegendNameChars = 26;

double nice_step(double rough, bool whole_numbers) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  double step = 10 * magnitude;
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= rough) {
      step = m * magnitude;
      break;
    }
  }
  return whole_numbers ? std::max(1.0, std::round(step)) : step;
}

// Decimals that tell ticks `step` apart.
int decimals_for(double step) {
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12);
}

std::string tick_label(double value, double step) {
  if (std::fabs(value) >= 1e6 || step >= 1e6) return readable_number(value);
  return fixed_number(value, decimals_for(step));
}

struct Scale {
  Axis x, y;
  double px(double v) const {
    return kPlotArea.left + (v - x.low) / (x.high - x.low) * kPlotArea.width;
  }
  double py(double v) const {
    return kPlotArea.top + kPlotArea.height - (v - y.low) / (y.high - y.low) * kPlotArea.height;
  }
};

std::string at(double v) { return fixed_number(v, 1); }

std::string axes(const LineChart& chart, const Scale& s) {
  const PlotArea& a = kPlotArea;
  const double bottom = a.top + a.height;
  std::string svg = "<g class=\"axes\" font-size=\"11\" fill=\"#333\">";
  const double y_step = s.y.ticks.size() > 1 ? s.y.ticks[1] - s.y.ticks[0] : 1;
  for (const double t : s.y.ticks) {
    const std::string y = at(s.py(t));
    svg += "<line x1=\"" + at(a.left) + "\" y1=\"" + y + "\" x2=\"" + at(a.left + a.width) +
           "\" y2=\"" + y + "\" stroke=\"#e6e6e6\"/>";
    svg += "<text x=\"" + at(a.left - 6) + "\" y=\"" + y +
           "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + tick_label(t, y_step) + "</text>";
  }
  const double x_step = s.x.ticks.size() > 1 ? s.x.ticks[1] - s.x.ticks[0] : 1;
  for (const double t : s.x.ticks) {
    const std::string x = at(s.px(t));
    svg += "<line x1=\"" + x + "\" y1=\"" + at(bottom) + "\" x2=\"" + x + "\" y2=\"" +
           at(bottom + 4) + "\" stroke=\"#333\"/>";
    svg += "<text x=\"" + x + "\" y=\"" + at(bottom + 16) + "\" text-anchor=\"middle\">" +
           tick_label(t, x_step) + "</text>";
  }
  svg += "<rect x=\"" + at(a.left) + "\" y=\"" + at(a.top) + "\" width=\"" + at(a.width) +
         "\" height=\"" + at(a.height) + "\" fill=\"none\" stroke=\"#333\"/>";
  svg += "<text x=\"" + at(a.left + a.width / 2) + "\" y=\"" + at(bottom + 34) +
         "\" text-anchor=\"middle\">" + escape_html(chart.x_label) + "</text>";
  const std::string mid = at(a.top + a.height / 2);
  svg += "<text x=\"14\" y=\"" + mid + "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " +
         mid + ")\">" + escape_html(chart.y_label) + "</text>";
  return svg + "</g>";
}

// The vertices of a series' line: all of them, but where several fall in one
// pixel column, only the column's first, lowest, highest and last. A dense
// series (thousands of steps) then draws as its envelope, not ink over ink,
// and the page stays small; data-values still holds every point.
std::vector<Point> line_vertices(const std::vector<Point>& points, const Scale& s) {
  std::vector<Point> vertices;
  for (size_t begin = 0; begin < points.size();) {
    const double column = std::floor(s.px(points[begin].x));
    size_t end = begin + 1;
    while (end < points.size() && std::floor(s.px(points[end].x)) == column) ++end;
    if (end - begin <= 4) {
      vertices.insert(vertices.end(), points.begin() + begin, points.begin() + end);
    } else {
      size_t low = begin, high = begin;
      for (size_t i = begin; i < end; ++i) {
        if (points[i].y < points[low].y) low = i;
        if (points[i].y > points[high].y) high = i;
      }
      std::vector<size_t> kept = {begin, low, high, end - 1};
      std::sort(kept.begin(), kept.end());
      kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
      for (const size_t i : kept) vertices.push_back(points[i]);
    }
    begin = end;
  }
  return vertices;
}

std::string series_element(const Series& series, size_t index, const Scale& s, bool markers,
                           bool whole_x) {
  const std::string colour = kPalette[index % kPaletteSize];
  const bool dashed = index >= kPaletteSize;
  std::string values, points;
  for (const Point& p : series.points)
    values += (values.empty() ? "" : " ") + exact_number(p.x) + "," + exact_number(p.y);
  for (const Point& p : line_vertices(series.points, s))
    points += (points.empty() ? "" : " ") + at(s.px(p.x)) + "," + at(s.py(p.y));
  std::string svg = "<g class=\"series\" data-series=\"" + escape_html(series.name) +
                    "\" data-values=\"" + values + "\">";
  svg += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"" +
         (dashed ? " stroke-dasharray=\"6 3\"" : "") + " points=\"" + points + "\"/>";
  if (markers || series.points.size() == 1) {
    for (const Point& p : series.points) {
      svg += "<circle cx=\"" + at(s.px(p.x)) + "\" cy=\"" + at(s.py(p.y)) + "\" r=\"3\" fill=\"" +
             colour + "\"><title>" + escape_html(series.name) + " at " +
             (whole_x ? fixed_number(p.x, 0) : readable_number(p.x)) + ": " +
             readable_number(p.y) + "</title></circle>";
    }
  }
  return svg + "</g>";
}

std::string legend(const LineChart& chart) {
  std::string svg = "<g class=\"legend\" font-size=\"11\" fill=\"#333\">";
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const double y = kPlotArea.top + 6 + 16.0 * static_cast<double>(i);
    if (y > kPlotArea.top + kPlotArea.height) break;  // the rest would fall off the chart
    const std::string& name = chart.series[i].name;
    const std::string shown =
        name.size() > kLegendNameChars ? name.substr(0, kLegendNameChars - 1) + "\u2026" : name;
    svg += "<line x1=\"" + at(kLegendLeft) + "\" y1=\"" + at(y) + "\" x2=\"" + at(kLegendLeft + 18) +
           "\" y2=\"" + at(y) + "\" stroke=\"" + kPalette[i % kPaletteSize] +
           "\" stroke-width=\"3\"" + (i >= kPaletteSize ? " stroke-dasharray=\"6 3\"" : "") + "/>";
    svg += "<text x=\"" + at(kLegendLeft + 24) + "\" y=\"" + at(y) +
           "\" dominant-baseline=\"middle\"><title>" + escape_html(name) + "</title>" +
           escape_html(shown) + "</text>";
  }
  return svg + "</g>";
}

}  // namespace

Axis nice_axis(double low, double high, bool whole_numbers, int max_ticks) {
  if (!(low <= high)) low = 0, high = 1;  // no finite data
  if (high - low < 1e-12 * std::max(1.0, std::fabs(high))) {
    // One value: a band around it.
    const double pad = whole_numbers ? 1.0 : std::max(std::fabs(low) * 0.1, 1e-3);
    low -= pad, high += pad;
  }
  const double step = nice_step((high - low) / std::max(1, max_ticks - 1), whole_numbers);
  Axis axis{.low = std::floor(low / step) * step, .high = std::ceil(high / step) * step};
  for (double t = axis.low; t <= axis.high + step * 1e-9; t += step)
    axis.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return axis;
}

std::string render_svg(const LineChart& chart) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low;
  double y_low = x_low, y_high = x_high;
  for (const Series& series : chart.series) {
    for (const Point& p : series.points) {
      x_low = std::min(x_low, p.x), x_high = std::max(x_high, p.x);
      y_low = std::min(y_low, p.y), y_high = std::max(y_high, p.y);
    }
  }
  const Scale scale{nice_axis(x_low, x_high, chart.whole_x), nice_axis(y_low, y_high, false)};

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"" +
                    escape_html(chart.id) + "\" width=\"" + std::to_string(kChartWidth) +
                    "\" height=\"" + std::to_string(kChartHeight) + "\" viewBox=\"0 0 " +
                    std::to_string(kChartWidth) + " " + std::to_string(kChartHeight) +
                    "\" font-family=\"sans-serif\" role=\"img\">";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  svg += "<text x=\"" + at(kPlotArea.left) + "\" y=\"20\" font-size=\"14\" font-weight=\"bold\" "
         "fill=\"#222\">" + escape_html(chart.title) + "</text>";
  svg += axes(chart, scale);
  svg += "<g class=\"plot\">";
  for (size_t i = 0; i < chart.series.size(); ++i)
    svg += series_element(chart.series[i], i, scale, chart.markers, chart.whole_x);
  svg += "</g>" + legend(chart) + "</svg>";
  return svg;
}

}  // namespace flare::report
