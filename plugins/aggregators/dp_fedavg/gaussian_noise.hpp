// Standard normal draws addressed by a counter, so that a model's noise is
// the same whatever threads and chunks compute it, and a resumed run draws
// what an uninterrupted one would. Draws 2j and 2j + 1 of a stream are one
// Box-Muller pair from outputs 2j and 2j + 1 of SplitMix64 (Steele et al.
// 2014) seeded with the stream's key, as 52-bit uniforms (tails to 8.5
// sigma). Not a cryptographic generator: whoever knows the key can recompute
// the noise, which is why dp_fedavg's default seed comes from the OS.
//
// log, sin and cos are polynomials here (within a few 1e-16 of libm's), so
// that the loop vectorises: libm's scalar calls made the noise most of
// dp_fedavg's time (bench/RESULTS.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace flare::dp {

// SplitMix64's output function: a bijective mix of 64 bits.
uint64_t mix64(uint64_t x);

// A stream key for (seed, a, b), e.g. (the seed, the round, the tensor).
uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b);

// Draws 2 (first_pair + i) into first[i] and 2 (first_pair + i) + 1 into
// second[i], for i < pairs, of stream `key`.
void normal_pairs(uint64_t key, uint64_t first_pair, size_t pairs, double* first, double* second);

}  // namespace flare::dp
