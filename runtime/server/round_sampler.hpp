// Which sites train each round: a seeded draw from the sites still in the job,
// so a job's participation is reproducible from its seed, and a resumed job
// (its state restored from the checkpoint) draws what the uninterrupted one
// would have.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace flare::server {

class RoundSampler {
 public:
  explicit RoundSampler(uint64_t seed) : rng_(seed) {}

  // `count` of `candidates` (all of them when count >= their number), in the
  // candidates' order. Draws from the RNG only when there is a choice.
  std::vector<std::string> sample(const std::vector<std::string>& candidates, size_t count);

  // The RNG's state as text, and back (RoundCheckpoint.rng_state). restore
  // throws std::invalid_argument for text that is not such a state.
  std::string state() const;
  void restore(const std::string& state);

 private:
  std::mt19937_64 rng_;
};

}  // namespace flare::server
