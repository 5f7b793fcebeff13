// One pass over a random paged KV cache, for the attention kernel tests: sequences given by the
// positions of this pass's tokens, their blocks shuffled over the cache, every slot holding a
// random key and value row in the chosen element type (e4m3 rows with random per-row scales), a
// random q, and the device arrays a pass hands the kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"

namespace fp8llm::test {

struct PassSeq {
  int64_t first, last;  // positions of this pass's tokens; keys 0 .. last
};

struct PagedAttentionFixture {
  using DeviceBuffer = cuda::DeviceBuffer;
  int64_t heads, kv_heads, head_dim, tokens = 0, block = 16, max_blocks = 0;
  std::vector<int64_t> positions;
  std::vector<int32_t> token_seq;
  DeviceBuffer k_cache, v_cache, k_scale, v_scale, q, d_pos, d_slots, d_seq, d_tables, partial,
      counters;
  cuda::PagedBatch batch;
  cuda::PagedKv kv;

  PagedAttentionFixture(int64_t h, int64_t kvh, int64_t d, KvCacheDtype dtype,
                        const std::vector<PassSeq>& seqs, uint32_t seed)
      : heads(h), kv_heads(kvh), head_dim(d) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const PassSeq& s : seqs) max_blocks = std::max(max_blocks, s.last / block + 1);
    std::vector<int32_t> free_blocks(static_cast<size_t>(max_blocks) * seqs.size());
    std::iota(free_blocks.begin(), free_blocks.end(), 0);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
    std::vector<int32_t> tables(seqs.size() * static_cast<size_t>(max_blocks), 0);
    std::vector<int64_t> slots;
    size_t next = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int64_t b = 0; b <= seqs[s].last / block; ++b)
        tables[s * max_blocks + b] = free_blocks[next++];
      for (int64_t p = seqs[s].first; p <= seqs[s].last; ++p) {
        positions.push_back(p);
        slots.push_back(tables[s * max_blocks + p / block] * block + p % block);
        token_seq.push_back(static_cast<int32_t>(s));
      }
    }
    tokens = static_cast<int64_t>(positions.size());
    const int64_t cache_slots = static_cast<int64_t>(free_blocks.size()) * block;
    const auto cache_elems = static_cast<size_t>(cache_slots * kv_heads * head_dim);
    std::vector<float> k_values(cache_elems), v_values(cache_elems);
    for (auto& x : k_values) x = normal(rng);
    for (auto& x : v_values) x = normal(rng);
    std::vector<float> ks(static_cast<size_t>(cache_slots * kv_heads), 1.0f), vs = ks;
    if (dtype == KvCacheDtype::F32) {
      k_cache = cuda::to_device(k_values);
      v_cache = cuda::to_device(v_values);
    } else if (dtype == KvCacheDtype::BF16) {
      std::vector<uint16_t> kb(cache_elems), vb(cache_elems);
      for (size_t i = 0; i < cache_elems; ++i) {
        kb[i] = f32_to_bf16(k_values[i]);
        vb[i] = f32_to_bf16(v_values[i]);
      }
      k_cache = cuda::to_device(kb);
      v_cache = cuda::to_device(vb);
    } else {
      std::vector<uint8_t> kq(cache_elems), vq(cache_elems);
      for (size_t i = 0; i < cache_elems; ++i) {
        kq[i] = f32_to_e4m3(std::clamp(k_values[i] * 100.0f, -448.0f, 448.0f));
        vq[i] = f32_to_e4m3(std::clamp(v_values[i] * 100.0f, -448.0f, 448.0f));
      }
      for (auto& s : ks) s = 0.01f * (1.0f + 0.5f * std::fabs(normal(rng)));
      for (auto& s : vs) s = 0.01f * (1.0f + 0.5f * std::fabs(normal(rng)));
      k_cache = cuda::to_device(kq);
      v_cache = cuda::to_device(vq);
    }
    k_scale = cuda::to_device(ks);
    v_scale = cuda::to_device(vs);
    std::vector<float> q_values(static_cast<size_t>(tokens * heads * head_dim));
    for (auto& x : q_values) x = normal(rng);
    q = cuda::to_device(q_values);
    d_pos = cuda::to_device(positions);
    d_slots = cuda::to_device(slots);
    d_seq = cuda::to_device(token_seq);
    d_tables = cuda::to_device(tables);
    partial = DeviceBuffer(static_cast<size_t>(tokens * heads * cuda::kDecodeMaxSplits *
                                               (head_dim + 2)) *
                           sizeof(float));
    counters = DeviceBuffer(static_cast<size_t>(tokens * heads) * sizeof(int));
    counters.fill_zero();
    batch = cuda::PagedBatch{.tokens = tokens,
                       .positions = d_pos.as<int64_t>(),
                       .slots = d_slots.as<int64_t>(),
                       .token_seq = d_seq.as<int32_t>(),
                       .block_tables = d_tables.as<int32_t>(),
                       .max_blocks = max_blocks};
    const bool fp8 = dtype == KvCacheDtype::Fp8;
    kv = cuda::PagedKv{.dtype = dtype,
                 .k = k_cache.data(),
                 .v = v_cache.data(),
                 .k_scale = fp8 ? k_scale.as<float>() : nullptr,
                 .v_scale = fp8 ? v_scale.as<float>() : nullptr,
                 .block_size = block};
  }

  cuda::DecodeScratch scratch() { return {partial.as<float>(), counters.as<int>()}; }
  size_t out_elems() const { return static_cast<size_t>(tokens * heads * head_dim); }
};

}  // namespace fp8llm::test
