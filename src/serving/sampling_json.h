// Sampling parameters from JSON, under vLLM's SamplingParams names (which the OpenAI API shares):
// n, max_tokens, min_tokens, temperature, top_p, top_k, min_p, seed, stop, stop_token_ids,
// ignore_eos, logprobs, prompt_logprobs, presence_penalty, frequency_penalty,
// repetition_penalty, include_stop_str_in_output, skip_special_tokens. Used by `fp8llm generate
// --prompts-file` and the HTTP server. Every error names the field: "<where>: <field>: ...".
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "fp8llm/sampling.h"

namespace fp8llm {

struct TextSampling {
  SamplingParams params;
  std::vector<std::string> stop;            // stop strings, matched on the decoded text
  bool include_stop_str_in_output = false;  // a stop string found stays in the text
  bool skip_special_tokens = true;          // special tokens add no text
};

// Reads the fields above from `obj` over `defaults`; other fields are left for the caller (it
// decides which are errors). Types and ranges are checked (check_sampling_params); a missing seed
// means a random one.
TextSampling parse_sampling(const nlohmann::json& obj, const std::string& where,
                            const SamplingParams& defaults);

// The fields parse_sampling reads.
const std::vector<std::string>& sampling_fields();

}  // namespace fp8llm
