// flare/data_split.hpp: the IID / Dirichlet split of a training pool across
// sites, and the [data] table a trainer receives (ABI 1.4 data_json).
#include <flare/data_split.hpp>
#include <flare/plugin.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace {

// `per_class` samples of each of `classes` classes, interleaved.
std::vector<int64_t> balanced_labels(int64_t classes, int64_t per_class) {
  std::vector<int64_t> labels(static_cast<size_t>(classes * per_class));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i) % classes;
  return labels;
}

// The mean over sites of the share of a site's samples in its two largest
// classes: 0.2 for 10 evenly mixed classes, 1 for sites of two classes or fewer.
double mean_top_two_share(const std::vector<int64_t>& labels,
                          const std::vector<std::vector<int64_t>>& sites, int64_t classes) {
  double total = 0;
  for (const auto& site : sites) {
    std::vector<int64_t> counts = flare::label_histogram(labels, site, classes);
    std::sort(counts.rbegin(), counts.rend());
    total += static_cast<double>(counts[0] + counts[1]) / static_cast<double>(site.size());
  }
  return total / static_cast<double>(sites.size());
}

}  // namespace

TEST_CASE("a dirichlet split puts every sample on exactly one site, the same for a seed") {
  const std::vector<int64_t> labels = balanced_labels(10, 300);
  const auto sites = flare::dirichlet_split(labels, 5, 0.5, 7);
  REQUIRE(sites.size() == 5);
  std::vector<int64_t> all;
  for (const auto& site : sites) {
    CHECK(site.size() >= 10);
    all.insert(all.end(), site.begin(), site.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> every(labels.size());
  std::iota(every.begin(), every.end(), 0);
  CHECK(all == every);
  CHECK(flare::dirichlet_split(labels, 5, 0.5, 7) == sites);
  CHECK(flare::dirichlet_split(labels, 5, 0.5, 8) != sites);
}

TEST_CASE("the skew follows alpha: small alpha, sites of few classes; large alpha, near uniform") {
  const std::vector<int64_t> labels = balanced_labels(10, 500);
  const double skewed = mean_top_two_share(labels, flare::dirichlet_split(labels, 5, 0.1, 1), 10);
  const double middle = mean_top_two_share(labels, flare::dirichlet_split(labels, 5, 1.0, 1), 10);
  const double uniform = mean_top_two_share(labels, flare::dirichlet_split(labels, 5, 1000, 1), 10);
  INFO("top-two class share: alpha 0.1 " << skewed << ", 1 " << middle << ", 1000 " << uniform);
  CHECK(skewed > 0.6);
  CHECK(middle < skewed);
  CHECK(uniform < middle);
  CHECK(uniform < 0.22);
}

TEST_CASE("a split that cannot give every site its least samples is refused naming data.alpha") {
  const std::vector<int64_t> one_class(30, 0);  // each site needs 10 of one class's 30
  const auto refused = [&] { flare::dirichlet_split(one_class, 3, 0.001, 1); };
  CHECK_THROWS_WITH_AS(refused(), doctest::Contains("data.alpha"), flare::Error);
  CHECK_THROWS_AS(flare::dirichlet_split(std::vector<int64_t>{0, -1}, 1, 1.0, 1), flare::Error);
}

TEST_CASE("the [data] table reaches a trainer through data_json, read only from an ABI 1.4 host") {
  flare_worker_info raw{};
  raw.struct_size = sizeof(raw);
  raw.data_json = R"({"dir": "/d", "split": "dirichlet", "alpha": 0.25})";
  const flare::WorkerInfo info = flare::WorkerInfo::from(&raw);
  const flare::DataSplitSpec spec = flare::DataSplitSpec::from_json(info.data);
  CHECK(spec.kind == flare::DataSplitSpec::Kind::Dirichlet);
  CHECK(spec.alpha == 0.25);
  raw.struct_size = FLARE_WORKER_INFO_SIZE_1_0;  // an older host: the field is not there
  CHECK(flare::WorkerInfo::from(&raw).data.empty());
  CHECK(flare::DataSplitSpec::from_json(nlohmann::json::object()).kind ==
        flare::DataSplitSpec::Kind::Iid);
  CHECK_THROWS_WITH_AS(flare::DataSplitSpec::from_json({{"split", "shards"}}),
                       doctest::Contains("data.split"), flare::Error);
  CHECK_THROWS_WITH_AS(flare::DataSplitSpec::from_json({{"split", "dirichlet"}, {"alpha", 0}}),
                       doctest::Contains("data.alpha"), flare::Error);
}
