// The norm and the SiLU gating in front of FP8 projections, fused with the quantization of what
// they write: each writes its fp32 output as the plain kernel does (model_kernels.h; LoRA and
// anything else reading it see the same values) and, in the same pass over the row, the e4m3
// codes and scales that the activation quantizer (fp8_quant.h) would make of that output, in the
// layout Fp8Linear's quantized input has. At one token that saves a launch and a read of the row
// for each of the three quantizations a layer that follow a norm or the gating. With `out` null
// only the codes and scales are written (and the norm's residual stream): where nothing but the
// projection reads the values, a prompt step's gating and norms move a third fewer bytes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

// Codes [rows, dim] at q; scales of rows [0, rows_lt) in s1 (row: [rows_lt]; block:
// [ceil(dim / 128)][rows_lt]) and of the rest in s2 (the same with rows - rows_lt).
struct Fp8QuantizedOut {
  Fp8Scheme scheme = Fp8Scheme::Row;
  uint8_t* q = nullptr;
  float* s1 = nullptr;
  float* s2 = nullptr;
  int64_t rows_lt = 0;
};

// Rows up to this long (the plain kernels' limit).
bool fused_quant_supports(int64_t dim);

// launch_rms_norm (residual null) or launch_add_rms_norm, then out quantized into `quantized`.
void launch_rms_norm_quantize(float* x, const float* residual, int64_t rows, int64_t dim,
                              const __nv_bfloat16* w, float eps, float* out,
                              const Fp8QuantizedOut& quantized, cudaStream_t stream);

// launch_silu_mul over rows [rows, dim] (out may be gate), then out quantized.
void launch_silu_mul_quantize(const float* gate, const float* up, int64_t rows, int64_t dim,
                              float* out, const Fp8QuantizedOut& quantized, cudaStream_t stream);

}  // namespace fp8llm::cuda
