// Decides what runs in each step (continuous batching): the next token of every running sequence
// first, then chunks of prompts under a per-step token budget (chunked prefill), admitting waiting
// sequences while KV blocks and the sequence limit allow. When blocks run out, the newest running
// sequences are preempted: their blocks are released and they wait at the front of the queue, to
// be computed again from their tokens (what the prefix cache still holds is reused).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/sequence.h"
#include "kv/block_manager.h"

namespace fp8llm {

struct SchedulerConfig {
  int64_t max_batch_tokens = 4096;  // tokens in one step
  int64_t max_seqs = 256;           // sequences running at once (forks may exceed it briefly)
  // Rows of logits one step may compute (the backend's room for them): a row for each sequence
  // that draws a token, and one for each prompt position of a request asking for the prompt's
  // log-probabilities, whose prompt chunks are cut to fit.
  int64_t max_logit_rows = 256;
};

struct ScheduledSequence {
  Sequence* seq = nullptr;
  int64_t tokens = 0;  // run tokens [seq->computed, seq->computed + tokens)
};

struct Schedule {
  std::vector<ScheduledSequence> sequences;
  std::vector<BlockCopy> copies;  // copy-on-write, before the step's pass
  bool empty() const { return sequences.empty(); }
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, BlockManager& blocks) : config_(config), blocks_(blocks) {}

  const SchedulerConfig& config() const { return config_; }
  void add_waiting(Sequence* seq);
  // Sequences forked from a running one start running at once (they hold its blocks).
  void add_running(Sequence* seq);
  Schedule schedule();
  // Releases a sequence's blocks and drops it from the queues.
  void remove(Sequence* seq);

  int64_t running() const { return static_cast<int64_t>(running_.size()); }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }

 private:
  // Blocks for `tokens` more tokens of `seq`, preempting newer unscheduled sequences as needed.
  // False when `seq` itself had to be preempted.
  bool reserve(Sequence* seq, int64_t tokens, Schedule& out, const std::vector<Sequence*>& taken);
  // Gives a sequence's blocks back: it is computed from its first token again.
  void restart(Sequence* seq);
  void preempt(Sequence* seq);
  bool admit(Sequence* seq, int64_t& budget, int64_t& rows, Schedule& out);
  // A step runs at most max_seqs sequences (the n samples of a fork may make more run), and
  // computes at most max_logit_rows rows of logits (`rows` is what is left of them).
  bool full(const Schedule& out, int64_t rows) const;

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // in admission order
  int64_t preemptions_ = 0;
};

}  // namespace fp8llm
