#include "backend/cuda/gemm/cublaslt_gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {
namespace {

// Owners of cuBLASLt descriptors (destroy errors are logged: destructors cannot throw).
struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const {
    const cublasStatus_t st = cublasLtMatmulDescDestroy(d);
    if (st != CUBLAS_STATUS_SUCCESS)
      log_warning("cublasLtMatmulDescDestroy: {}", cublasLtGetStatusName(st));
  }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const {
    const cublasStatus_t st = cublasLtMatrixLayoutDestroy(l);
    if (st != CUBLAS_STATUS_SUCCESS)
      log_warning("cublasLtMatrixLayoutDestroy: {}", cublasLtGetStatusName(st));
  }
};
struct PrefDeleter {
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const {
    const cublasStatus_t st = cublasLtMatmulPreferenceDestroy(p);
    if (st != CUBLAS_STATUS_SUCCESS)
      log_warning("cublasLtMatmulPreferenceDestroy: {}", cublasLtGetStatusName(st));
  }
};
using DescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter>;
using PrefPtr = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PrefDeleter>;

LayoutPtr make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows),
                                          static_cast<uint64_t>(cols), ld));
  return LayoutPtr(l);
}

template <typename T>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& value) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}

int alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  int a = 256;
  while (a > 1 && (v % static_cast<uintptr_t>(a)) != 0) a /= 2;
  return a;
}

const char* kind_name(int kind) {
  switch (kind) {
    case 0:
      return "FP8 row-scaled";
    case 1:
      return "FP8 block-scaled";
    default:
      return "BF16";
  }
}

}  // namespace

struct CublasLtGemm::Plan {
  DescPtr desc;
  LayoutPtr a;
  LayoutPtr b;
  LayoutPtr d;
  cublasLtMatmulAlgo_t algo{};
  bool bias_in_epilogue = false;
};

CublasLtGemm::CublasLtGemm(size_t workspace_bytes) : handle_(workspace_bytes) {}
CublasLtGemm::~CublasLtGemm() = default;

bool CublasLtGemm::fp8_supports(Fp8Scheme scheme, int64_t m, int64_t n, int64_t k) {
  if (m < 1 || n < 1 || k < 1) return false;
  if (k % 16 != 0 || n % 8 != 0) return false;
  if (scheme == Fp8Scheme::Block && (m % 4 != 0 || n % 4 != 0)) return false;
  return true;
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(Kind kind, int64_t m, int64_t n, int64_t k,
                                           const Operands& ops) {
  const bool has_bias = ops.bias != nullptr;
  const Key key{static_cast<int>(kind),
                m,
                n,
                k,
                has_bias,
                ops.f32_out,
                alignment_of(ops.a),
                alignment_of(ops.b),
                alignment_of(ops.d)};
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  const bool fp8 = kind != Kind::Bf16;
  const cudaDataType_t in_type = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  plan->a = make_layout(in_type, k, n, k);
  plan->b = make_layout(in_type, k, m, k);
  plan->d = make_layout(ops.f32_out ? CUDA_R_32F : CUDA_R_16BF, n, m, n);

  PrefPtr pref;
  {
    cublasLtMatmulPreference_t p = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p));
    pref.reset(p);
  }
  const uint64_t ws_bytes = handle_.workspace_size();
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)));
  const auto set_align = [&](cublasLtMatmulPreferenceAttributes_t attr, const void* ptr) {
    const auto a = static_cast<uint32_t>(alignment_of(ptr));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), attr, &a, sizeof(a)));
  };
  set_align(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, ops.a);
  set_align(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, ops.b);
  set_align(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, ops.d);
  set_align(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, ops.d);

  // Try with the bias in the epilogue first; some scaling modes may offer no such algorithm.
  for (const bool epilogue_bias : {has_bias, false}) {
    cublasLtMatmulDesc_t d = nullptr;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    plan->desc.reset(d);
    set_attr(d, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    set_attr(d, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    if (fp8) {
      const int32_t a_mode = kind == Kind::Fp8Row ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F
                                                  : CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
      const int32_t b_mode = kind == Kind::Fp8Row ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F
                                                  : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      set_attr(d, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, a_mode);
      set_attr(d, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, b_mode);
      set_attr(d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ops.a_scale);
      set_attr(d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ops.b_scale);
    }
    if (epilogue_bias) {
      set_attr(d, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
      const int32_t bias_type = CUDA_R_16BF;
      set_attr(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
      set_attr(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, ops.bias);
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        handle_.get(), d, plan->a.get(), plan->b.get(), plan->d.get(), plan->d.get(), pref.get(), 1,
        &result, &found);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
      plan->algo = result.algo;
      plan->bias_in_epilogue = epilogue_bias;
      auto& ref = *plan;
      plans_.emplace(key, std::move(plan));
      return ref;
    }
    // A bias epilogue may be refused as unsupported or (bf16 bias, fp32 output) as an invalid
    // value; either way the plan falls back to a separate bias kernel.
    if (epilogue_bias) continue;
    if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) {
      throw_cublas_error(st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
    }
    break;
  }
  throw std::runtime_error(fmt::format("cuBLASLt has no {} GEMM with {} output for M={} N={} K={}",
                                       kind_name(static_cast<int>(kind)),
                                       ops.f32_out ? "fp32" : "bf16", m, n, k));
}

void CublasLtGemm::run(Kind kind, int64_t m, int64_t n, int64_t k, const Operands& ops,
                       cudaStream_t stream) {
  Plan& plan = plan_for(kind, m, n, k, ops);
  cublasLtMatmulDesc_t d = plan.desc.get();
  if (kind != Kind::Bf16) {
    set_attr(d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ops.a_scale);
    set_attr(d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ops.b_scale);
  }
  if (plan.bias_in_epilogue) set_attr(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, ops.bias);
  const float alpha = 1.0f;
  const float beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_.get(), d, &alpha, ops.a, plan.a.get(), ops.b, plan.b.get(),
                              &beta, ops.d, plan.d.get(), ops.d, plan.d.get(), &plan.algo,
                              handle_.workspace(), handle_.workspace_size(), stream));
  if (ops.bias != nullptr) {
    last_bias_in_epilogue_ = plan.bias_in_epilogue;
    if (!plan.bias_in_epilogue) {
      const auto* bias = static_cast<const __nv_bfloat16*>(ops.bias);
      if (ops.f32_out) {
        launch_add_bias(static_cast<float*>(ops.d), bias, m, n, stream);
      } else {
        launch_add_bias(static_cast<__nv_bfloat16*>(ops.d), bias, m, n, stream);
      }
    }
  }
}

void CublasLtGemm::check_fp8(Fp8Scheme scheme, int64_t m, int64_t n, int64_t k,
                             int64_t ws_ld) const {
  if (!fp8_supports(scheme, m, n, k)) {
    throw std::invalid_argument(fmt::format("cuBLASLt FP8 {} GEMM does not support M={} N={} K={}",
                                            scheme == Fp8Scheme::Row ? "row" : "block", m, n, k));
  }
  if (scheme == Fp8Scheme::Block && (ws_ld % 4 != 0 || ws_ld < (k + 127) / 128)) {
    throw std::invalid_argument(
        fmt::format("cuBLASLt block scales need a leading dimension that is a multiple of 4 and at "
                    "least ceil(K/128) = {}, got {}",
                    (k + 127) / 128, ws_ld));
  }
}

void CublasLtGemm::gemm_fp8(Fp8Scheme scheme, const uint8_t* xq, const float* xs, int64_t m,
                            const uint8_t* wq, const float* ws, int64_t ws_ld, int64_t n, int64_t k,
                            const __nv_bfloat16* bias, __nv_bfloat16* y, cudaStream_t stream) {
  check_fp8(scheme, m, n, k, ws_ld);
  const Operands ops{wq, xq, y, ws, xs, bias, false};
  run(scheme == Fp8Scheme::Row ? Kind::Fp8Row : Kind::Fp8Block, m, n, k, ops, stream);
}

void CublasLtGemm::gemm_fp8(Fp8Scheme scheme, const uint8_t* xq, const float* xs, int64_t m,
                            const uint8_t* wq, const float* ws, int64_t ws_ld, int64_t n, int64_t k,
                            const __nv_bfloat16* bias, float* y, cudaStream_t stream) {
  check_fp8(scheme, m, n, k, ws_ld);
  const Operands ops{wq, xq, y, ws, xs, bias, true};
  run(scheme == Fp8Scheme::Row ? Kind::Fp8Row : Kind::Fp8Block, m, n, k, ops, stream);
}

void CublasLtGemm::gemm_bf16(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n,
                             int64_t k, const __nv_bfloat16* bias, __nv_bfloat16* y,
                             cudaStream_t stream) {
  if (m < 1 || n < 1 || k < 1) throw std::invalid_argument("gemm_bf16: empty matrix");
  const Operands ops{w, x, y, nullptr, nullptr, bias, false};
  run(Kind::Bf16, m, n, k, ops, stream);
}

void CublasLtGemm::gemm_bf16(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n,
                             int64_t k, const __nv_bfloat16* bias, float* y, cudaStream_t stream) {
  if (m < 1 || n < 1 || k < 1) throw std::invalid_argument("gemm_bf16: empty matrix");
  const Operands ops{w, x, y, nullptr, nullptr, bias, true};
  run(Kind::Bf16, m, n, k, ops, stream);
}

}  // namespace fp8llm::cuda
