// Squared L2 distances between every pair of kept updates over all their
// float tensors (Krum's and Bulyan's first step), in one pass: the
// coordinates go block by block, each block of all n updates small enough to
// stay in cache while every pair is compared, so each update is read from
// memory once, not n - 1 times as a pair-by-pair loop would.
#pragma once

#include <cstddef>
#include <vector>

#include "kept_round.hpp"

namespace robust {

// The kept round (KeptRound, ResultModel, ...) is common/kept_round.hpp's.
using namespace flare::agg;

// distances[i * n + j] (symmetric, zero diagonal), n = round.updates().size().
// Summed in double per fixed chunk of coordinates and the chunks added in
// order: the same bits for any number of threads. Hands back each block's
// pages once read.
std::vector<double> pairwise_squared_distances(const KeptRound& round, const flare::Host& host);

}  // namespace robust
