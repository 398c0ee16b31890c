// A line chart as inline SVG: axes with ticks and labels, a legend, one
// polyline per series, drawn by the runtime so the page needs no JavaScript.
// Each series carries its exact numbers (data-values="x,y x,y ...") and each
// marker a <title> (the value on hover), so tools and tests can read back
// what was drawn.
#pragma once

#include <string>
#include <vector>

namespace flare::report {

struct Point {
  double x = 0, y = 0;
};

struct Series {
  std::string name;
  std::vector<Point> points;  // in drawing order
};

struct LineChart {
  std::string id;     // the element's id: a link target (#global-accuracy)
  std::string title;
  std::string x_label, y_label;
  std::vector<Series> series;
  bool whole_x = false;  // x counts something (rounds): ticks on whole numbers
  bool markers = false;  // a dot per point, with its value on hover
};

inline constexpr int kChartWidth = 640;
inline constexpr int kChartHeight = 300;

// Where the plot area lies inside the chart (pixels from its top left).
struct PlotArea {
  double left, top, width, height;
};
inline constexpr PlotArea kPlotArea{64, 36, 380, 216};

// The axis range and ticks for values from `low` to `high`: "nice" steps
// (1, 2 or 5 times a power of ten), the range widened to whole steps.
struct Axis {
  double low = 0, high = 1;
  std::vector<double> ticks;
};
Axis nice_axis(double low, double high, bool whole_numbers, int max_ticks = 6);

// The chart as an <svg> element kChartWidth x kChartHeight. Series beyond the
// palette's colours repeat them dashed. Names are escaped.
std::string render_svg(const LineChart& chart);

}  // namespace flare::report
