#include "engine/model_runner.h"

#include <algorithm>

#include "core/error.h"
#include "model/lora_shard.h"

namespace fp8llm {

ModelRunner::ModelRunner(const LlamaModel& model, Backend& backend, Workspace& workspace,
                         KvStorage& kv, RunnerOptions options)
    : model_(model),
      ranks_{{&backend, &workspace, &kv}},
      block_size_(kv.view().spec.block_size),
      options_(std::move(options)) {}

ModelRunner::ModelRunner(const LlamaModel& model, std::vector<RankPart> ranks,
                         const ShardPlan& shards, RankThreads& threads,
                         CollectiveGroup& collectives, RunnerOptions options)
    : model_(model),
      ranks_(std::move(ranks)),
      shards_(&shards),
      threads_(&threads),
      collectives_(&collectives),
      block_size_(ranks_.at(0).kv->view().spec.block_size),
      options_(std::move(options)) {
  FP8LLM_CHECK(static_cast<int>(ranks_.size()) == threads.ranks() &&
                   static_cast<int>(ranks_.size()) == collectives.ranks() &&
                   static_cast<int>(ranks_.size()) == model.dims().ranks,
               "model runner: {} ranks, {} threads, {} in the collectives, a model of {}",
               ranks_.size(), threads.ranks(), collectives.ranks(), model.dims().ranks);
}

void ModelRunner::reserve_lora(int slots, int64_t max_rank) {
  for (RankPart& r : ranks_) r.backend->reserve_lora(slots, max_rank);
}

void ModelRunner::set_lora(int slot, const LoraAdapter* adapter) {
  if (shards_ == nullptr || adapter == nullptr) {
    for (RankPart& r : ranks_) r.backend->set_lora(slot, adapter);
    return;
  }
  for (size_t r = 0; r < ranks_.size(); ++r) {
    const LoraAdapter part = shard_lora(*adapter, *shards_, static_cast<int>(r));
    ranks_[r].backend->set_lora(slot, &part);
  }
}

void ModelRunner::stage_lora(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors) {
  FP8LLM_CHECK(ranks_.size() == 1,
               "lora: factors on the device are taken by an engine of one rank (this one has {}); "
               "hand them over in host memory",
               ranks_.size());
  ranks_[0].backend->stage_lora(slot, rank, factors);
}

void ModelRunner::commit_lora(int slot) {
  for (RankPart& r : ranks_) r.backend->commit_lora(slot);
}

Act ModelRunner::forward(int64_t key, const Batch& batch) {
  std::vector<BatchView> views;
  for (const RankPart& r : ranks_) views.push_back(r.backend->prepare(batch));
  Act logits;
  const auto pass_of = [&](int rank) {
    const RankPart& part = ranks_[static_cast<size_t>(rank)];
    // A replayed recording does not call the pass again: its logits are where they were the
    // first time.
    part.backend->run_pass(key, [&] {
      const Act out = model_.forward(*part.backend, *part.workspace, part.kv->view(),
                                     views[static_cast<size_t>(rank)]);
      if (rank != 0) return;
      logits = out;
      if (key >= 0) recorded_logits_[key] = out;
    });
  };
  if (ranks_.size() == 1) {
    pass_of(0);
  } else {
    try {
      threads_->run(pass_of, [this] { collectives_->abort(); });
    } catch (...) {
      collectives_->reset();  // every rank has left: the next step may use them again
      throw;
    }
  }
  if (logits.data == nullptr && key >= 0) logits = recorded_logits_.at(key);
  return logits;
}

void ModelRunner::set_kv(const std::vector<KvStorage*>& kv) {
  FP8LLM_CHECK(kv.size() == ranks_.size(), "model runner: {} KV caches for {} ranks", kv.size(),
               ranks_.size());
  for (size_t r = 0; r < ranks_.size(); ++r) {
    ranks_[r].kv = kv[r];
    ranks_[r].backend->forget_recorded_passes();
  }
  recorded_logits_.clear();
}

ModelRunner::Pass ModelRunner::run(const Schedule& schedule) {
  for (const BlockCopy& c : schedule.copies) {
    for (const RankPart& r : ranks_) r.kv->copy_block(c.src, c.dst);
  }
  Pass pass;
  batch_.clear();
  batch_.block_size = block_size();
  batch_.lora = options_.lora;
  bool decode_only = true;
  pass.row.assign(schedule.sequences.size(), -1);
  pass.scored.assign(schedule.sequences.size(), {});
  // Sequences of one token first (BatchView::num_decode_tokens): a backend may treat them apart,
  // and the same sequence then goes the same way whatever else is in the batch.
  for (const bool one_token : {true, false}) {
    for (size_t i = 0; i < schedule.sequences.size(); ++i) {
      const ScheduledSequence& s = schedule.sequences[i];
      if ((s.tokens == 1) != one_token) continue;
      const Sequence& seq = *s.seq;
      const int64_t end = seq.computed + s.tokens;
      const bool samples = end == seq.length();
      const std::pair<int64_t, int64_t> scored = seq.prompt_positions(s.tokens);
      const auto first_row = static_cast<int32_t>(batch_.logit_rows.size());
      pass.scored[i] = {first_row, scored.first, scored.second - scored.first};
      // The scored positions come before the last: their rows, then the drawing row.
      if (samples) pass.row[i] = first_row + static_cast<int32_t>(pass.scored[i].count);
      batch_.add_sequence(seq.tokens, seq.computed, end, seq.block_table,
                          samples ? Batch::Logits::Last : Batch::Logits::None, seq.lora_slot,
                          scored);
      decode_only = decode_only && s.tokens == 1 && samples;
    }
  }
  // A decode step the backend records: padded with rows that write to block 0 (never handed out)
  // and whose logits nobody reads, and with block tables of the recorded width.
  const auto n = static_cast<int64_t>(schedule.sequences.size());
  const auto& sizes = options_.recorded_batch_sizes;
  const auto bucket = std::lower_bound(sizes.begin(), sizes.end(), n);
  int64_t key = -1;
  if (decode_only && bucket != sizes.end() && batch_.max_blocks <= options_.max_blocks_per_seq) {
    const std::vector<int32_t> padding_tokens{0};
    const std::vector<int32_t> padding_table{0};
    while (batch_.num_seqs() < *bucket)
      batch_.add_sequence(padding_tokens, 0, 1, padding_table, Batch::Logits::Last);
    batch_.widen_block_tables(options_.max_blocks_per_seq);
    key = 2 * *bucket + ranks_[0].backend->recording_variant(batch_);
  }
  pass.logits = forward(key, batch_);
  return pass;
}

Act ModelRunner::run(Batch& batch) {
  batch.lora = options_.lora;
  return forward(-1, batch);
}

}  // namespace fp8llm
