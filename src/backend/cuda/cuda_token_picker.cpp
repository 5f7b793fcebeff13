#include "backend/cuda/cuda_token_picker.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cuda/kernels/filtered_sample.h"
#include "backend/cuda/kernels/token_pick.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"

namespace fp8llm::cuda {
namespace {

// Offsets of the arrays of `n` picks in the buffers: rows, temperatures, uniforms, ids, logprobs.
struct Layout {
  size_t rows, temps, uniforms, ids, logprobs, in_bytes, bytes;
  explicit Layout(size_t n) {
    uniforms = 0;
    rows = n * sizeof(double);
    temps = rows + n * sizeof(int32_t);
    in_bytes = temps + n * sizeof(float);
    ids = (in_bytes + 255) / 256 * 256;
    logprobs = ids + n * sizeof(int32_t);
    bytes = logprobs + n * sizeof(float);
  }
};

}  // namespace

void CudaTokenPicker::reserve(size_t picks) {
  if (picks <= capacity_) return;
  capacity_ = std::max<size_t>(picks, 2 * capacity_);
  const Layout l(capacity_);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  device_ = DeviceBuffer(l.bytes);
  host_ = PinnedBuffer(l.bytes);
}

void CudaTokenPicker::reserve_scratch(size_t bytes) {
  if (bytes <= scratch_.size()) return;
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // a launch before may still read the old one
  scratch_ = DeviceBuffer(bytes);
}

void CudaTokenPicker::pick(Act logits, std::span<const PickSpec> specs, std::span<TopToken> out) {
  FP8LLM_CHECK(specs.size() == out.size(), "pick: {} specs for {} results", specs.size(),
               out.size());
  if (specs.empty()) return;
  // Greedy picks first, then draws at a temperature, then filtered draws: each group contiguous.
  std::vector<size_t> order;
  for (int group = 0; group < 3; ++group) {
    for (size_t i = 0; i < specs.size(); ++i) {
      const SampleShape& s = specs[i].shape;
      const int g = s.greedy() ? 0 : s.filtered() ? 2 : 1;
      if (g == group) order.push_back(i);
    }
  }
  const size_t n = order.size();
  reserve(n);
  const Layout l(capacity_);
  std::byte* h = host_.as<std::byte>();
  std::byte* d = device_.as<std::byte>();
  auto* rows = reinterpret_cast<int32_t*>(h + l.rows);
  auto* temps = reinterpret_cast<float*>(h + l.temps);
  auto* uniforms = reinterpret_cast<double*>(h + l.uniforms);
  size_t greedy = 0, tempered = 0;
  for (size_t j = 0; j < n; ++j) {
    const PickSpec& s = specs[order[j]];
    FP8LLM_CHECK(s.row >= 0 && s.row < logits.rows, "pick: row {} of {}", s.row, logits.rows);
    FP8LLM_CHECK(s.shape.greedy() || (s.uniform >= 0.0 && s.uniform < 1.0),
                 "pick: uniform {} outside [0, 1)", s.uniform);
    rows[j] = s.row;
    temps[j] = s.shape.temperature;
    uniforms[j] = s.uniform;
    greedy += s.shape.greedy();
    tempered += !s.shape.greedy() && !s.shape.filtered();
  }
  const int64_t vocab = logits.cols;
  // The greedy launches and the draws' run one after the other on the stream: one scratch serves.
  reserve_scratch(
      token_pick_scratch_bytes(vocab, static_cast<int64_t>(std::max(greedy, tempered))));
  CUDA_CHECK(cudaMemcpyAsync(d, h, l.in_bytes, cudaMemcpyHostToDevice, stream_));
  const auto* d_rows = reinterpret_cast<const int32_t*>(d + l.rows);
  auto* d_ids = reinterpret_cast<int32_t*>(d + l.ids);
  auto* d_logprobs = reinterpret_cast<float*>(d + l.logprobs);
  const float* x = static_cast<const float*>(logits.data);
  launch_top_tokens(x, vocab, d_rows, static_cast<int64_t>(greedy), d_ids, d_logprobs,
                    scratch_.data(), stream_);
  launch_sample_tokens(
      x, vocab, d_rows + greedy, reinterpret_cast<const float*>(d + l.temps) + greedy,
      reinterpret_cast<const double*>(d + l.uniforms) + greedy, static_cast<int64_t>(tempered),
      d_ids + greedy, d_logprobs + greedy, scratch_.data(), stream_);
  for (size_t j = greedy + tempered; j < n; ++j) {
    const SampleShape& s = specs[order[j]].shape;
    launch_filtered_sample(
        x + static_cast<int64_t>(rows[j]) * vocab, vocab,
        {.temperature = s.temperature, .top_k = s.top_k, .top_p = s.top_p, .min_p = s.min_p},
        uniforms[j], d_ids + j, d_logprobs + j, stream_);
  }
  CUDA_CHECK(
      cudaMemcpyAsync(h + l.ids, d + l.ids, l.bytes - l.ids, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  const auto* ids = reinterpret_cast<const int32_t*>(h + l.ids);
  const auto* logprobs = reinterpret_cast<const float*>(h + l.logprobs);
  for (size_t j = 0; j < n; ++j) out[order[j]] = {ids[j], logprobs[j]};
}

}  // namespace fp8llm::cuda
