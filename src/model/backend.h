// The ops a Llama-family forward pass needs, implemented once per device (CPU: the exact
// reference; CUDA: fast). The model (llama_model.h) is written only against this interface. A
// backend computes over the weights it holds; the KV cache (kv_cache.h), the activation memory
// (workspace.h), token picking (token_picker.h) and reading the weights (weight_store.h) are
// separate objects, and which tokens run is the scheduler's business (src/engine/).
//
// Fused ops are named: the model calls add_rms_norm, linear_group, rope_append_kv,
// qkv_rope_append_kv and the *_for forms of the norms and the gating, and a backend that does not
// fuse them gets the plain sequence of ops from the defaults below.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "model/act.h"
#include "model/batch.h"
#include "model/kv_cache.h"

namespace fp8llm {

// Which weight of a layer an op uses. The backend maps it to its own storage.
enum class LinearKind { Q, K, V, O, Gate, Up, Down, LmHead };
enum class NormKind { Input, PostAttention, QNorm, KNorm, Final };

struct LoraAdapter;
struct LoraDeviceFactor;

// The projections an activation feeds next: `kinds` of `layer`, through linear_group (or linear
// for one kind). `values_read`: whether anything else reads the activation's values (LoRA's
// shrink does); when not, a backend that hands those projections a quantized copy may leave the
// values themselves unwritten.
struct NextLinear {
  int64_t layer = 0;
  std::span<const LinearKind> kinds;
  bool values_read = true;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Makes `batch` readable by the ops (a copy into device memory on a GPU). The view is valid
  // until the next prepare().
  virtual BatchView prepare(const Batch& batch) = 0;

  // out[t] = embedding row of batch.token_ids[t].
  virtual void embed(const BatchView& batch, Act out) = 0;
  // RMSNorm of each row of `in` (or of each head_dim slice when `in.cols` is a multiple of the
  // norm's size, for per-head q/k norms); out may be in.
  virtual void rms_norm(Act in, int64_t layer, NormKind norm, Act out) = 0;
  // x += y; out = RMSNorm(x). The residual add and the norm after it (out may not alias x).
  virtual void add_rms_norm(Act x, Act y, int64_t layer, NormKind norm, Act out);
  // rms_norm, add_rms_norm and silu_mul whose `out` feeds the projections `next`: a backend may
  // prepare `out` for them in the same kernel (CUDA: quantized for their FP8 weights); the next
  // linear or linear_group over `out` with next's layer and kinds uses what was prepared, and
  // computes what it computes from `out` itself. By default the plain ops.
  virtual void rms_norm_for(Act in, int64_t layer, NormKind norm, Act out, NextLinear next);
  virtual void add_rms_norm_for(Act x, Act y, int64_t layer, NormKind norm, Act out,
                                NextLinear next);
  virtual void silu_mul_for(Act gate, Act up, Act out, NextLinear next);
  // out = in · W^T (+ bias); the weight is FP8 (activations quantized on the fly) or BF16.
  virtual void linear(Act in, int64_t layer, LinearKind kind, Act out) = 0;
  // Several projections of one input (q, k, v; gate, up), each as linear() computes it.
  virtual void linear_group(Act in, int64_t layer, std::span<const LinearKind> kinds,
                            std::span<const Act> outs);
  // The projections `kinds` of `in` as the model asks for them: linear_group_lora where the batch
  // has adapters, else linear for one kind and linear_group for several.
  void project(Act in, int64_t layer, std::span<const LinearKind> kinds, const BatchView& batch,
               std::span<const Act> outs);
  // Rotary embedding in place on x [tokens, heads * head_dim] at the batch's positions.
  virtual void rope(Act x, int64_t heads, const BatchView& batch) = 0;
  // Writes k, v [tokens, kv_heads * head_dim] into the layer's cache at the batch's slots.
  virtual void append_kv(int64_t layer, Act k, Act v, const KvCacheView& kv,
                         const BatchView& batch) = 0;
  // rope(q), rope(k), append_kv(k, v).
  virtual void rope_append_kv(int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                              const BatchView& batch);
  // project(in, {Q, K, V}, {q, k, v}), then rope_append_kv: for models without q/k norms between
  // the two, so that a backend may add the adapters to, rotate and store q, k and v where one GEMM
  // over the three weights wrote them. Afterwards q holds the rotated queries and the cache this
  // pass's keys and values; k and v may be left unwritten.
  virtual void qkv_rope_append_kv(Act in, int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                                  const BatchView& batch);
  // Causal attention of q [tokens, heads * head_dim]: token t over positions 0 .. positions[t] of
  // its sequence in the layer's cache (already holding this pass's keys and values).
  virtual void attention(int64_t layer, Act q, const KvCacheView& kv, const BatchView& batch,
                         Act out) = 0;
  // out = silu(gate) * up
  virtual void silu_mul(Act gate, Act up, Act out) = 0;
  // x += y
  virtual void add(Act x, Act y) = 0;
  // out[i] = in[batch.logit_rows[i]]
  virtual void gather_rows(Act in, const BatchView& batch, Act out) = 0;
  // Copies an activation into fp32 host memory (waits for the pass).
  virtual void read(Act in, float* host_out) = 0;

  // LoRA adapters (model/lora_weights.h). reserve_lora makes room for `slots` adapters of rank up
  // to `max_rank` once (a recorded pass keeps their addresses); set_lora puts an adapter into a
  // slot (nullptr empties it), between passes; lora adds to `out` the contribution of each token's
  // adapter (batch.token_lora: its slot, or -1 for none) to projection `kind` of `layer`.
  virtual void reserve_lora(int slots, int64_t max_rank);
  virtual void set_lora(int slot, const LoraAdapter* adapter);
  virtual void lora(Act in, int64_t layer, LinearKind kind, const BatchView& batch, Act out);
  // lora() for projections that share their input (q, k, v; gate, up), in two halves around the
  // group's base projection, so a backend can run the part that reads only `in` beside it:
  // lora_shrink before linear/linear_group, lora_expand after (with the same arguments and the
  // outputs). One group at a time. By default the shrink does nothing and the expand calls lora()
  // for each projection.
  virtual void lora_shrink(Act in, int64_t layer, std::span<const LinearKind> kinds,
                           const BatchView& batch);
  virtual void lora_expand(Act in, int64_t layer, std::span<const LinearKind> kinds,
                           const BatchView& batch, std::span<const Act> outs);
  // The projections of `kinds` (linear for one, linear_group for several) with each token's
  // adapter added: by default lora_shrink, the projection, lora_expand. A backend may do it all in
  // fewer kernels.
  virtual void linear_group_lora(Act in, int64_t layer, std::span<const LinearKind> kinds,
                                 const BatchView& batch, std::span<const Act> outs);
  // New factors for the adapter in `slot` from this backend's device memory (same rank and
  // modules): stage_lora checks and copies them aside, an Error naming the tensor (and the slot
  // unchanged) when a value is not finite; commit_lora then makes them the slot's, between
  // passes. A backend that reads adapters only from host memory refuses.
  virtual void stage_lora(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors);
  virtual void commit_lora(int slot);

  // Tensor parallelism (model/shard_plan.h), on a backend holding one rank's shard; the model
  // calls these only when there are several ranks. There, linear() of a row-parallel projection
  // (o, down) leaves this rank's partial sum without the bias, and the rank's lm_head gives its
  // vocabulary slice of the logits. all_reduce sums x over the ranks (the embedding: each rank
  // has its vocabulary range, zeros elsewhere); reduce_partial sums a row-parallel projection's
  // partial outputs over the ranks and adds its bias; all_gather sets out[t, r * local.cols + c]
  // to rank r's local[t, c] on every rank.
  virtual void all_reduce(Act x);
  virtual void reduce_partial(Act partial, int64_t layer, LinearKind kind);
  virtual void all_gather(Act local, Act out);

  // Passes of one recorded shape that the backend runs differently, 0 or 1 (e.g. by the length of
  // their sequences): the runner records each variant under its own key.
  virtual int recording_variant(const Batch& batch) const {
    (void)batch;
    return 0;
  }
  // Runs `pass`, a forward pass whose inputs prepare() placed. A backend may record it under
  // `key` (a shape that recurs, e.g. decode steps of one batch size) and replay the recording
  // the next time the same key comes, instead of issuing every op again; key < 0 never records.
  virtual void run_pass(int64_t key, const std::function<void()>& pass) {
    (void)key;
    pass();
  }
  // Drops every recorded pass: what they recorded (the KV cache's or the weights' addresses) has
  // moved. The next passes of each key run and are recorded again.
  virtual void forget_recorded_passes() {}
};

}  // namespace fp8llm
