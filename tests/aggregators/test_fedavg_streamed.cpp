// fedavg folding updates as they stream in (ABI 1.3: begin_update,
// accept_chunk, retract_chunk, end_update, abort_update), through the host's
// AggregatorInstance, against a float64 reference and the whole-update path.
#include "plugin_host/plugin_instances.hpp"

#include "fedavg_fixtures.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::host;
using namespace flare::testing;

namespace {

constexpr size_t kBig = 3 * (size_t{1} << 18) + 13;  // several of flat_math's chunks and a tail
const double kUnit = std::ldexp(1.0, -24);           // float32's unit roundoff

// A site's model: float32 "big" and "small", float64 "bias", int64 scalar
// "steps", values over many magnitudes and both signs.
struct Site {
  std::vector<float> big = std::vector<float>(kBig), small = std::vector<float>(5);
  std::vector<double> bias = std::vector<double>(7);
  int64_t steps = 0;
  int64_t big_shape[1] = {kBig}, small_shape[1] = {5}, bias_shape[1] = {7};
  double weight = 1;
  std::string name;

  Site(unsigned seed, double w) : steps(100 + seed), weight(w), name("site-" + std::to_string(seed)) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> value(0.0, 1.0);
    std::uniform_int_distribution<int> exponent(-10, 10);
    for (auto& x : big) x = static_cast<float>(std::ldexp(value(rng), exponent(rng)));
    for (auto& x : small) x = static_cast<float>(std::ldexp(value(rng), exponent(rng)));
    for (auto& x : bias) x = std::ldexp(value(rng), exponent(rng));
  }
  // Names, dtypes and shapes, in the global model's order.
  std::vector<flare_named_tensor> tensors() {
    return {view("big", big.data(), {kDLFloat, 32, 1}, big_shape, 1),
            view("small", small.data(), {kDLFloat, 32, 1}, small_shape, 1),
            view("bias", bias.data(), {kDLFloat, 64, 1}, bias_shape, 1),
            view("steps", &steps, {kDLInt, 64, 1}, nullptr, 0)};
  }
  SiteUpdateFields header(int64_t round = 0) const {
    SiteUpdateFields h;
    h.site = name;
    h.round = round;
    h.num_samples = weight;
    h.num_steps = 1;
    return h;
  }
};

// One piece of one tensor of a site, as the host hands it over: struct_size
// left 0 (AggregatorInstance sets it), the whole tensor's view without data.
struct Piece {
  size_t site;
  size_t tensor;
  size_t offset, count;
};

// Every piece of a site, its tensors in a site-specific order, each cut into
// pieces of an odd size that does not divide the tensor.
std::vector<Piece> pieces_of(size_t site, std::mt19937& rng) {
  const size_t sizes[] = {kBig, 5, 7, 1};
  const size_t piece[] = {100003, 2, 3, 1};
  std::vector<size_t> order = {0, 1, 2, 3};
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<Piece> out;
  for (size_t t : order)
    for (size_t first = 0; first < sizes[t]; first += piece[t])
      out.push_back({site, t, first, std::min(piece[t], sizes[t] - first)});
  return out;
}

// Streams sites' updates into `agg`.
class Streamer {
 public:
  Streamer(AggregatorInstance& agg, std::vector<Site>& sites) : agg_(agg), sites_(sites) {
    for (auto& s : sites_) views_.push_back(s.tensors());
    for (auto& v : views_) {
      headers_.push_back(v);
      for (auto& t : headers_.back()) t.tensor.data = nullptr;
    }
  }
  flare_update_chunk chunk(const Piece& p) const {
    const flare_named_tensor& t = views_[p.site][p.tensor];
    const size_t bytes = (t.tensor.dtype.bits + 7) / 8;
    flare_update_chunk c{};
    c.part = FLARE_UPDATE_WEIGHTS;
    c.tensor_index = p.tensor;
    c.tensor = &headers_[p.site][p.tensor];
    c.element_offset = p.offset;
    c.num_elements = p.count;
    c.data = static_cast<const std::byte*>(t.tensor.data) + p.offset * bytes;
    return c;
  }
  void begin(size_t site, int64_t round = 0) { agg_.begin_update(id(site), sites_[site].header(round)); }
  void accept(const Piece& p) { agg_.accept_chunk(id(p.site), chunk(p)); }
  void retract(const Piece& p) { agg_.retract_chunk(id(p.site), chunk(p)); }
  void end(size_t site) { agg_.end_update(id(site)); }
  void abort(size_t site) { agg_.abort_update(id(site)); }
  // Sites as whole updates through accept().
  void accept_whole(size_t site) {
    const SiteUpdateStruct header(sites_[site].header());
    flare_site_update u = header.raw();
    u.weights = views_[site].data();
    u.num_weights = views_[site].size();
    agg_.accept(u);
  }
  static uint64_t id(size_t site) { return 1000 + site; }  // ids need not be indices

 private:
  AggregatorInstance& agg_;
  std::vector<Site>& sites_;
  std::vector<std::vector<flare_named_tensor>> views_, headers_;
};

// The float32 and float64 results against the float64 weighted mean of
// `counted`, allowed flat_math.hpp's bound, (folds + 2) * u * sum |w x| / sum w,
// for `folds` folds per element
// whose terms' magnitudes are those of `folded` (each fold and retraction).
struct Check {
  size_t big_off = 0, small_off = 0, bias_off = 0;
};
Check against_reference(std::span<const flare_named_tensor> result, const std::vector<Site>& sites,
                        const std::vector<size_t>& counted, const std::vector<size_t>& folded,
                        double folds) {
  double total = 0;
  for (size_t k : counted) total += sites[k].weight;
  auto off = [&](const std::string& name, auto member, auto got_type, double bound_scale) {
    using T = decltype(got_type);
    const auto* got = static_cast<const T*>(find(result, name).tensor.data);
    const size_t n = (sites[0].*member).size();
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      double exact = 0, magnitude = 0;
      for (size_t k : counted) exact += sites[k].weight * (sites[k].*member)[i];
      for (size_t k : folded) magnitude += std::fabs(sites[k].weight * (sites[k].*member)[i]);
      exact /= total;
      if (std::fabs(got[i] - exact) > bound_scale * (folds + 2) * magnitude / total) ++bad;
    }
    return bad;
  };
  return {off("big", &Site::big, float{}, kUnit), off("small", &Site::small, float{}, kUnit),
          off("bias", &Site::bias, double{}, 1e-15)};
}

int64_t steps_of(std::span<const flare_named_tensor> result) {
  return *static_cast<const int64_t*>(find(result, "steps").tensor.data);
}

std::vector<Site> make_sites(const std::vector<double>& weights) {
  std::vector<Site> sites;
  for (size_t k = 0; k < weights.size(); ++k) sites.emplace_back(static_cast<unsigned>(7 + k), weights[k]);
  return sites;
}

}  // namespace

TEST_CASE("fedavg declares that it folds streamed updates") {
  const HostServices host;
  const AggregatorInstance agg(fedavg_plugin(), "{}", host);
  CHECK(agg.folds_chunks());
}

TEST_CASE("streamed fedavg equals a float64 reference within its bound for any arrival order") {
  std::vector<Site> sites = make_sites({3, 1000, 7.5, 123456, 0.1});
  std::vector<size_t> all(sites.size());
  std::iota(all.begin(), all.end(), 0);
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Streamer stream(agg, sites);
  Site global(1, 1);

  // The whole-update path, for comparison.
  agg.begin_round(0, global.tensors());
  for (size_t k : all) stream.accept_whole(k);
  const auto whole_view = agg.finalize();
  std::vector<float> whole(static_cast<const float*>(whole_view[0].tensor.data),
                           static_cast<const float*>(whole_view[0].tensor.data) + kBig);
  const Check whole_check = against_reference(whole_view, sites, all, all, 5);
  CHECK(whole_check.big_off == 0);
  CHECK(whole_check.small_off == 0);
  CHECK(whole_check.bias_off == 0);

  enum class Order { UpdateAfterUpdate, RoundRobin, Random, Reversed };
  for (Order order : {Order::UpdateAfterUpdate, Order::RoundRobin, Order::Random, Order::Reversed}) {
    CAPTURE(static_cast<int>(order));
    std::mt19937 rng(42 + static_cast<unsigned>(order));
    std::vector<std::vector<Piece>> queues;
    for (size_t k : all) queues.push_back(pieces_of(k, rng));
    agg.begin_round(0, global.tensors());
    size_t last_ended = 0;
    if (order == Order::UpdateAfterUpdate || order == Order::Reversed) {
      std::vector<size_t> sequence = all;
      if (order == Order::Reversed) std::reverse(sequence.begin(), sequence.end());
      for (size_t k : sequence) {
        stream.begin(k);
        for (const Piece& p : queues[k]) stream.accept(p);
        stream.end(k);
        last_ended = k;
      }
    } else {
      // Every update in flight at once, their chunks interleaved.
      for (size_t k : all) stream.begin(k);
      std::vector<size_t> next(sites.size(), 0);
      for (size_t left = sites.size(), turn = 0; left > 0; ++turn) {
        size_t k = turn % sites.size();
        if (order == Order::Random) k = std::uniform_int_distribution<size_t>(0, sites.size() - 1)(rng);
        if (next[k] == queues[k].size()) continue;
        stream.accept(queues[k][next[k]++]);
        if (next[k] == queues[k].size()) {
          stream.end(k);
          last_ended = k;
          --left;
        }
      }
    }
    const auto result = agg.finalize();
    const Check c = against_reference(result, sites, all, all, 5);
    CHECK(c.big_off == 0);
    CHECK(c.small_off == 0);
    CHECK(c.bias_off == 0);
    CHECK(steps_of(result) == sites[last_ended].steps);  // the latest completed update's
    // And the whole-update path's result, within both bounds.
    const auto* big = static_cast<const float*>(find(result, "big").tensor.data);
    size_t apart = 0;
    for (size_t i = 0; i < kBig; ++i) {
      double magnitude = 0, total = 0;
      for (const Site& s : sites) magnitude += std::fabs(s.weight * s.big[i]), total += s.weight;
      apart += std::fabs(double(big[i]) - whole[i]) > 2 * 7 * kUnit * magnitude / total;
    }
    CHECK(apart == 0);
  }
}

TEST_CASE("a retracted and aborted update leaves no trace and its weight is not counted") {
  // site 1 is the heaviest by far: counting its weight, or leaving its
  // values, would move the mean far beyond float rounding.
  std::vector<Site> sites = make_sites({2, 5e4, 3, 0.5});
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Streamer stream(agg, sites);
  Site global(1, 1);
  std::mt19937 rng(5);
  std::vector<std::vector<Piece>> queues;
  for (size_t k = 0; k < sites.size(); ++k) queues.push_back(pieces_of(k, rng));

  agg.begin_round(0, global.tensors());
  for (size_t k : {1, 0, 2}) stream.begin(k);
  // Round robin with site 1 first in each turn, so it writes the first sums
  // of the pieces it sends; it stops after two thirds of its pieces.
  const size_t stop = queues[1].size() * 2 / 3;
  std::vector<Piece> accepted_of_1;
  std::vector<size_t> next(3, 0);
  for (bool more = true; more;) {
    more = false;
    for (size_t k : {1, 0, 2}) {
      const size_t limit = k == 1 ? stop : queues[k].size();
      if (next[k] == limit) continue;
      const Piece& p = queues[k][next[k]++];
      stream.accept(p);
      if (k == 1) accepted_of_1.push_back(p);
      more = true;
    }
  }
  stream.end(0);
  // Found bad: its accepted pieces come back in any order, then the abort.
  std::shuffle(accepted_of_1.begin(), accepted_of_1.end(), rng);
  for (const Piece& p : accepted_of_1) stream.retract(p);
  stream.abort(1);
  stream.end(2);
  // The round goes on: an update after the abort counts as usual.
  stream.begin(3);
  for (const Piece& p : queues[3]) stream.accept(p);
  stream.end(3);

  const auto result = agg.finalize();
  // Per element: 0, 1, -1 (where it got that far), 2, 3: 5 folds.
  const Check c = against_reference(result, sites, {0, 2, 3}, {0, 1, 1, 2, 3}, 5);
  CHECK(c.big_off == 0);
  CHECK(c.small_off == 0);
  CHECK(c.bias_off == 0);
  CHECK(steps_of(result) == sites[3].steps);
}

TEST_CASE("begin_update refuses a weight <= 0, another round and an id in flight, naming the site") {
  std::vector<Site> sites = make_sites({4, 0, -2, NAN});
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Streamer stream(agg, sites);
  Site global(1, 1);
  agg.begin_round(3, global.tensors());

  for (size_t k : {1, 2, 3}) {
    const auto e = call_error([&] { stream.begin(k, 3); });
    CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(e.function() == "begin_update");
    CHECK(contains(e.plugin_message(), "site '" + sites[k].name + "': weight num_samples"));
  }
  CHECK(contains(call_error([&] { stream.begin(0, 2); }).plugin_message(),
                 "update is for round 2, aggregating round 3"));
  stream.begin(0, 3);
  CHECK(contains(call_error([&] { stream.begin(0, 3); }).plugin_message(), "already in flight"));
  // Still in flight: no result yet.
  CHECK(contains(call_error([&] { agg.finalize(); }).plugin_message(), "still in flight"));

  std::mt19937 rng(1);
  for (const Piece& p : pieces_of(0, rng)) stream.accept(p);
  stream.end(0);
  // Only site 0 counted: the mean is its own values, to float rounding.
  const auto result = agg.finalize();
  const auto* big = static_cast<const float*>(find(result, "big").tensor.data);
  size_t off = 0;
  for (size_t i = 0; i < kBig; ++i) off += std::fabs(big[i] - sites[0].big[i]) > 2 * kUnit * std::fabs(sites[0].big[i]);
  CHECK(off == 0);
}

TEST_CASE("fedavg refuses chunks out of order and an update ended before it is complete") {
  std::vector<Site> sites = make_sites({1});
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Streamer stream(agg, sites);
  Site global(1, 1);
  agg.begin_round(0, global.tensors());
  stream.begin(0);
  const auto skipped = call_error([&] { stream.accept({0, 0, 100003, 5}); });
  CHECK(contains(skipped.plugin_message(),
                 "site 'site-7': chunk of tensor 'big' starts at element 100003, expected 0"));
  stream.accept({0, 0, 0, 100003});
  const auto early = call_error([&] { stream.end(0); });
  CHECK(contains(early.plugin_message(), "update ended with 100003 of the " +
                                             std::to_string(kBig) + " elements of tensor 'big'"));
  CHECK(contains(call_error([&] { agg.accept_chunk(99, stream.chunk({0, 1, 0, 1})); }).plugin_message(),
                 "accept_chunk: no update 99 is in flight"));
}
