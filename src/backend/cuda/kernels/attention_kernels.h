// Which kernels attend, where more than one computes the same function: the pipelined decode
// kernel and the mma.sync prompt kernel, which the engine runs (measured faster on an H100 at
// every size bench_attention times: docs/PERFORMANCE.md), and the kernels they replace, kept for
// comparison. FP8LLM_ATTENTION_KERNELS picks them for a whole process, as
// "decode=measured|pipelined,prefill=wmma|mma" (either part alone).
#pragma once

#include <string>
#include <string_view>

namespace fp8llm::cuda {

// Decode tokens (decode_attention.h). Measured: each round's rows when the round comes, q and the
// sums in registers. Pipelined: requested with cp.async several rounds ahead, q in shared memory
// (decode_attention_pipelined.cu). Both cut the keys the same way.
enum class DecodeKvLoads { Measured, Pipelined };

// Prompt tokens on tensor cores (prefill_attention.h). Wmma: prefill_attention.cu. Mma:
// FlashAttention-2's layout on mma.sync, with Q, the scores and the output in registers and the
// next keys requested while the current ones are multiplied (prefill_attention_mma.cu). The same
// numerics; only the softmax's sums are added in another order.
enum class PrefillKernel { Wmma, Mma };

// The defaults are the kernels measured faster (docs/PERFORMANCE.md, H100).
struct AttentionKernels {
  DecodeKvLoads decode = DecodeKvLoads::Pipelined;
  PrefillKernel prefill = PrefillKernel::Mma;
};

// From the text of FP8LLM_ATTENTION_KERNELS (empty: the defaults); an Error naming the variable
// and the part it cannot read.
AttentionKernels parse_attention_kernels(std::string_view text);
// From the environment.
AttentionKernels attention_kernels_from_env();
// "decode=pipelined,prefill=mma"
std::string to_string(const AttentionKernels& kernels);

}  // namespace fp8llm::cuda
