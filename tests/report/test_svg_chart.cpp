#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "report/svg_chart.hpp"
#include "report_reading.hpp"

using namespace flare::report;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("axis ticks are 1, 2 or 5 times a power of ten and cover the data") {
  const Axis loss = nice_axis(0.23, 2.31, false);
  CHECK(loss.low == doctest::Approx(0.0));
  CHECK(loss.high == doctest::Approx(2.5));
  REQUIRE(loss.ticks.size() == 6);
  CHECK(loss.ticks[1] == doctest::Approx(0.5));

  const Axis accuracy = nice_axis(0.101, 0.187, false);
  CHECK(accuracy.low == doctest::Approx(0.1));
  CHECK(accuracy.high == doctest::Approx(0.2));
  CHECK(accuracy.ticks[1] - accuracy.ticks[0] == doctest::Approx(0.02));
}

TEST_CASE("a whole-number axis (rounds) steps by whole numbers, and one value gets a band") {
  const Axis rounds = nice_axis(0, 2, true);
  CHECK(rounds.ticks == std::vector<double>{0, 1, 2});
  const Axis one_round = nice_axis(1, 1, true);
  CHECK(one_round.low == 0);
  CHECK(one_round.high == 2);
  const Axis one_value = nice_axis(0.5, 0.5, false);
  CHECK(one_value.low < 0.5);
  CHECK(one_value.high > 0.5);
}

TEST_CASE("each point is drawn where the axes put it: the lowest at the plot's bottom left") {
  const LineChart chart{.id = "c", .title = "t", .x_label = "round", .y_label = "accuracy",
                        .series = {{"val_acc", {{0, 0}, {1, 0.5}, {2, 1}}}}, .whole_x = true};
  const std::string svg = render_svg(chart);
  // x 0..2 and y 0..1 span the plot area exactly.
  const double left = kPlotArea.left, right = kPlotArea.left + kPlotArea.width;
  const double top = kPlotArea.top, bottom = kPlotArea.top + kPlotArea.height;
  char expected[160];
  std::snprintf(expected, sizeof(expected), "points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"", left,
                bottom, (left + right) / 2, (top + bottom) / 2, right, top);
  CHECK_MESSAGE(contains(svg, expected), "expected " << expected << " in " << svg);
  CHECK(contains(svg, ">round</text>"));
  CHECK(contains(svg, ">accuracy</text>"));
  CHECK(contains(svg, ">0.4</text>"));  // a y tick label (steps of 0.2)
}

TEST_CASE("each series carries its exact numbers, so what was drawn can be read back") {
  const double third = 1.0 / 3.0, tiny = 0.1 + 0.2;
  const LineChart chart{.id = "numbers", .series = {{"site-1", {{1, third}, {2, tiny}}},
                                                    {"site-2", {{1, 1e-300}}}}};
  const auto drawn = flare::testing::drawn_series(render_svg(chart), "numbers");
  REQUIRE(drawn.size() == 2);
  CHECK(drawn.at("site-1") == flare::testing::DrawnPoints{{1, third}, {2, tiny}});
  CHECK(drawn.at("site-2") == flare::testing::DrawnPoints{{1, 1e-300}});
}

TEST_CASE("a dense series draws its envelope per pixel column, and keeps every number") {
  Series steps{"site-1", {}};
  for (int i = 0; i < 10000; ++i) steps.points.push_back({double(i), i % 2 == 0 ? 1.0 : 3.0});
  steps.points[5000].y = 10;  // a spike must survive the thinning (axis 0..10)
  const std::string svg = render_svg({.id = "dense", .series = {steps}, .whole_x = true});
  const size_t begin = svg.find("points=\"") + 8;
  const std::string points = svg.substr(begin, svg.find('"', begin) - begin);
  const auto vertices = std::count(points.begin(), points.end(), ' ') + 1;
  CHECK(vertices <= 4 * (static_cast<long>(kPlotArea.width) + 1));
  CHECK(vertices >= static_cast<long>(kPlotArea.width));
  // The spike is the plot's top edge.
  char top[32];
  std::snprintf(top, sizeof(top), ",%.1f", kPlotArea.top);
  CHECK(points.find(top) != std::string::npos);
  CHECK(flare::testing::drawn_series(svg, "dense").at("site-1").size() == 10000);
}

TEST_CASE("markers carry the value on hover, and a lone point is drawn as a marker") {
  const LineChart with_markers{.id = "m", .series = {{"val_acc", {{1, 0.25}, {2, 0.5}}}},
                               .whole_x = true, .markers = true};
  CHECK(contains(render_svg(with_markers), "<title>val_acc at 2: 0.5</title>"));
  const LineChart lone{.id = "l", .series = {{"loss", {{7, 2.0}}}}};
  CHECK(contains(render_svg(lone), "<circle"));
  const LineChart line_only{.id = "s", .series = {{"loss", {{7, 2.0}, {8, 1.0}}}}};
  CHECK_FALSE(contains(render_svg(line_only), "<circle"));
}

TEST_CASE("names and titles are escaped, and every series has a legend entry") {
  const LineChart chart{.id = "x\"y", .title = "<b>loss</b>",
                        .series = {{"site<1>&\"", {{0, 1}}}, {"site-2", {{0, 2}}}}};
  const std::string svg = render_svg(chart);
  CHECK_FALSE(contains(svg, "<b>"));
  CHECK_FALSE(contains(svg, "site<1>"));
  CHECK(contains(svg, "&lt;b&gt;loss&lt;/b&gt;"));
  CHECK(contains(svg, "data-series=\"site&lt;1&gt;&amp;&quot;\""));
  CHECK(contains(svg, "id=\"x&quot;y\""));
  CHECK(contains(svg, ">site-2</text>"));  // its legend line
}

TEST_CASE("series beyond the palette's ten colours repeat them dashed") {
  LineChart chart{.id = "many"};
  for (int i = 0; i < 11; ++i) chart.series.push_back({"s" + std::to_string(i), {{0, 1.0 * i}}});
  const std::string svg = render_svg(chart);
  const size_t eleventh = svg.find("data-series=\"s10\"");
  REQUIRE(eleventh != std::string::npos);
  CHECK(svg.find("stroke-dasharray") > svg.find("data-series=\"s9\""));
  CHECK(contains(svg.substr(eleventh, 200), "stroke-dasharray"));
}
