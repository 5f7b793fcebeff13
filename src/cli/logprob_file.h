// The file that `fp8llm perplexity --save-logits` writes and `--baseline-logits` reads: the
// log-probabilities behind every scored position, in scoring order, as safetensors:
//   targets    I32 [P]     the token scored at each position
//   positions  I32 [P]     its index in the tokenized text
//   logprobs   F32 [P, V]  log-softmax of the logits that predict it (F32: KL divergences of
//                          1e-4 and below need more than BF16's 8 bits)
// and metadata naming the model, mode, text and windowing, so that a baseline made under other
// conditions is refused with a message saying which.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/safetensors.h"

namespace fp8llm::cli {

// What a run scores, to be written or matched against a baseline.
struct ScoredPositions {
  std::vector<int32_t> targets;
  std::vector<int32_t> positions;
  int64_t vocab = 0;
  int64_t context = 0;
  int64_t stride = 0;
};

class LogprobWriter {
 public:
  // Checks that `path` can be replaced (absent or a regular file, in an existing directory)
  // before anything long starts; errors name `flag`.
  static void check_target(const std::filesystem::path& path, const std::string& flag);

  // Writes to a temporary file next to `path`; the file appears when finish() succeeds.
  LogprobWriter(std::filesystem::path path, const ScoredPositions& scored,
                std::map<std::string, std::string> metadata);
  // The next position's log-probabilities (vocab values).
  void write_row(std::span<const float> logprobs);
  void finish();

 private:
  std::filesystem::path path_;
  int64_t vocab_;
  SafetensorsWriter writer_;
};

class BaselineLogprobs {
 public:
  // Opens `path` and checks it against this run: the same windowing, positions, targets and
  // vocabulary. Errors start with "--baseline-logits".
  static BaselineLogprobs open(const std::filesystem::path& path, const ScoredPositions& scored);

  std::span<const float> row(int64_t i) const;
  const std::map<std::string, std::string>& metadata() const { return file_->metadata(); }
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  std::shared_ptr<SafetensorsFile> file_;
  const float* logprobs_ = nullptr;
  int64_t vocab_ = 0;
};

}  // namespace fp8llm::cli
