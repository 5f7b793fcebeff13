#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "backend/cuda/kernels/fused_quant.h"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "model/layer_members.h"
#include "model/rope_table.h"

namespace fp8llm::cuda {
namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

float* f32(Act a) {
  return static_cast<float*>(a.data);
}

// Where a fused norm or gating writes its values: nowhere when only the projections read them.
float* values_out(Act out, NextLinear next) {
  return next.values_read ? f32(out) : nullptr;
}

Fp8QuantizedOut quantized_out(const Fp8Linear::QuantizedInput& in) {
  return {in.scheme, in.q, in.s1, in.s2, in.m_lt};
}

// Where each batch array lives in the staging buffers (the same offsets on the host and the
// device), for batches within the limits.
struct BatchLayout {
  size_t token_ids, positions, slots, token_seq, query_start, block_tables, logit_rows, token_lora,
      lora_rows, lora_row_slots, bytes;
  explicit BatchLayout(const CudaBackendLimits& l) {
    const auto tokens = static_cast<size_t>(l.max_tokens);
    const auto seqs = static_cast<size_t>(l.max_seqs);
    size_t at = 0;
    const auto take = [&at](size_t size) {
      const size_t here = at;
      at += align_up(size);
      return here;
    };
    token_ids = take(tokens * sizeof(int32_t));
    positions = take(tokens * sizeof(int64_t));
    slots = take(tokens * sizeof(int64_t));
    token_seq = take(tokens * sizeof(int32_t));
    query_start = take((seqs + 1) * sizeof(int32_t));
    block_tables = take(seqs * static_cast<size_t>(l.max_blocks) * sizeof(int32_t));
    logit_rows = take(tokens * sizeof(int32_t));
    token_lora = take(tokens * sizeof(int32_t));
    lora_rows = take(tokens * sizeof(int32_t));
    lora_row_slots = take(tokens * sizeof(int32_t));
    bytes = at;
  }
};

}  // namespace

CudaBackend::CudaBackend(const ModelConfig& config, DeviceWeights weights, CudaBackendLimits limits)
    : config_(config),
      weights_(std::move(weights)),
      limits_(limits),
      fp8_(gemm_,
           limits.fp8_gemm == Fp8Gemm::Fp32 ? Fp8Accumulation::Fp32 : Fp8Accumulation::TensorCore) {
  const ModelConfig& c = config_;
  FP8LLM_CHECK(c.head_dim <= kPagedMaxHeadDim && c.head_dim % 2 == 0,
               "--device cuda: head_dim {} is not supported (even, at most {})", c.head_dim,
               kPagedMaxHeadDim);
  FP8LLM_CHECK(c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0,
               "--device cuda: {} heads do not group over {} key/value heads", c.num_heads,
               c.num_kv_heads);
  // --fp8-gemm fp32 keeps every sum in fp32, attention's too; tensor-core puts prompts on tensor
  // cores where the head size and the device's shared memory allow it.
  prefill_attention_ =
      limits_.fp8_gemm == Fp8Gemm::TensorCore && prefill_attention_supported(c.head_dim)
          ? PrefillAttention::TensorCores
          : PrefillAttention::Fp32;
  const RopeTable table(rope_params(c.rope), c.head_dim);
  inv_freq_ = to_device(table.inv_freq());
  // Every buffer a pass uses is sized for the limits now, so none moves once a pass is recorded.
  const int64_t widest = std::max({c.hidden_size, c.intermediate_size, c.num_heads * c.head_dim});
  fp8_.reserve(limits_.max_tokens, widest);
  // A layer's q, k and v multiply as one weight (arena_layout.h): up to kFp8JoinMaxRows rows
  // copied out, up to kFp8JoinInPlaceMaxRows read in place.
  if (limits_.fp8_gemm == Fp8Gemm::TensorCore && c.num_layers > 0) {
    const DeviceLayer& first = weights_.layer(0);
    if (first.q.is_fp8()) {
      fp8_.reserve_joined(std::min(limits_.max_tokens, kFp8JoinInPlaceMaxRows),
                          first.q.n + first.k.n + first.v.n);
    }
  }
  bf16_input_.reserve_discard(static_cast<size_t>(limits_.max_tokens * widest) *
                              sizeof(__nv_bfloat16));
  const BatchLayout layout(limits_);
  batch_device_ = DeviceBuffer(layout.bytes);
  batch_host_ = PinnedBuffer(layout.bytes);
  const auto decode_rows = static_cast<size_t>(limits_.max_seqs * c.num_heads);
  decode_partial_ = DeviceBuffer(decode_rows * kDecodeMaxSplits *
                                 static_cast<size_t>(c.head_dim + 2) * sizeof(float));
  decode_counters_ = DeviceBuffer(decode_rows * sizeof(int));
  decode_counters_.fill_zero();
}

BatchView CudaBackend::prepare(const Batch& b) {
  prepared_.reset();  // what a pass prepared is for that pass
  const int64_t tokens = b.num_tokens(), seqs = b.num_seqs();
  FP8LLM_CHECK(tokens <= limits_.max_tokens && seqs <= limits_.max_seqs &&
                   b.max_blocks <= limits_.max_blocks,
               "cuda: a pass of {} tokens, {} sequences, {} blocks each exceeds the limits ({}, "
               "{}, {})",
               tokens, seqs, b.max_blocks, limits_.max_tokens, limits_.max_seqs,
               limits_.max_blocks);
  for (int32_t id : b.token_ids) {
    FP8LLM_CHECK(id >= 0 && id < weights_.vocab_size(),
                 "token id {} is out of range (vocabulary of {})", id, weights_.vocab_size());
  }
  stream_.synchronize();  // the previous pass may still read the staging copy
  const BatchLayout layout(limits_);
  std::byte* host = batch_host_.as<std::byte>();
  std::byte* dev = batch_device_.as<std::byte>();
  const auto stage = [&](size_t offset, const auto& v) {
    const size_t bytes = v.size() * sizeof(v[0]);
    if (bytes == 0) return;
    std::memcpy(host + offset, v.data(), bytes);
    CUDA_CHECK(
        cudaMemcpyAsync(dev + offset, host + offset, bytes, cudaMemcpyHostToDevice, stream_.get()));
  };
  stage(layout.token_ids, b.token_ids);
  stage(layout.positions, b.positions);
  stage(layout.slots, b.slots);
  stage(layout.token_seq, b.token_seq);
  stage(layout.query_start, b.query_start);
  stage(layout.block_tables, b.block_tables);
  stage(layout.logit_rows, b.logit_rows);
  stage(layout.token_lora, b.token_lora);
  if (b.lora) {
    lora_rows_.resize(b.token_lora.size());
    lora_row_slots_.resize(b.token_lora.size());
    group_lora_rows(b.token_lora.data(), tokens, lora_rows_.data(), lora_row_slots_.data());
    stage(layout.lora_rows, lora_rows_);
    stage(layout.lora_row_slots, lora_row_slots_);
  }
  BatchView v = host_view(b);  // the sizes, computed on the host
  v.token_ids = reinterpret_cast<const int32_t*>(dev + layout.token_ids);
  v.positions = reinterpret_cast<const int64_t*>(dev + layout.positions);
  v.slots = reinterpret_cast<const int64_t*>(dev + layout.slots);
  v.token_seq = reinterpret_cast<const int32_t*>(dev + layout.token_seq);
  v.query_start = reinterpret_cast<const int32_t*>(dev + layout.query_start);
  v.block_tables = reinterpret_cast<const int32_t*>(dev + layout.block_tables);
  v.logit_rows = reinterpret_cast<const int32_t*>(dev + layout.logit_rows);
  v.token_lora = reinterpret_cast<const int32_t*>(dev + layout.token_lora);
  v.lora_rows = reinterpret_cast<const int32_t*>(dev + layout.lora_rows);
  v.lora_row_slots = reinterpret_cast<const int32_t*>(dev + layout.lora_row_slots);
  FP8LLM_CHECK(v.num_decode_tokens <= limits_.max_seqs, "cuda: {} decode tokens in one pass",
               v.num_decode_tokens);
  return v;
}

void CudaBackend::embed(const BatchView& batch, Act out) {
  launch_embed(weights_.embed(), batch.token_ids, batch.num_tokens, weights_.hidden_size(),
               f32(out), stream_.get());
}

const __nv_bfloat16* CudaBackend::norm_weights(int64_t layer, NormKind kind) const {
  if (kind == NormKind::Final) return weights_.final_norm();
  return layer_norm(weights_.layer(layer), kind);
}

int64_t CudaBackend::norm_dim(NormKind kind) const {
  return kind == NormKind::QNorm || kind == NormKind::KNorm ? config_.head_dim
                                                            : config_.hidden_size;
}

void CudaBackend::rms_norm(Act in, int64_t layer, NormKind kind, Act out) {
  const __nv_bfloat16* w = norm_weights(layer, kind);
  const int64_t dim = norm_dim(kind);
  FP8LLM_CHECK(w != nullptr && in.cols % dim == 0, "rms_norm: {} columns for a norm of {}", in.cols,
               dim);
  launch_rms_norm(f32(in), in.rows * (in.cols / dim), dim, w,
                  static_cast<float>(config_.rms_norm_eps), f32(out), stream_.get());
}

void CudaBackend::add_rms_norm(Act x, Act y, int64_t layer, NormKind kind, Act out) {
  const __nv_bfloat16* w = norm_weights(layer, kind);
  const int64_t dim = norm_dim(kind);
  FP8LLM_CHECK(
      w != nullptr && x.cols == dim && y.rows == x.rows && y.cols == x.cols && out.data != x.data,
      "add_rms_norm: [{}, {}] + [{}, {}] for a norm of {}", x.rows, x.cols, y.rows, y.cols, dim);
  launch_add_rms_norm(f32(x), f32(y), x.rows, dim, w, static_cast<float>(config_.rms_norm_eps),
                      f32(out), stream_.get());
}

void CudaBackend::rms_norm_for(Act in, int64_t layer, NormKind kind, Act out, NextLinear next) {
  const std::optional<Fp8Linear::QuantizedInput> q = prepare_input(out, next);
  if (!q || in.cols != norm_dim(kind)) {
    prepared_.reset();
    return rms_norm(in, layer, kind, out);
  }
  launch_rms_norm_quantize(f32(in), nullptr, in.rows, in.cols, norm_weights(layer, kind),
                           static_cast<float>(config_.rms_norm_eps), values_out(out, next),
                           quantized_out(*q), stream_.get());
}

void CudaBackend::add_rms_norm_for(Act x, Act y, int64_t layer, NormKind kind, Act out,
                                   NextLinear next) {
  const std::optional<Fp8Linear::QuantizedInput> q = prepare_input(out, next);
  if (!q || x.cols != norm_dim(kind) || y.rows != x.rows || y.cols != x.cols ||
      out.data == x.data) {
    prepared_.reset();
    return add_rms_norm(x, y, layer, kind, out);
  }
  launch_rms_norm_quantize(f32(x), f32(y), x.rows, x.cols, norm_weights(layer, kind),
                           static_cast<float>(config_.rms_norm_eps), values_out(out, next),
                           quantized_out(*q), stream_.get());
}

void CudaBackend::silu_mul_for(Act gate, Act up, Act out, NextLinear next) {
  const std::optional<Fp8Linear::QuantizedInput> q = prepare_input(out, next);
  if (!q || up.rows != gate.rows || up.cols != gate.cols || out.rows != gate.rows ||
      out.cols != gate.cols) {
    prepared_.reset();
    return silu_mul(gate, up, out);
  }
  launch_silu_mul_quantize(f32(gate), f32(up), gate.rows, gate.cols, values_out(out, next),
                           quantized_out(*q), stream_.get());
}

std::vector<const Fp8DeviceWeight*> CudaBackend::fp8_weights(
    int64_t layer, std::span<const LinearKind> kinds) const {
  std::vector<const Fp8DeviceWeight*> ws;
  for (const LinearKind kind : kinds) {
    const DeviceLinear& w = linear_weights(layer, kind);
    if (!w.is_fp8()) return {};
    ws.push_back(&w.fp8);
  }
  return ws;
}

std::vector<const Fp8DeviceWeight*> CudaBackend::checked_fp8_weights(
    Act in, int64_t layer, std::span<const LinearKind> kinds, std::span<const Act> outs,
    const char* op) const {
  for (size_t i = 0; i < kinds.size(); ++i) {
    const DeviceLinear& w = linear_weights(layer, kinds[i]);
    FP8LLM_CHECK(in.cols == w.k && outs[i].cols == w.n && outs[i].rows == in.rows,
                 "{}: shapes do not agree", op);
  }
  return fp8_weights(layer, kinds);
}

std::optional<Fp8Linear::QuantizedInput> CudaBackend::prepare_input(Act out, NextLinear next) {
  prepared_.reset();
  if (next.kinds.empty() || !fused_quant_supports(out.cols)) return std::nullopt;
  const std::vector<const Fp8DeviceWeight*> ws = fp8_weights(next.layer, next.kinds);
  if (ws.empty() || ws[0]->k != out.cols) return std::nullopt;
  std::optional<Fp8Linear::QuantizedInput> q = fp8_.reserve_group_input(ws, out.rows);
  if (!q) return std::nullopt;
  prepared_ = PreparedInput{out.data,
                            out.rows,
                            out.cols,
                            next.layer,
                            std::vector<LinearKind>(next.kinds.begin(), next.kinds.end()),
                            *q,
                            next.values_read};
  return q;
}

std::optional<Fp8Linear::QuantizedInput> CudaBackend::take_prepared(
    Act in, int64_t layer, std::span<const LinearKind> kinds) {
  if (!prepared_) return std::nullopt;
  const PreparedInput p = std::move(*prepared_);
  prepared_.reset();
  if (p.data != in.data || p.rows != in.rows || p.cols != in.cols || p.layer != layer ||
      !std::equal(p.kinds.begin(), p.kinds.end(), kinds.begin(), kinds.end())) {
    // The values of an activation prepared for other projections were never written.
    FP8LLM_CHECK(p.values_written || p.data != in.data,
                 "linear: layer {} reads values prepared only as codes for other projections",
                 layer);
    return std::nullopt;
  }
  return p.input;
}

const DeviceLinear& CudaBackend::linear_weights(int64_t layer, LinearKind kind) const {
  if (kind == LinearKind::LmHead) return weights_.lm_head();
  return layer_linear(weights_.layer(layer), kind);
}

void CudaBackend::linear(Act in, int64_t layer, LinearKind kind, Act out) {
  const DeviceLinear& w = linear_weights(layer, kind);
  FP8LLM_CHECK(in.cols == w.k && out.cols == w.n && in.rows == out.rows,
               "linear: shapes [{}, {}] x [{}, {}]^T -> [{}, {}] do not agree", in.rows, in.cols,
               w.n, w.k, out.rows, out.cols);
  if (w.is_fp8()) {
    if (const auto q = take_prepared(in, layer, std::span<const LinearKind>(&kind, 1))) {
      const Fp8DeviceWeight* ws[] = {&w.fp8};
      float* ys[] = {f32(out)};
      return fp8_.forward_group_quantized(ws, *q, ys, stream_.get());
    }
    fp8_.forward(w.fp8, f32(in), in.rows, f32(out), stream_.get());
    return;
  }
  // A bf16 weight multiplies bf16 inputs (the tensor cores' operand types), into fp32.
  const int64_t count = in.rows * in.cols;
  FP8LLM_CHECK(static_cast<size_t>(count) * sizeof(__nv_bfloat16) <= bf16_input_.size(),
               "linear: an input of [{}, {}] exceeds the pass limits", in.rows, in.cols);
  launch_to_bf16(DType::F32, in.data, count, bf16_input_.as<__nv_bfloat16>(), stream_.get());
  gemm_.gemm_bf16(bf16_input_.as<__nv_bfloat16>(), in.rows, w.w, w.n, w.k, w.bias, f32(out),
                  stream_.get());
}

void CudaBackend::linear_group(Act in, int64_t layer, std::span<const LinearKind> kinds,
                               std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size() && !kinds.empty(),
               "linear_group: {} weights for {} outputs", kinds.size(), outs.size());
  const std::vector<const Fp8DeviceWeight*> ws =
      checked_fp8_weights(in, layer, kinds, outs, "linear_group");
  // One quantization of the input for every output (and one kernel for all of them at one token);
  // none where the op that wrote the input quantized it.
  if (!ws.empty()) {
    std::vector<float*> ys;
    for (const Act& out : outs) ys.push_back(f32(out));
    if (const auto q = take_prepared(in, layer, kinds))
      return fp8_.forward_group_quantized(ws, *q, ys, stream_.get());
    return fp8_.forward_group(ws, f32(in), in.rows, ys, stream_.get());
  }
  Backend::linear_group(in, layer, kinds, outs);
}

PagedBatch CudaBackend::paged(const BatchView& b) const {
  return {.tokens = b.num_tokens,
          .positions = b.positions,
          .slots = b.slots,
          .token_seq = b.token_seq,
          .block_tables = b.block_tables,
          .max_blocks = b.max_blocks,
          .max_ranges = decode_ranges_bound(b.max_position + 1)};
}

PagedKv CudaBackend::paged(const KvCacheView& kv, int64_t layer) const {
  const KvLayer& l = kv.layers[static_cast<size_t>(layer)];
  return {.dtype = kv.spec.dtype,
          .k = l.k,
          .v = l.v,
          .k_scale = l.k_scale,
          .v_scale = l.v_scale,
          .block_size = kv.spec.block_size};
}

void CudaBackend::rope(Act x, int64_t heads, const BatchView& batch) {
  FP8LLM_CHECK(x.rows == batch.num_tokens && x.cols == heads * config_.head_dim,
               "rope: [{}, {}] with {} heads for {} tokens", x.rows, x.cols, heads,
               batch.num_tokens);
  launch_rope(f32(x), x.rows, heads, config_.head_dim, batch.positions, inv_freq_.as<float>(),
              stream_.get());
}

void CudaBackend::append_kv(int64_t layer, Act k, Act v, const KvCacheView& kv,
                            const BatchView& batch) {
  launch_rope_append_kv(nullptr, f32(k), f32(v), config_.num_heads, config_.num_kv_heads,
                        config_.head_dim, nullptr, paged(batch), paged(kv, layer), stream_.get());
}

void CudaBackend::rope_append_kv(int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                                 const BatchView& batch) {
  FP8LLM_CHECK(q.rows == batch.num_tokens && k.rows == q.rows && v.rows == q.rows,
               "rope_append_kv: q/k/v rows {}/{}/{} for {} tokens", q.rows, k.rows, v.rows,
               batch.num_tokens);
  launch_rope_append_kv(f32(q), f32(k), f32(v), config_.num_heads, config_.num_kv_heads,
                        config_.head_dim, inv_freq_.as<float>(), paged(batch), paged(kv, layer),
                        stream_.get());
}

void CudaBackend::qkv_rope_append_kv(Act in, int64_t layer, Act q, Act k, Act v,
                                     const KvCacheView& kv, const BatchView& batch) {
  const std::array<LinearKind, 3> kinds{LinearKind::Q, LinearKind::K, LinearKind::V};
  const std::array<Act, 3> outs{q, k, v};
  const std::vector<const Fp8DeviceWeight*> ws =
      checked_fp8_weights(in, layer, kinds, outs, "qkv_rope_append_kv");
  FP8LLM_CHECK(q.rows == batch.num_tokens, "qkv_rope_append_kv: {} rows for {} tokens", q.rows,
               batch.num_tokens);
  // Only where one GEMM over the three weights leaves them side by side (passes of 9 to
  // kFp8JoinInPlaceMaxRows tokens); elsewhere the ops one after the other, with their fusions.
  if (ws.empty() || !fp8_.joins_rows(ws, in.rows))
    return Backend::qkv_rope_append_kv(in, layer, q, k, v, kv, batch);
  // The adapters' shrink reads only `in`: it runs beside the GEMM, on the adapters' stream.
  if (batch.lora) lora_shrink(in, layer, kinds, batch);
  std::optional<Fp8Linear::QuantizedInput> quantized = take_prepared(in, layer, kinds);
  if (!quantized) quantized = fp8_.quantize_group_input(ws, f32(in), in.rows, stream_.get());
  const auto joined =
      quantized ? fp8_.forward_group_joined(ws, *quantized, stream_.get()) : std::nullopt;
  FP8LLM_CHECK(joined.has_value(), "qkv_rope_append_kv: the joined GEMM did not take {} rows",
               in.rows);
  float* y = joined->y;
  std::array<float*, 3> ys{y, y + ws[0]->n, y + ws[0]->n + ws[1]->n};
  if (batch.lora) {
    // Each token's adapter added in the GEMM's output, where RoPE then reads it.
    CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), lora_join_.get()));
    const std::array<int64_t, 3> widths{q.cols, k.cols, v.cols};
    lora_.expand(in.cols, layer, kinds, batch, ys, widths, stream_.get(), joined->ld);
  }
  // RoPE and the cache write read the three from the GEMM's output; the copy out is saved.
  const QkvRows rows{.q = ys[0],
                     .k = ys[1],
                     .v = ys[2],
                     .q_ld = joined->ld,
                     .k_ld = joined->ld,
                     .v_ld = joined->ld,
                     .q_out = f32(q),
                     .k_out = nullptr};
  launch_rope_append_kv(rows, config_.num_heads, config_.num_kv_heads, config_.head_dim,
                        inv_freq_.as<float>(), paged(batch), paged(kv, layer), stream_.get());
}

void CudaBackend::attention(int64_t layer, Act q, const KvCacheView& kv, const BatchView& batch,
                            Act out) {
  FP8LLM_CHECK(q.rows == batch.num_tokens && q.cols == config_.num_heads * config_.head_dim,
               "attention: q [{}, {}] for {} tokens", q.rows, q.cols, batch.num_tokens);
  launch_paged_attention(f32(q), config_.num_heads, config_.num_kv_heads, config_.head_dim,
                         paged(batch), batch.num_decode_tokens, paged(kv, layer),
                         {decode_partial_.as<float>(), decode_counters_.as<int>()}, f32(out),
                         stream_.get(), prefill_attention_);
}

void CudaBackend::silu_mul(Act gate, Act up, Act out) {
  launch_silu_mul(f32(gate), f32(up), gate.rows * gate.cols, f32(out), stream_.get());
}

void CudaBackend::add(Act x, Act y) {
  FP8LLM_CHECK(x.rows == y.rows && x.cols == y.cols, "add: [{}, {}] + [{}, {}]", x.rows, x.cols,
               y.rows, y.cols);
  launch_add(f32(x), f32(y), x.rows * x.cols, stream_.get());
}

void CudaBackend::gather_rows(Act in, const BatchView& batch, Act out) {
  FP8LLM_CHECK(out.rows == batch.num_logit_rows && out.cols == in.cols,
               "gather_rows: [{}, {}] for {} rows of {}", out.rows, out.cols, batch.num_logit_rows,
               in.cols);
  launch_gather_rows(f32(in), in.cols, batch.logit_rows, out.rows, f32(out), stream_.get());
}

void CudaBackend::read(Act in, float* host_out) {
  const int64_t count = in.rows * in.cols;
  CUDA_CHECK(cudaMemcpyAsync(host_out, in.data, static_cast<size_t>(count) * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_.get()));
  stream_.synchronize();
}

void CudaBackend::reserve_lora(int slots, int64_t max_rank) {
  // Changes addresses a recorded pass would use: only before the first pass.
  FP8LLM_CHECK(graphs_.empty() && runs_.empty(), "lora: slots are reserved before the first pass");
  lora_.reserve(config_, slots, max_rank, limits_.max_tokens);
}

void CudaBackend::set_lora(int slot, const LoraAdapter* adapter) {
  lora_.set(slot, adapter, stream_.get());
}

void CudaBackend::lora(Act in, int64_t layer, LinearKind kind, const BatchView& batch, Act out) {
  // Both halves on the compute stream.
  FP8LLM_CHECK(in.rows == batch.num_tokens, "lora: [{}, {}] for {} tokens", in.rows, in.cols,
               batch.num_tokens);
  const std::span<const LinearKind> kinds(&kind, 1);
  lora_.shrink(f32(in), in.cols, layer, kinds, batch, stream_.get());
  expand_lora(in, layer, kinds, batch, std::span<const Act>(&out, 1));
}

void CudaBackend::lora_shrink(Act in, int64_t layer, std::span<const LinearKind> kinds,
                              const BatchView& batch) {
  FP8LLM_CHECK(in.rows == batch.num_tokens, "lora: [{}, {}] for {} tokens", in.rows, in.cols,
               batch.num_tokens);
  lora_fork_.record(stream_.get());
  CUDA_CHECK(cudaStreamWaitEvent(lora_stream_.get(), lora_fork_.get()));
  lora_.shrink(f32(in), in.cols, layer, kinds, batch, lora_stream_.get());
  lora_join_.record(lora_stream_.get());
}

void CudaBackend::lora_expand(Act in, int64_t layer, std::span<const LinearKind> kinds,
                              const BatchView& batch, std::span<const Act> outs) {
  CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), lora_join_.get()));
  expand_lora(in, layer, kinds, batch, outs);
}

void CudaBackend::expand_lora(Act in, int64_t layer, std::span<const LinearKind> kinds,
                              const BatchView& batch, std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size() && kinds.size() <= 3,
               "lora: {} projections for {} outputs", kinds.size(), outs.size());
  float* ys[3];
  int64_t widths[3];
  for (size_t i = 0; i < outs.size(); ++i) {
    FP8LLM_CHECK(outs[i].rows == in.rows, "lora: [{}, {}] -> [{}, {}]", in.rows, in.cols,
                 outs[i].rows, outs[i].cols);
    ys[i] = f32(outs[i]);
    widths[i] = outs[i].cols;
  }
  lora_.expand(in.cols, layer, kinds, batch, std::span<float* const>(ys, outs.size()),
               std::span<const int64_t>(widths, outs.size()), stream_.get());
}

void CudaBackend::linear_group_lora(Act in, int64_t layer, std::span<const LinearKind> kinds,
                                    const BatchView& batch, std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size() && !kinds.empty() && in.rows == batch.num_tokens,
               "lora: {} projections for {} outputs, [{}, {}] for {} tokens", kinds.size(),
               outs.size(), in.rows, in.cols, batch.num_tokens);
  const std::vector<const Fp8DeviceWeight*> ws = fp8_weights(layer, kinds);
  if (!ws.empty() && fp8_.takes_lora(ws, in.rows)) {
    std::vector<float*> ys;
    std::vector<int64_t> widths;
    for (size_t i = 0; i < outs.size(); ++i) {
      FP8LLM_CHECK(in.cols == ws[i]->k && outs[i].cols == ws[i]->n && outs[i].rows == in.rows,
                   "linear_group: shapes do not agree");
      ys.push_back(f32(outs[i]));
      widths.push_back(outs[i].cols);
    }
    if (const auto l = lora_.in_gemv(f32(in), in.cols, layer, kinds, batch, widths)) {
      if (const auto q = take_prepared(in, layer, kinds))
        return fp8_.forward_group_quantized(ws, *q, ys, stream_.get(), &*l);
      return fp8_.forward_group(ws, f32(in), in.rows, ys, stream_.get(), &*l);
    }
  }
  Backend::linear_group_lora(in, layer, kinds, batch, outs);
}

void CudaBackend::stage_lora(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors) {
  lora_.stage(slot, rank, factors);
}

void CudaBackend::commit_lora(int slot) {
  lora_.commit(slot, stream_.get());
}

int CudaBackend::recording_variant(const Batch& batch) const {
  int64_t longest = 0;
  for (const int64_t p : batch.positions) longest = std::max(longest, p + 1);
  return decode_ranges_bound(longest) == kDecodeShortSplits ? 0 : 1;
}

void CudaBackend::run_pass(int64_t key, const std::function<void()>& pass) {
  if (key < 0) return pass();
  const auto recorded = graphs_.find(key);
  if (recorded != graphs_.end()) return recorded->second.launch(stream_.get());
  // The first pass of a shape runs as it is (libraries set themselves up then); the second is
  // recorded.
  if (runs_[key]++ == 0) return pass();
  GraphCapture::begin(stream_.get());
  try {
    pass();
  } catch (...) {
    GraphCapture::abandon(stream_.get());
    throw;
  }
  GraphExec& graph =
      graphs_.emplace(key, GraphExec(GraphCapture::end(stream_.get()))).first->second;
  graph.launch(stream_.get());
}

void CudaBackend::forget_recorded_passes() {
  // A recorded pass may still be running on the stream.
  stream_.synchronize();
  graphs_.clear();
  runs_.clear();
}

}  // namespace fp8llm::cuda
