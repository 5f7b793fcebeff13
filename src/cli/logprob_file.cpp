#include "cli/logprob_file.h"

#include <algorithm>
#include <cstring>
#include <system_error>

#include "core/error.h"

namespace fp8llm::cli {
namespace {

constexpr const char* kBaselineFlag = "--baseline-logits";

// An existing path that is not a regular file (a directory, a link, a device) is never replaced:
// the rename would put a file where something else was.
void check_replaceable(const std::filesystem::path& path, const std::string& flag) {
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(path, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    fail("{} {}: exists and is not a regular file; it is not replaced", flag, path.string());
}

TensorView checked_view(const SafetensorsFile& file, const std::string& name, DType dtype,
                        const Shape& shape) {
  const TensorInfo* info = file.find(name);
  FP8LLM_CHECK(info, "{} {}: no tensor '{}' (not a file written by --save-logits)", kBaselineFlag,
               file.path().string(), name);
  FP8LLM_CHECK(info->dtype == dtype, "{} {}: tensor '{}' is {}, expected {}", kBaselineFlag,
               file.path().string(), name, dtype_name(info->dtype), dtype_name(dtype));
  FP8LLM_CHECK(info->shape == shape,
               "{} {}: tensor '{}' has shape {}; this run needs {} (the same --file, --context, "
               "--stride and model vocabulary)",
               kBaselineFlag, file.path().string(), name, shape_str(info->shape), shape_str(shape));
  return file.view(*info);
}

std::string metadata_or(const std::map<std::string, std::string>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

}  // namespace

void LogprobWriter::check_target(const std::filesystem::path& path, const std::string& flag) {
  check_replaceable(path, flag);
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code ec;
  FP8LLM_CHECK(std::filesystem::is_directory(dir, ec), "{} {}: directory {} does not exist", flag,
               path.string(), dir.string());
}

LogprobWriter::LogprobWriter(std::filesystem::path path, const ScoredPositions& scored,
                             std::map<std::string, std::string> metadata)
    : path_(std::move(path)), vocab_(scored.vocab), writer_(path_, std::move(metadata)) {
  const auto n = static_cast<int64_t>(scored.targets.size());
  writer_.declare("targets", DType::I32, {n});
  writer_.declare("positions", DType::I32, {n});
  writer_.declare("logprobs", DType::F32, {n, scored.vocab});
  writer_.write(std::as_bytes(std::span(scored.targets)));
  writer_.write(std::as_bytes(std::span(scored.positions)));
}

void LogprobWriter::write_row(std::span<const float> logprobs) {
  FP8LLM_CHECK(static_cast<int64_t>(logprobs.size()) == vocab_, "{}: a row of {} values, not {}",
               path_.string(), logprobs.size(), vocab_);
  writer_.write(std::as_bytes(logprobs));
}

void LogprobWriter::finish() {
  // Checked again: something may have been put there while the run went on.
  check_replaceable(path_, "--save-logits");
  writer_.finish();
}

BaselineLogprobs BaselineLogprobs::open(const std::filesystem::path& path,
                                        const ScoredPositions& scored) {
  BaselineLogprobs b;
  try {
    b.file_ = SafetensorsFile::open(path);
  } catch (const Error& e) {
    fail("{} {}", kBaselineFlag, e.what());
  }
  const auto& meta = b.file_->metadata();
  const std::string context = metadata_or(meta, "context"), stride = metadata_or(meta, "stride");
  if (!context.empty() && !stride.empty() &&
      (context != std::to_string(scored.context) || stride != std::to_string(scored.stride))) {
    fail("{} {}: written with --context {} --stride {}; this run uses --context {} --stride {}",
         kBaselineFlag, path.string(), context, stride, scored.context, scored.stride);
  }
  const auto n = static_cast<int64_t>(scored.targets.size());
  const TensorView targets = checked_view(*b.file_, "targets", DType::I32, {n});
  const TensorView positions = checked_view(*b.file_, "positions", DType::I32, {n});
  const TensorView logprobs = checked_view(*b.file_, "logprobs", DType::F32, {n, scored.vocab});
  const auto* t = targets.as<int32_t>();
  const auto* p = positions.as<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    FP8LLM_CHECK(p[i] == scored.positions[i] && t[i] == scored.targets[i],
                 "{} {}: scored position {} is token {} at {}; this run has token {} at {} (a "
                 "different text or tokenizer)",
                 kBaselineFlag, path.string(), i, t[i], p[i], scored.targets[i],
                 scored.positions[i]);
  }
  b.logprobs_ = logprobs.as<float>();
  b.vocab_ = scored.vocab;
  return b;
}

std::span<const float> BaselineLogprobs::row(int64_t i) const {
  return {logprobs_ + i * vocab_, static_cast<size_t>(vocab_)};
}

}  // namespace fp8llm::cli
