// Whether this CPU runs the hand-vectorised AVX2 + FMA kernels (the sorting
// networks in registers, the pairwise distances); the others run portable
// loops. Checked once.
#pragma once

namespace robust {

bool has_avx2_fma();

}  // namespace robust
