// Standard normal draws addressed by a counter, so that a model's noise is
// the same whatever threads and chunks compute it, and a resumed run draws
// what an uninterrupted one would. Draws 2j and 2j + 1 of a stream are one
// Box-Muller pair from outputs 2j and 2j + 1 of SplitMix64 (Steele et al.
// 2014) seeded with the stream's key, 53-bit uniforms (tails to 8.5 sigma).
// Not a cryptographic generator: whoever knows the key can recompute the
// noise, which is why dp_fedavg's default seed comes from the OS.
#pragma once

#include <cstdint>

namespace flare::dp {

// SplitMix64's output function: a bijective mix of 64 bits.
uint64_t mix64(uint64_t x);

// A stream key for (seed, a, b), e.g. (the seed, the round, the tensor).
uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b);

struct NormalPair {
  double first, second;
};
// Draws 2 * pair and 2 * pair + 1 of stream `key`.
NormalPair normal_pair(uint64_t key, uint64_t pair);

}  // namespace flare::dp
