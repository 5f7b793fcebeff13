// The engine's modes as enums, each with its one spelling (the CLI's, the server's and the Python
// module's). Text is parsed into them once, at the edge; the engine never compares strings.
#pragma once

#include <string>
#include <string_view>

namespace fp8llm {

// How the decoder projections are held. `Auto`: a checkpoint that is already FP8 as it is, else a
// registered FP8 copy, else fp8-block on the fly (src/loader/resolve.h).
enum class Quantization { Auto, None, Fp8Row, Fp8Block };
// Where the model runs: the exact CPU reference, or a CUDA GPU.
enum class Device { Cpu, Cuda };
// How the CUDA backend sums FP8 products in passes of several tokens (docs/FP8.md): FP8 tensor
// cores (fast, about 1e-4 relative error per GEMM) or fp32 on CUDA cores (as the CPU does).
enum class Fp8Gemm { TensorCore, Fp32 };
// The element type of the paged KV cache. `Auto`: fp32 on the CPU (the exact reference), bf16 on
// CUDA. Fp8 is e4m3 with one scale per token and KV head (docs/FP8.md).
enum class KvCacheDtype { Auto, F32, BF16, Fp8 };
// Why a sequence ended: a stop token or stop string, its token limit (or the context's), a
// caller's cancellation, or an error that ended this request alone.
enum class FinishReason { Stop, Length, Cancelled, Error };

std::string_view to_string(Quantization q);  // "auto" | "none" | "fp8-row" | "fp8-block"
std::string_view to_string(Device d);        // "cpu" | "cuda"
std::string_view to_string(Fp8Gemm g);       // "tensor-core" | "fp32"
std::string_view to_string(KvCacheDtype k);  // "auto" | "fp32" | "bf16" | "fp8"
std::string_view to_string(FinishReason f);  // "stop" | "length" | "cancelled" | "error"

// Each throws fp8llm::Error naming `what` (the flag or field) and the accepted spellings.
Quantization parse_quantization(std::string_view text, std::string_view what = "--quantization");
Device parse_device(std::string_view text, std::string_view what = "--device");
Fp8Gemm parse_fp8_gemm(std::string_view text, std::string_view what = "--fp8-gemm");
KvCacheDtype parse_kv_cache_dtype(std::string_view text,
                                  std::string_view what = "--kv-cache-dtype");

}  // namespace fp8llm
