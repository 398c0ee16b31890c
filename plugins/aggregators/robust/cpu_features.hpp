// Whether the hand-vectorised AVX2 + FMA kernels run (the sorting networks
// and pairwise distances with n in registers); otherwise the portable loops
// do. Checked once per process.
#pragma once

namespace robust {

// True when this CPU has AVX2 and FMA and the kernels are not switched off.
bool has_avx2_fma();

// Switches the AVX2 + FMA kernels off (false) or back on where the CPU has
// them, so that tests run the portable loops a CPU without AVX2 would.
// Process-wide; not while an aggregation runs.
void use_avx2_fma(bool on);

}  // namespace robust
