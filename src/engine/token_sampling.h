// The tokens of a step: each sequence that reached its last token draws the next from its row of
// logits. Draws that depend on the logits alone are picked where the logits are (a TokenPicker,
// when the backend has one); the others (penalties, which need the history) and the top-k
// log-probabilities read the row into host memory and use the sequence's Sampler there.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/sequence.h"
#include "model/backend.h"
#include "model/token_picker.h"

namespace fp8llm {

struct SampleTarget {
  Sequence* seq = nullptr;
  int32_t row = 0;  // of the logits
};

struct SampledStep {
  int32_t id = 0;
  TokenLogprob logprob;  // `top` filled when the request asked for it
};

// `picker` may be null (every draw on the host). `eos`: the model's end-of-sequence ids, which a
// sample short of its min_tokens never draws (nor its stop_token_ids): such draws are the host's.
std::vector<SampledStep> sample_tokens(Backend& backend, TokenPicker* picker, Act logits,
                                       std::span<const SampleTarget> targets,
                                       std::span<const int32_t> eos = {});

}  // namespace fp8llm
