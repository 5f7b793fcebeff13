#include "engine/scheduler.h"

#include <algorithm>

namespace fp8llm {
namespace {

// The most of `tokens` (from seq->computed on) whose logits rows fit in `rows`; logit_rows grows
// with the tokens, by at most one a token.
int64_t fit_rows(const Sequence& seq, int64_t tokens, int64_t rows) {
  if (seq.logit_rows(tokens) <= rows) return tokens;
  int64_t lo = 0, hi = tokens;  // logit_rows(lo) fits, logit_rows(hi) does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (seq.logit_rows(mid) <= rows ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

void Scheduler::add_waiting(Sequence* seq) {
  waiting_.push_back(seq);
}

void Scheduler::add_running(Sequence* seq) {
  running_.push_back(seq);
}

void Scheduler::remove(Sequence* seq) {
  blocks_.release(seq->block_table);
  std::erase(running_, seq);
  std::erase(waiting_, seq);
}

void Scheduler::restart(Sequence* seq) {
  blocks_.release(seq->block_table);
  seq->computed = 0;
  seq->prefix = PrefixChain::from(seq->prefix.root);
}

void Scheduler::preempt(Sequence* seq) {
  restart(seq);
  std::erase(running_, seq);
  waiting_.push_front(seq);
  ++preemptions_;
}

bool Scheduler::reserve(Sequence* seq, int64_t tokens, Schedule& out,
                        const std::vector<Sequence*>& taken) {
  const int64_t end = seq->computed + tokens;
  while (blocks_.blocks_needed(seq->block_table, seq->computed, end) > blocks_.free_blocks()) {
    // The newest running sequence that this step has not scheduled yet gives its blocks up.
    Sequence* victim = nullptr;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      if (std::find(taken.begin(), taken.end(), *it) == taken.end()) {
        victim = *it;
        break;
      }
    }
    if (victim == nullptr) return false;  // only scheduled ones left: `seq` cannot be among them
    preempt(victim);
    if (victim == seq) return false;
  }
  const std::vector<BlockCopy> copies = blocks_.prepare_write(seq->block_table, seq->computed, end);
  out.copies.insert(out.copies.end(), copies.begin(), copies.end());
  return true;
}

bool Scheduler::admit(Sequence* seq, int64_t& budget, int64_t& rows, Schedule& out) {
  // A sequence that starts from nothing reuses what the prefix cache holds of its tokens; at least
  // its last token is computed, for the logits of the next one. One that scores its prompt
  // computes all of it.
  int64_t cached = 0;
  const bool looks_up = seq->computed == 0 && seq->block_table.empty() &&
                        seq->request->spec.params.prompt_logprobs < 0;
  if (looks_up) {
    const std::vector<int32_t> hit =
        blocks_.match_prefix(seq->tokens, seq->length() - 1, seq->prefix.root);
    blocks_.share(seq->block_table, hit, seq->prefix);
    cached = static_cast<int64_t>(hit.size()) * blocks_.block_size();
    seq->computed = cached;
  }
  const int64_t tokens = fit_rows(*seq, std::min(seq->pending(), budget), rows);
  if (tokens == 0 || blocks_.blocks_needed(seq->block_table, seq->computed,
                                           seq->computed + tokens) > blocks_.free_blocks()) {
    restart(seq);  // undo the prefix hit; it is looked up again later
    return false;
  }
  if (seq->generated() == 0) seq->request->cached_prompt_tokens = cached;
  if (looks_up) blocks_.count_prefix_lookup(seq->length() - 1, cached);
  const std::vector<BlockCopy> copies =
      blocks_.prepare_write(seq->block_table, seq->computed, seq->computed + tokens);
  out.copies.insert(out.copies.end(), copies.begin(), copies.end());
  rows -= seq->logit_rows(tokens);
  out.sequences.push_back({seq, tokens});
  budget -= tokens;
  return true;
}

bool Scheduler::full(const Schedule& out, int64_t rows) const {
  return static_cast<int64_t>(out.sequences.size()) >= config_.max_seqs || rows <= 0;
}

Schedule Scheduler::schedule() {
  Schedule out;
  int64_t budget = config_.max_batch_tokens;
  int64_t rows = config_.max_logit_rows;
  std::vector<Sequence*> taken;
  const int64_t preemptions_before = preemptions_;
  // Running sequences: those decoding first (one token each), then prompt chunks, in admission
  // order. A snapshot, since preemption changes the list.
  for (const bool decoding : {true, false}) {
    const std::vector<Sequence*> snapshot = running_;
    for (Sequence* seq : snapshot) {
      if (budget == 0 || full(out, rows)) break;
      if (std::find(running_.begin(), running_.end(), seq) == running_.end()) continue;
      if ((seq->pending() == 1) != decoding) continue;
      const int64_t tokens = fit_rows(*seq, std::min(seq->pending(), budget), rows);
      if (tokens == 0 || !reserve(seq, tokens, out, taken)) continue;
      rows -= seq->logit_rows(tokens);
      out.sequences.push_back({seq, tokens});
      taken.push_back(seq);
      budget -= tokens;
    }
  }
  // Waiting sequences, first come first served, unless this step had to preempt (there is no
  // room for more then, and a sequence just preempted would take back what it gave up).
  if (preemptions_ != preemptions_before) return out;
  while (!waiting_.empty() && budget > 0 && !full(out, rows) &&
         static_cast<int64_t>(running_.size()) < config_.max_seqs) {
    Sequence* seq = waiting_.front();
    if (!admit(seq, budget, rows, out)) break;
    waiting_.pop_front();
    running_.push_back(seq);
    taken.push_back(seq);
  }
  return out;
}

}  // namespace fp8llm
