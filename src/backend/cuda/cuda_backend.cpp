#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "backend/cuda/kernels/filtered_sample.h"
#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/loading/device_sink.h"
#include "backend/cuda/loading/device_stream.h"
#include "backend/cuda/runtime/cublaslt_handle.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/graph.h"
#include "core/error.h"
#include "core/log.h"
#include "model/layer_members.h"
#include "model/rope_table.h"

namespace fp8llm {
namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

float* f32(Act a) {
  return static_cast<float*>(a.data);
}

std::string gib(uint64_t bytes) {
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1ull << 30));
}

int64_t context_of(const ModelConfig& c, const LoadOptions& options) {
  return options.max_context > 0 ? std::min(options.max_context, c.max_position_embeddings)
                                 : c.max_position_embeddings;
}

// Keys and values are cached in fp32, as the attention computes them (see model_kernels.h).
constexpr size_t kKvElementBytes = sizeof(float);

uint64_t kv_bytes(const ModelConfig& c, int64_t positions) {
  return 2ull * static_cast<uint64_t>(c.num_layers * positions * c.num_kv_heads * c.head_dim) *
         kKvElementBytes;
}

// Bytes of one forward pass's activations per token (the fp32 buffers LlamaModel allocates).
uint64_t activation_bytes_per_token(const ModelConfig& c) {
  const int64_t q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  return sizeof(float) * static_cast<uint64_t>(3 * c.hidden_size + 2 * q_dim + 2 * kv_dim +
                                               2 * c.intermediate_size + c.vocab_size);
}

cuda::Fp8Accumulation fp8_accumulation(Fp8Gemm gemm) {
  return gemm == Fp8Gemm::Fp32 ? cuda::Fp8Accumulation::Fp32 : cuda::Fp8Accumulation::TensorCore;
}

}  // namespace

CudaMemoryNeeds cuda_memory_needs(const LoadPlan& plan, const LoadOptions& options) {
  CudaMemoryNeeds n;
  n.weights = cuda::DeviceWeights::arena_bytes_for(plan);
  // A staged tensor (quantized, or converted from F16/F32) must fit one ring buffer; direct ones
  // are copied in chunks of a buffer.
  uint64_t largest_staged = 0;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.quantize || t.source.info->dtype != DType::BF16)
      largest_staged = std::max(largest_staged, t.source.info->nbytes);
  }
  // The streamer's defaults are its fastest measured setting (docs/PERFORMANCE.md).
  const cuda::DeviceStreamOptions defaults;
  n.ring_buffers = defaults.ring_buffers;
  n.buffer_bytes = std::max<size_t>(
      largest_staged, std::min<size_t>(defaults.buffer_bytes, plan.largest_tensor_bytes));
  n.buffer_bytes = std::max<size_t>(align_up(n.buffer_bytes), kAlign);
  n.staging = n.ring_buffers * n.buffer_bytes;
  n.kv_cache = kv_bytes(plan.config,
                        cuda::CudaBackend::initial_kv_positions(context_of(plan.config, options)));
  // cuBLASLt workspace, a prompt of 512 tokens of activations, quantized-activation scratch.
  n.workspace = cuda::kCublasLtWorkspaceBytes + 512 * activation_bytes_per_token(plan.config) * 2;
  return n;
}

void check_cuda_device(const LoadPlan& plan, const CudaMemoryNeeds& needs, int compute_capability,
                       uint64_t free_bytes, const std::string& device) {
  if (plan.scheme && compute_capability < 89) {
    fail(
        "--device cuda: --quantization fp8-{} needs FP8 tensor cores (compute capability 8.9 or "
        "newer: Ada, Hopper); {} has {}.{} (use --quantization none, or --device cpu)",
        fp8_scheme_name(*plan.scheme), device, compute_capability / 10, compute_capability % 10);
  }
  if (free_bytes < needs.total()) {
    fail(
        "--device cuda: loading needs {} of GPU memory ({} weights, {} staging, {} KV cache, {} "
        "workspace) but {} has {} free",
        gib(needs.total()), gib(needs.weights), gib(needs.staging), gib(needs.kv_cache),
        gib(needs.workspace), device, gib(free_bytes));
  }
}

CudaLoad load_cuda_backend(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline) {
  {
    // The driver's start and the context's creation: about 0.2 s in a process's first load, next
    // to nothing in its later ones.
    const Timeline::Step step(timeline, "CUDA start-up");
    FP8LLM_CHECK(cuda::device_available(),
                 "--device cuda: no CUDA device is available (use --device cpu)");
    CUDA_CHECK(cudaFree(nullptr));
  }
  std::optional<Timeline::Step> checking(std::in_place, timeline, "device check");
  const CudaMemoryNeeds needs = cuda_memory_needs(plan, options);
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  check_cuda_device(plan, needs, cuda::device_compute_capability(), free_bytes,
                    cuda::device_description());
  const uint64_t used_before = total_bytes - free_bytes;
  checking.reset();

  std::optional<Timeline::Step> arena(std::in_place, timeline, "weights arena");
  cuda::DeviceWeights weights(plan);
  arena.reset();
  cuda::DeviceSink sink(weights);
  cuda::DeviceStreamOptions stream_options;
  stream_options.ring_buffers = needs.ring_buffers;
  stream_options.buffer_bytes = needs.buffer_bytes;
  std::optional<Timeline::Step> streaming(std::in_place, timeline, "stream weights");
  const cuda::DeviceStreamStats streamed =
      cuda::stream_to_device(plan, sink, stream_options, options.progress);
  streaming.reset();
  {
    const Timeline::Step step(timeline, "device finish");
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  FP8LLM_CHECK(sink.tensors_done() == plan.tensors.size(),
               "--device cuda: {} of {} tensors were loaded", sink.tensors_done(),
               plan.tensors.size());
  std::optional<Timeline::Step> setup(std::in_place, timeline, "backend set-up");
  auto backend = std::make_unique<cuda::CudaBackend>(plan, options, std::move(weights));
  CUDA_CHECK(cudaDeviceSynchronize());
  setup.reset();
  if (stats) *stats = streamed.stream;

  CudaLoad load;
  load.resident_bytes = backend->weights().arena_bytes();
  // While streaming, the arena and the staging ring are alive (and the measured figure, taken as
  // the stream finishes, also holds what CUDA allocated for itself); the backend's KV cache block
  // and GEMM workspace are allocated after the ring is freed.
  const uint64_t after_streaming =
      kv_bytes(plan.config, backend->kv_allocated()) + cuda::kCublasLtWorkspaceBytes;
  const uint64_t allocated =
      load.resident_bytes + std::max<uint64_t>(streamed.staging_device_bytes, after_streaming);
  const uint64_t measured =
      sink.device_used_at_finish() > used_before ? sink.device_used_at_finish() - used_before : 0;
  load.peak_device_bytes = std::max(allocated, measured);
  log_info("cuda: {} weights on {}; peak device memory while loading {} (staging {})",
           gib(load.resident_bytes), cuda::device_description(), gib(load.peak_device_bytes),
           gib(streamed.staging_device_bytes));
  load.backend = std::move(backend);
  return load;
}

namespace cuda {

int64_t CudaBackend::initial_kv_positions(int64_t capacity) {
  return std::min<int64_t>(capacity, 1024);
}

CudaBackend::CudaBackend(const LoadPlan& plan, const LoadOptions& options, DeviceWeights weights)
    : config_(plan.config),
      weights_(std::move(weights)),
      fp8_(gemm_, fp8_accumulation(options.fp8_gemm)),
      capacity_(context_of(plan.config, options)) {
  const ModelConfig& c = config_;
  FP8LLM_CHECK(c.head_dim <= kAttentionMaxHeadDim && c.head_dim % 2 == 0,
               "--device cuda: head_dim {} is not supported (even, at most {})", c.head_dim,
               kAttentionMaxHeadDim);
  FP8LLM_CHECK(c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0,
               "--device cuda: {} heads do not group over {} key/value heads", c.num_heads,
               c.num_kv_heads);
  const RopeTable table(rope_params(c.rope), c.head_dim);
  inv_freq_ = to_device(table.inv_freq());
  attention_partial_ = DeviceBuffer(
      static_cast<size_t>(c.num_heads * kDecodeAttentionSplits * (c.head_dim + 2)) * sizeof(float));
  attention_counters_ = DeviceBuffer(static_cast<size_t>(c.num_heads) * sizeof(int));
  attention_counters_.fill_zero();
  grow_kv(initial_kv_positions(capacity_));
}

void CudaBackend::grow_kv(int64_t positions) {
  if (positions <= kv_allocated_) return;
  const int64_t target = std::min(capacity_, std::max(positions, 2 * kv_allocated_));
  const int64_t kv_dim = config_.num_kv_heads * config_.head_dim;
  const auto layer_bytes = [&](int64_t p) {
    return static_cast<size_t>(p * kv_dim) * kKvElementBytes;
  };
  DeviceBuffer k(layer_bytes(target) * static_cast<size_t>(config_.num_layers));
  DeviceBuffer v(layer_bytes(target) * static_cast<size_t>(config_.num_layers));
  if (kv_allocated_ > 0) {
    for (int64_t l = 0; l < config_.num_layers; ++l) {
      const size_t dst = layer_bytes(target) * static_cast<size_t>(l);
      const size_t src = layer_bytes(kv_allocated_) * static_cast<size_t>(l);
      CUDA_CHECK(cudaMemcpyAsync(k.as<std::byte>() + dst, k_cache_.as<std::byte>() + src,
                                 layer_bytes(kv_allocated_), cudaMemcpyDeviceToDevice, stream_));
      CUDA_CHECK(cudaMemcpyAsync(v.as<std::byte>() + dst, v_cache_.as<std::byte>() + src,
                                 layer_bytes(kv_allocated_), cudaMemcpyDeviceToDevice, stream_));
    }
    stream_.synchronize();  // the old blocks may be freed only after the copies
  }
  k_cache_ = std::move(k);
  v_cache_ = std::move(v);
  kv_allocated_ = target;
}

CudaBackend::GraphKey CudaBackend::graph_key() const {
  return {chunks_.empty() ? nullptr : chunks_.front().data(),
          chunks_.size(),
          fp8_.scratch(),
          bf16_input_.data(),
          k_cache_.data(),
          v_cache_.data(),
          kv_allocated_,
          ids_.data(),
          positions_.data()};
}

void CudaBackend::flush_linears() {
  if (pending_linears_.empty()) return;
  std::vector<const Fp8DeviceWeight*> ws;
  std::vector<float*> ys;
  for (const PendingLinear& p : pending_linears_) {
    ws.push_back(p.w);
    ys.push_back(p.y);
  }
  const float* x = std::exchange(pending_linear_input_, nullptr);
  pending_linears_.clear();
  if (ws.size() == 1) {
    fp8_.forward(*ws[0], x, 1, ys[0], stream_);
  } else {
    fp8_.forward_group(ws, x, ys, stream_);
  }
}

void CudaBackend::flush_add() {
  if (!pending_add_) return;
  const PendingAdd a = *std::exchange(pending_add_, std::nullopt);
  launch_add(a.x, a.y, a.count, stream_);
}

void CudaBackend::begin_forward(int64_t tokens, int64_t past) {
  GraphCapture::abandon(stream_);  // a pass that failed while being recorded
  mode_ = GraphMode::Eager;
  pending_add_.reset();
  pending_linears_.clear();
  pending_linear_input_ = nullptr;
  pending_ropes_.clear();
  FP8LLM_CHECK(tokens > 0 && past >= 0 && past + tokens <= capacity_,
               "forward: {} tokens at position {} do not fit the context of {} positions", tokens,
               past, capacity_);
  grow_kv(past + tokens);  // the cache never moves inside a pass
  const size_t needed =
      static_cast<size_t>(tokens) * activation_bytes_per_token(config_) + 16 * kAlign;
  if (chunks_.size() != 1 || chunks_.front().size() < needed) {
    stream_.synchronize();  // the previous pass may still read its activations
    chunks_.clear();
    chunks_.emplace_back(needed);
  }
  chunk_used_ = 0;

  const auto count = static_cast<size_t>(tokens);
  if (host_positions_.size() < count * sizeof(int64_t)) {
    stream_.synchronize();  // the previous pass may still copy from the old buffers
    host_positions_ = PinnedBuffer(count * sizeof(int64_t));
    host_ids_ = PinnedBuffer(count * sizeof(int32_t));
  }
  positions_.reserve_discard(count * sizeof(int64_t));
  ids_.reserve_discard(count * sizeof(int32_t));
  for (size_t i = 0; i < count; ++i)
    host_positions_.as<int64_t>()[i] = past + static_cast<int64_t>(i);

  // A one-token pass whose buffers are those of the previous one-token pass is recorded once and
  // replayed after (graph.h): the step's few hundred small kernels then cost one launch.
  if (tokens == 1) {
    const GraphKey key = graph_key();
    if (!decode_graph_.empty() && key == decode_graph_key_) {
      mode_ = GraphMode::Replay;
    } else if (last_eager_decode_key_ && *last_eager_decode_key_ == key) {
      decode_graph_ = GraphExec();
      GraphCapture::begin(stream_);
      mode_ = GraphMode::Capture;
    }
  }
  if (mode_ != GraphMode::Replay) {
    CUDA_CHECK(cudaMemcpyAsync(positions_.data(), host_positions_.data(), count * sizeof(int64_t),
                               cudaMemcpyHostToDevice, stream_));
  }
  pass_tokens_ = tokens;
}

Act CudaBackend::alloc(int64_t rows, int64_t cols) {
  FP8LLM_CHECK(!chunks_.empty(), "alloc before begin_forward");
  const size_t bytes = align_up(static_cast<size_t>(rows * cols) * sizeof(float));
  if (chunk_used_ + bytes > chunks_.back().size()) {
    chunks_.emplace_back(std::max<size_t>(bytes, size_t{1} << 20));
    chunk_used_ = 0;
  }
  Act a{chunks_.back().as<std::byte>() + chunk_used_, rows, cols};
  chunk_used_ += bytes;
  return a;
}

Act CudaBackend::rows(Act a, int64_t begin, int64_t count) {
  return {f32(a) + begin * a.cols, count, a.cols};
}

void CudaBackend::embed(std::span<const int32_t> ids, Act out) {
  const int64_t vocab = weights_.vocab_size();
  for (const int32_t id : ids) {
    FP8LLM_CHECK(id >= 0 && id < vocab, "token id {} is out of range (vocabulary of {})", id,
                 vocab);
  }
  FP8LLM_CHECK(static_cast<int64_t>(ids.size()) == pass_tokens_,
               "embed: {} ids in a pass of {} tokens", ids.size(), pass_tokens_);
  std::copy(ids.begin(), ids.end(), host_ids_.as<int32_t>());
  if (mode_ == GraphMode::Replay) return;
  flush_pending();
  CUDA_CHECK(cudaMemcpyAsync(ids_.data(), host_ids_.data(), ids.size_bytes(),
                             cudaMemcpyHostToDevice, stream_));
  launch_embed(weights_.embed(), ids_.as<int32_t>(), static_cast<int64_t>(ids.size()),
               weights_.hidden_size(), f32(out), stream_);
}

const __nv_bfloat16* CudaBackend::norm_weights(int64_t layer, NormKind kind) const {
  if (kind == NormKind::Final) return weights_.final_norm();
  return layer_norm(weights_.layer(layer), kind);
}

void CudaBackend::rms_norm(Act in, int64_t layer, NormKind kind, Act out) {
  const __nv_bfloat16* w = norm_weights(layer, kind);
  const int64_t dim =
      kind == NormKind::QNorm || kind == NormKind::KNorm ? config_.head_dim : config_.hidden_size;
  FP8LLM_CHECK(w != nullptr && in.cols % dim == 0, "rms_norm: {} columns for a norm of {}", in.cols,
               dim);
  if (mode_ == GraphMode::Replay) return;
  const auto eps = static_cast<float>(config_.rms_norm_eps);
  const int64_t rows = in.rows * (in.cols / dim);
  flush_linears();
  flush_ropes();
  if (pending_add_ && pending_add_->x == in.data && pending_add_->count == in.rows * in.cols &&
      out.data != in.data) {
    // The residual add just before this norm, fused into it.
    const PendingAdd a = *std::exchange(pending_add_, std::nullopt);
    launch_add_rms_norm(a.x, a.y, rows, dim, w, eps, f32(out), stream_);
    return;
  }
  flush_pending();
  launch_rms_norm(f32(in), rows, dim, w, eps, f32(out), stream_);
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
  if (mode_ == GraphMode::Replay) return;
  flush_add();
  flush_ropes();
  if (w.is_fp8() && in.rows == 1) {
    // Deferred: the next projections of the same input join it (flush_linears).
    const bool joins = !pending_linears_.empty() && pending_linear_input_ == f32(in) &&
                       pending_linears_.size() < static_cast<size_t>(kFp8GemvMaxGroup) &&
                       Fp8Linear::group_supports(*pending_linears_.front().w, w.fp8);
    if (!joins) flush_linears();
    pending_linear_input_ = f32(in);
    pending_linears_.push_back({&w.fp8, f32(out)});
    return;
  }
  flush_linears();
  if (w.is_fp8()) {
    fp8_.forward(w.fp8, f32(in), in.rows, f32(out), stream_);
  } else {
    // A bf16 weight multiplies bf16 inputs (the tensor cores' operand types), into fp32.
    const int64_t count = in.rows * in.cols;
    bf16_input_.reserve_discard(static_cast<size_t>(count) * sizeof(__nv_bfloat16));
    launch_to_bf16(DType::F32, in.data, count, bf16_input_.as<__nv_bfloat16>(), stream_);
    gemm_.gemm_bf16(bf16_input_.as<__nv_bfloat16>(), in.rows, w.w, w.n, w.k, w.bias, f32(out),
                    stream_);
  }
}

void CudaBackend::rope(Act x, int64_t heads, std::span<const int64_t> positions) {
  FP8LLM_CHECK(static_cast<int64_t>(positions.size()) == x.rows && x.rows == pass_tokens_ &&
                   x.cols == heads * config_.head_dim &&
                   std::equal(positions.begin(), positions.end(), host_positions_.as<int64_t>()),
               "rope: {} positions for [{}, {}] with {} heads in a pass of {} tokens",
               positions.size(), x.rows, x.cols, heads, pass_tokens_);
  if (mode_ == GraphMode::Replay) return;
  flush_add();
  flush_linears();
  // Deferred: rope of q then of k joins the cache append in attention (flush_ropes otherwise).
  if (pending_ropes_.size() == 2) flush_ropes();
  pending_ropes_.push_back({f32(x), x.rows, heads});
}

void CudaBackend::flush_ropes() {
  for (const PendingRope& r : pending_ropes_) {
    // The positions begin_forward uploaded (on the device: a recorded step replays anywhere).
    launch_rope(r.x, r.rows, r.heads, config_.head_dim, positions_.as<int64_t>(),
                inv_freq_.as<float>(), stream_);
  }
  pending_ropes_.clear();
}

void CudaBackend::attention(int64_t layer, Act q, Act k, Act v, int64_t past, Act out) {
  const ModelConfig& c = config_;
  const int64_t kv_dim = c.num_kv_heads * c.head_dim;
  const int64_t t = q.rows;
  FP8LLM_CHECK(past + t <= capacity_, "context of {} positions exceeded", capacity_);
  FP8LLM_CHECK(past <= cached_ || layer > 0, "attention: the cache holds fewer than {} positions",
               past);
  FP8LLM_CHECK(k.cols == kv_dim && v.cols == kv_dim && q.cols == c.num_heads * c.head_dim,
               "attention: q/k/v widths {}/{}/{} do not match the config", q.cols, k.cols, v.cols);
  FP8LLM_CHECK(
      t == pass_tokens_ && past == host_positions_.as<int64_t>()[0] && past + t <= kv_allocated_,
      "attention: {} tokens at position {} in a pass begun for {} at {}", t, past, pass_tokens_,
      host_positions_.as<int64_t>()[0]);
  if (layer == 0) cached_ = past + t;
  if (mode_ == GraphMode::Replay) return;
  const size_t layer_offset = static_cast<size_t>(layer * kv_allocated_ * kv_dim);
  float* kc = k_cache_.as<float>() + layer_offset;
  float* vc = v_cache_.as<float>() + layer_offset;
  const int64_t* positions = positions_.as<int64_t>();
  const bool ropes_of_q_and_k = pending_ropes_.size() == 2 && pending_ropes_[0].x == f32(q) &&
                                pending_ropes_[0].heads == c.num_heads &&
                                pending_ropes_[1].x == f32(k) &&
                                pending_ropes_[1].heads == c.num_kv_heads;
  if (ropes_of_q_and_k && !pending_add_ && pending_linears_.empty()) {
    pending_ropes_.clear();
    launch_rope_qk_append(f32(q), f32(k), f32(v), t, c.num_heads, c.num_kv_heads, c.head_dim,
                          positions, inv_freq_.as<float>(), kc, vc, stream_);
  } else {
    flush_pending();
    launch_kv_append(f32(k), f32(v), t, kv_dim, positions, kc, vc, stream_);
  }
  AttentionSplit split;
  if (t == 1) {
    // One query row: c.num_heads blocks cannot fill the GPU, so each head's keys are split.
    split = {kDecodeAttentionSplits, attention_partial_.as<float>(), attention_counters_.as<int>()};
  }
  launch_attention(f32(q), t, c.num_heads, c.num_kv_heads, c.head_dim, kc, vc, positions, f32(out),
                   stream_, split);
}

void CudaBackend::silu_mul(Act gate, Act up, Act out) {
  if (mode_ == GraphMode::Replay) return;
  flush_pending();
  launch_silu_mul(f32(gate), f32(up), gate.rows * gate.cols, f32(out), stream_);
}

void CudaBackend::add(Act x, Act y) {
  FP8LLM_CHECK(x.rows == y.rows && x.cols == y.cols, "add: [{}, {}] + [{}, {}]", x.rows, x.cols,
               y.rows, y.cols);
  if (mode_ == GraphMode::Replay) return;
  flush_pending();
  // Deferred: a norm of x that comes next runs as one kernel with it (launch_add_rms_norm).
  pending_add_ = PendingAdd{f32(x), f32(y), x.rows * x.cols};
}

CudaBackend::GraphMode CudaBackend::finish_pass() {
  flush_pending();
  const GraphMode mode = std::exchange(mode_, GraphMode::Eager);
  if (mode == GraphMode::Capture) {
    decode_graph_ = GraphExec(GraphCapture::end(stream_));
    decode_graph_key_ = graph_key();
  }
  if (mode != GraphMode::Eager) decode_graph_.launch(stream_);
  return mode;
}

void CudaBackend::pass_done(GraphMode mode) {
  stream_.synchronize();
  if (mode == GraphMode::Eager && pass_tokens_ == 1) last_eager_decode_key_ = graph_key();
}

void CudaBackend::read(Act in, float* host_out) {
  const GraphMode mode = finish_pass();
  const int64_t count = in.rows * in.cols;
  CUDA_CHECK(cudaMemcpyAsync(host_out, in.data, static_cast<size_t>(count) * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  pass_done(mode);
}

TopToken CudaBackend::top_token(Act logits) {
  FP8LLM_CHECK(logits.rows == 1, "top_token: {} rows, expected one", logits.rows);
  const GraphMode mode = finish_pass();
  ensure_token_buffers();
  auto* id = top_device_.as<int32_t>();
  launch_top_token(f32(logits), logits.cols, id, reinterpret_cast<float*>(id + 1), stream_);
  return fetch_token(mode);
}

TopToken CudaBackend::sample_token(Act logits, const SampleShape& shape, double uniform) {
  FP8LLM_CHECK(logits.rows == 1, "sample_token: {} rows, expected one", logits.rows);
  FP8LLM_CHECK(shape.temperature > 0.0f && uniform >= 0.0 && uniform < 1.0,
               "sample_token: temperature {} must be > 0 and uniform {} in [0, 1)",
               shape.temperature, uniform);
  const GraphMode mode = finish_pass();
  ensure_token_buffers();
  auto* id = top_device_.as<int32_t>();
  auto* logprob = reinterpret_cast<float*>(id + 1);
  if (shape.filtered()) {
    launch_filtered_sample(f32(logits), logits.cols,
                           {.temperature = shape.temperature,
                            .top_k = shape.top_k,
                            .top_p = shape.top_p,
                            .min_p = shape.min_p},
                           uniform, id, logprob, stream_);
  } else {
    launch_sample_token(f32(logits), logits.cols, shape.temperature, uniform, id, logprob, stream_);
  }
  return fetch_token(mode);
}

void CudaBackend::ensure_token_buffers() {
  if (top_device_.size() != 0) return;
  top_device_ = DeviceBuffer(2 * sizeof(float));
  top_host_ = PinnedBuffer(2 * sizeof(float));
}

TopToken CudaBackend::fetch_token(GraphMode mode) {
  CUDA_CHECK(cudaMemcpyAsync(top_host_.data(), top_device_.data(), 2 * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  pass_done(mode);
  TopToken t;
  std::memcpy(&t.id, top_host_.as<std::byte>(), sizeof(int32_t));
  std::memcpy(&t.logprob, top_host_.as<std::byte>() + sizeof(int32_t), sizeof(float));
  return t;
}

}  // namespace cuda
}  // namespace fp8llm
