#include "serving/sampling_json.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "engine/sampler.h"

namespace fp8llm {
namespace {

using nlohmann::json;

double number(const json& v, const std::string& where, const char* field) {
  FP8LLM_CHECK(v.is_number(), "{}: {}: expected a number, got {}", where, field, v.dump());
  const double d = v.get<double>();
  FP8LLM_CHECK(std::isfinite(d), "{}: {}: expected a finite number", where, field);
  return d;
}

int64_t integer(const json& v, const std::string& where, const char* field, int64_t lo,
                int64_t hi) {
  FP8LLM_CHECK(v.is_number_integer() ||
                   (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()),
               "{}: {}: expected an integer, got {}", where, field, v.dump());
  const double d = v.get<double>();
  FP8LLM_CHECK(d >= static_cast<double>(lo) && d <= static_cast<double>(hi),
               "{}: {}: {} is out of range [{}, {}]", where, field, v.dump(), lo, hi);
  return static_cast<int64_t>(d);
}

float real(const json& v, const std::string& where, const char* field) {
  const double d = number(v, where, field);
  FP8LLM_CHECK(std::fabs(d) <= std::numeric_limits<float>::max(), "{}: {}: {} is out of range",
               where, field, v.dump());
  return static_cast<float>(d);
}

}  // namespace

const std::vector<std::string>& sampling_fields() {
  static const std::vector<std::string> fields = {"n",
                                                  "max_tokens",
                                                  "min_tokens",
                                                  "temperature",
                                                  "top_p",
                                                  "top_k",
                                                  "min_p",
                                                  "seed",
                                                  "stop",
                                                  "stop_token_ids",
                                                  "logit_bias",
                                                  "ignore_eos",
                                                  "logprobs",
                                                  "prompt_logprobs",
                                                  "presence_penalty",
                                                  "frequency_penalty",
                                                  "repetition_penalty",
                                                  "include_stop_str_in_output",
                                                  "skip_special_tokens"};
  return fields;
}

TextSampling parse_sampling(const json& obj, const std::string& where,
                            const SamplingParams& defaults) {
  FP8LLM_CHECK(obj.is_object(), "{}: expected a JSON object", where);
  TextSampling t;
  SamplingParams& p = t.params;
  p = defaults;
  p.seed.reset();
  const auto has = [&](const char* f) { return obj.contains(f) && !obj[f].is_null(); };
  if (has("n")) p.n = static_cast<int>(integer(obj["n"], where, "n", 1, 1024));
  if (has("max_tokens"))
    p.max_tokens = static_cast<int>(integer(obj["max_tokens"], where, "max_tokens", 1, INT32_MAX));
  if (has("min_tokens"))
    p.min_tokens = static_cast<int>(integer(obj["min_tokens"], where, "min_tokens", 0, INT32_MAX));
  if (has("temperature")) p.temperature = real(obj["temperature"], where, "temperature");
  if (has("top_p")) p.top_p = real(obj["top_p"], where, "top_p");
  if (has("top_k"))
    p.top_k = static_cast<int>(integer(obj["top_k"], where, "top_k", -1, INT32_MAX));
  if (has("min_p")) p.min_p = real(obj["min_p"], where, "min_p");
  if (has("seed")) {
    const json& s = obj["seed"];
    FP8LLM_CHECK(s.is_number_integer(), "{}: seed: expected an integer, got {}", where, s.dump());
    p.seed = s.is_number_unsigned() ? s.get<uint64_t>() : static_cast<uint64_t>(s.get<int64_t>());
  }
  if (has("presence_penalty"))
    p.presence_penalty = real(obj["presence_penalty"], where, "presence_penalty");
  if (has("frequency_penalty"))
    p.frequency_penalty = real(obj["frequency_penalty"], where, "frequency_penalty");
  if (has("repetition_penalty"))
    p.repetition_penalty = real(obj["repetition_penalty"], where, "repetition_penalty");
  const auto flag = [&](const char* f, bool& out) {
    if (!has(f)) return;
    FP8LLM_CHECK(obj[f].is_boolean(), "{}: {}: expected true or false", where, f);
    out = obj[f].get<bool>();
  };
  flag("ignore_eos", p.ignore_eos);
  flag("include_stop_str_in_output", t.include_stop_str_in_output);
  flag("skip_special_tokens", t.skip_special_tokens);
  if (has("logprobs")) {
    const json& l = obj["logprobs"];
    p.logprobs = static_cast<int>(integer(l, where, "logprobs", 0, kMaxLogprobs));
  }
  if (has("prompt_logprobs")) {
    const json& l = obj["prompt_logprobs"];
    p.prompt_logprobs = static_cast<int>(integer(l, where, "prompt_logprobs", 0, kMaxLogprobs));
  }
  if (has("stop_token_ids")) {
    const json& ids = obj["stop_token_ids"];
    FP8LLM_CHECK(ids.is_array(), "{}: stop_token_ids: expected a list of token ids", where);
    for (const json& id : ids)
      p.stop_token_ids.push_back(
          static_cast<int32_t>(integer(id, where, "stop_token_ids", 0, INT32_MAX)));
  }
  if (has("logit_bias")) {
    // OpenAI's form: token ids (as the object's keys) to biases.
    const json& b = obj["logit_bias"];
    FP8LLM_CHECK(b.is_object(), "{}: logit_bias: expected an object of token ids to biases", where);
    FP8LLM_CHECK(b.size() <= 1024, "{}: logit_bias: at most 1024 tokens (got {})", where, b.size());
    for (const auto& [key, value] : b.items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      FP8LLM_CHECK(
          ec == std::errc() && end == key.data() + key.size() && id >= 0 && id <= INT32_MAX,
          "{}: logit_bias: '{}' is not a token id", where, key.substr(0, 32));
      p.logit_bias.emplace_back(static_cast<int32_t>(id), real(value, where, "logit_bias"));
    }
  }
  if (has("stop")) {
    const json& s = obj["stop"];
    if (s.is_string()) {
      t.stop.push_back(s.get<std::string>());
    } else {
      FP8LLM_CHECK(s.is_array(), "{}: stop: expected a string or a list of strings", where);
      for (const json& x : s) {
        FP8LLM_CHECK(x.is_string(), "{}: stop: expected a string or a list of strings", where);
        t.stop.push_back(x.get<std::string>());
      }
    }
    FP8LLM_CHECK(t.stop.size() <= 16, "{}: stop: at most 16 stop strings (got {})", where,
                 t.stop.size());
    for (const std::string& x : t.stop)
      FP8LLM_CHECK(!x.empty() && x.size() <= 256,
                   "{}: stop: a stop string must have 1 to 256 bytes", where);
  }
  try {
    check_sampling_params(p);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
  return t;
}

}  // namespace fp8llm
