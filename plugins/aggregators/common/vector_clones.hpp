// FLARE_VECTOR_CLONES: an element loop is compiled twice on x86-64, for AVX2
// and for the baseline, and the loader picks one for the CPU it runs on
// (ifunc): the plugin runs on any x86-64 and uses 256-bit vectors where they
// exist.
#pragma once

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define FLARE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef FLARE_VECTOR_CLONES
#define FLARE_VECTOR_CLONES
#endif
