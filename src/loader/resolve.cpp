#include "loader/resolve.h"

#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/load_plan.h"
#include "loader/quantization_config.h"
#include "loader/quantization_request.h"
#include "loader/quantize_checkpoint.h"
#include "loader/registry.h"
#include "loader/sha256.h"

namespace fp8llm {
namespace fs = std::filesystem;

namespace {

fs::path default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "fp8llm";
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".cache" / "fp8llm";
}

std::string mode_name(Fp8Scheme s) {
  return std::string(to_string(quantization_of(s)));
}

Resolution done(LoadSource source, fs::path dir, std::optional<Fp8Scheme> scheme,
                std::string reason) {
  log_info("{}", reason);
  return {source, std::move(dir), scheme, std::move(reason)};
}

}  // namespace

Resolution resolve_load(const ResolveRequest& r) {
  const std::string dir = r.model_dir.string();
  // A quantization config names the mode; `why_config` carries its mapping into the load line.
  Quantization quantization = r.quantization;
  // names the request in a warning
  std::string asked = fmt::format("--quantization {}", to_string(r.quantization));
  std::string why_config;
  if (!r.quantization_config.empty()) {
    const QuantizationRequest q = parse_quantization_request(r.quantization_config);
    quantization = quantization_with_request(r.quantization, q);
    asked =
        fmt::format("--quantization-config ({}, i.e. {})", q.description, to_string(quantization));
    why_config =
        fmt::format(" (--quantization-config: {} -> {})", q.description, to_string(quantization));
  }
  const bool is_auto = quantization == Quantization::Auto;
  std::optional<Fp8Scheme> requested;
  if (!is_auto) requested = scheme_of(quantization);
  const ModelConfig config = load_model_config(r.model_dir);

  if (config.quantization_config) {
    const PrequantConfig pq = parse_quantization_config(*config.quantization_config,
                                                        (r.model_dir / "config.json").string());
    // Before saying it loads as stored: a BF16 checkpoint under an FP8 config would not.
    check_prequantized_weights(Checkpoint::open(r.model_dir), pq);
    if (!is_auto && requested != pq.scheme) {
      log_warning("load: {} ignored: {} is already FP8 ({}, i.e. {}); it is not quantized again",
                  asked, dir, pq.description, mode_name(pq.scheme));
    }
    return done(LoadSource::AsStored, r.model_dir, std::nullopt,
                fmt::format("load: {} is already FP8 ({}): loading as is{}", dir, pq.description,
                            why_config));
  }
  if (!is_auto && !requested) {
    return done(LoadSource::Unquantized, r.model_dir, std::nullopt,
                fmt::format("load: {}: --quantization none: loading the {} weights unquantized",
                            dir, config.dtype.empty() ? "checkpoint" : config.dtype));
  }
  const Fp8Scheme scheme = requested.value_or(Fp8Scheme::Block);
  const std::string mode = mode_name(scheme);
  const std::string why_mode =
      is_auto ? " (auto: fp8-block, the finer scales, for a checkpoint that is not FP8)" : "";
  const fs::path registry = r.registry.empty() ? default_registry_path() : r.registry;
  // auto takes a registered copy of either mode, fp8-block first.
  std::vector<Fp8Scheme> registered_modes = {scheme};
  if (is_auto) registered_modes.push_back(Fp8Scheme::Row);
  for (const Fp8Scheme s : registered_modes) {
    const std::string copy_mode = mode_name(s);
    if (auto copy = find_registered_copy(registry, r.model_dir, copy_mode)) {
      return done(
          LoadSource::Registered, *copy, std::nullopt,
          fmt::format("load: {} has a registered {} copy at {} (registry {}): loading it as is{}{}",
                      dir, copy_mode, copy->string(), registry.string(),
                      is_auto ? " (auto: a registered copy, fp8-block first)" : "", why_config));
    }
  }
  if (!r.offline) {
    return done(LoadSource::OnTheFly, r.model_dir, scheme,
                fmt::format("load: {} is not FP8 and has no registered {} copy (registry {}): "
                            "quantizing to {} on the fly{}{}",
                            dir, mode, registry.string(), mode, why_mode, why_config));
  }
  const fs::path cache = r.cache_dir.empty() ? default_cache_dir() : r.cache_dir;
  const std::string key = sha256_hex(fs::weakly_canonical(fs::absolute(r.model_dir)).string() +
                                     "\n" + config_sha256(r.model_dir))
                              .substr(0, 16);
  const fs::path cached =
      cache / fmt::format("{}-{}-{}", r.model_dir.filename().string(), key, mode);
  if (fs::is_directory(cached)) {
    return done(LoadSource::Cached, cached, std::nullopt,
                fmt::format("load: {}: --offline: loading the cached {} copy {}{}{}", dir, mode,
                            cached.string(), why_mode, why_config));
  }
  fs::create_directories(cache);
  quantize_checkpoint(r.model_dir, scheme, cached);
  return done(LoadSource::Cached, cached, std::nullopt,
              fmt::format("load: {}: --offline: quantized once to {} into the cache {}, loading "
                          "it{}{}",
                          dir, mode, cached.string(), why_mode, why_config));
}

}  // namespace fp8llm
