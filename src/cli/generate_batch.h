// `fp8llm generate --prompts-file IN.jsonl --out OUT.jsonl`: vLLM's offline LLM.generate. Each
// input line is a JSON object with `prompt` (text) or `prompt_token_ids`, and vLLM's sampling
// fields (serving/sampling_json.h); each output line, in input order, is {"prompt_token_ids",
// "outputs": [{"index", "token_ids", "text", "logprobs", "finish_reason"}]}. Every line is checked
// before the model loads; the output appears whole or not at all.
#pragma once

#include <string>

#include "cli/load_options.h"

namespace fp8llm::cli {

struct BatchFlags {
  std::string prompts_file;
  std::string out;  // "-": stdout
};

void run_generate_batch(const EngineFlags& engine, const SamplingFlags& defaults,
                        const BatchFlags& batch);

}  // namespace fp8llm::cli
