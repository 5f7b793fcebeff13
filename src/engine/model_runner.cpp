#include "engine/model_runner.h"

#include <algorithm>

namespace fp8llm {

ModelRunner::ModelRunner(const LlamaModel& model, Backend& backend, Workspace& workspace,
                         KvStorage& kv, RunnerOptions options)
    : model_(model),
      backend_(backend),
      workspace_(workspace),
      kv_(&kv),
      block_size_(kv.view().spec.block_size),
      options_(std::move(options)) {}

void ModelRunner::set_kv(KvStorage* kv) {
  kv_ = kv;
  recorded_logits_.clear();
  backend_.forget_recorded_passes();
}

ModelRunner::Pass ModelRunner::run(const Schedule& schedule) {
  for (const BlockCopy& c : schedule.copies) kv_->copy_block(c.src, c.dst);
  Pass pass;
  batch_.clear();
  batch_.block_size = block_size();
  batch_.lora = options_.lora;
  bool decode_only = true;
  pass.row.assign(schedule.sequences.size(), -1);
  // Sequences of one token first (BatchView::num_decode_tokens): a backend may treat them apart,
  // and the same sequence then goes the same way whatever else is in the batch.
  for (const bool one_token : {true, false}) {
    for (size_t i = 0; i < schedule.sequences.size(); ++i) {
      const ScheduledSequence& s = schedule.sequences[i];
      if ((s.tokens == 1) != one_token) continue;
      const Sequence& seq = *s.seq;
      const int64_t end = seq.computed + s.tokens;
      const bool samples = end == seq.length();
      if (samples) pass.row[i] = static_cast<int32_t>(batch_.logit_rows.size());
      batch_.add_sequence(seq.tokens, seq.computed, end, seq.block_table,
                          samples ? Batch::Logits::Last : Batch::Logits::None, seq.lora_slot);
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
    key = *bucket;
    const std::vector<int32_t> padding_tokens{0};
    const std::vector<int32_t> padding_table{0};
    while (batch_.num_seqs() < key)
      batch_.add_sequence(padding_tokens, 0, 1, padding_table, Batch::Logits::Last);
    batch_.widen_block_tables(options_.max_blocks_per_seq);
  }
  const BatchView view = backend_.prepare(batch_);
  // A replayed recording does not call the pass again: its logits are where they were the first
  // time.
  backend_.run_pass(key, [&] {
    pass.logits = model_.forward(backend_, workspace_, kv_->view(), view);
    if (key >= 0) recorded_logits_[key] = pass.logits;
  });
  if (pass.logits.data == nullptr && key >= 0) pass.logits = recorded_logits_.at(key);
  return pass;
}

Act ModelRunner::run(Batch& batch) {
  batch.lora = options_.lora;
  const BatchView view = backend_.prepare(batch);
  return model_.forward(backend_, workspace_, kv_->view(), view);
}

}  // namespace fp8llm
