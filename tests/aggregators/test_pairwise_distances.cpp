// Krum's pairwise squared distances (plugins/aggregators/robust) over kept
// updates against a float64 reference, for n in registers (2..16) and past
// it, float32 and float64 tensors, lengths that leave partial vectors.
#include "pairwise_distances.hpp"
#include "cpu_features.hpp"

#include <cmath>
#include <random>
#include <vector>

#include <doctest/doctest.h>

using namespace robust;

namespace {

struct Updates {
  std::vector<std::vector<float>> w;
  std::vector<std::vector<double>> b;
  int64_t w_shape[1], b_shape[1];
  std::vector<std::vector<flare_named_tensor>> tensors;
};

flare_named_tensor tensor(const char* name, void* data, DLDataType dtype, int64_t* shape) {
  return flare::tensor_view(name, data, dtype, shape, 1);
}

}  // namespace

TEST_CASE("pairwise distances match a float64 sum of squared differences") {
  flare_host_services services{};
  services.struct_size = sizeof(services);  // no release_pages: a no-op
  const flare::Host host(&services);
  std::mt19937 random(9);
  std::normal_distribution<float> value(0.0f, 1.0f);
  for (const bool registers : {true, false}) {  // false: the portable loop, as without AVX2
    use_avx2_fma(registers);
    for (const size_t n : {2, 3, 5, 8, 13, 16, 17, 20}) {
      Updates u;
      const size_t nw = 1003 + n, nb = 301;
      u.w_shape[0] = static_cast<int64_t>(nw);
      u.b_shape[0] = static_cast<int64_t>(nb);
      for (size_t k = 0; k < n; ++k) {
        u.w.emplace_back(nw);
        u.b.emplace_back(nb);
        for (auto& x : u.w.back()) x = value(random) + static_cast<float>(k);
        for (auto& x : u.b.back()) x = value(random);
      }
      std::vector<float> gw(nw);
      std::vector<double> gb(nb);
      const flare_named_tensor global[] = {tensor("w", gw.data(), {kDLFloat, 32, 1}, u.w_shape),
                                           tensor("b", gb.data(), {kDLFloat, 64, 1}, u.b_shape)};
      KeptRound round("test");
      round.begin(0, global);
      for (size_t k = 0; k < n; ++k) {
        u.tensors.push_back({tensor("w", u.w[k].data(), {kDLFloat, 32, 1}, u.w_shape),
                             tensor("b", u.b[k].data(), {kDLFloat, 64, 1}, u.b_shape)});
        flare_site_update update{};
        update.struct_size = sizeof(update);
        update.site = "s";
        update.weights = u.tensors.back().data();
        update.num_weights = 2;
        round.keep(update, host);
      }
      const std::vector<double> d = pairwise_squared_distances(round, host);
      REQUIRE(d.size() == n * n);
      size_t wrong = 0;
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) {
          double expected = 0;
          for (size_t c = 0; c < nw; ++c) expected += std::pow(double(u.w[i][c]) - u.w[j][c], 2);
          for (size_t c = 0; c < nb; ++c) expected += std::pow(u.b[i][c] - u.b[j][c], 2);
          if (std::abs(d[i * n + j] - expected) > 1e-5 * expected) ++wrong;
        }
      CHECK_MESSAGE(wrong == 0, "n = " << n << ", registers " << registers << ": " << wrong
                                        << " distances off");
    }
  }
  use_avx2_fma(true);
}
