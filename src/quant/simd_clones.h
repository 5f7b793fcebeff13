// FP8LLM_SIMD_CLONES before a function compiles it twice, for AVX2 and for the baseline x86-64
// instruction set, and lets the dynamic loader pick one for the machine it runs on (GCC's
// target_clones). Elsewhere it expands to nothing. Only for loops whose results cannot depend on
// the instruction set: no fused multiply-add (ISO C++ mode keeps the compiler from contracting
// a * b + c), no reassociation.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FP8LLM_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FP8LLM_SIMD_CLONES
#endif
