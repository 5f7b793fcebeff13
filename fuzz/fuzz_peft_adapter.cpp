// Feeds arbitrary adapters to the PEFT reader (src/lora/peft_adapter.h) for the tiny test model:
// adapter_config.json's text and a list of named tensors, as a directory on disk or a training
// loop's state dict hands them over. They may only ever throw fp8llm::Error; anything else (a
// crash, a sanitizer report, another exception, a hang) is a bug. An accepted adapter must be
// one the engine can apply: a positive rank, a finite scale, one module per (layer, projection)
// in order, factors of the model's shapes with finite bf16 values; and peft_layout, the check
// run before device tensors are read, must accept exactly what parse_peft_adapter accepts when
// the values are finite.
//
// Input: the config's text, a line "%%", then one tensor a line: "name<TAB>dtype<TAB>d0,d1,..
// <TAB>fill", fill being '0' (zeros), '1' (small values), 'n' (NaN) or 'i' (infinity). Shapes
// beyond 2^20 elements are skipped (the model's factors are far smaller).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "formats/hf_config.h"
#include "lora/peft_adapter.h"

namespace {

using namespace fp8llm;

void check(bool ok) {
  if (!ok) std::abort();
}

const ModelConfig& tiny_config() {
  static const ModelConfig config = load_model_config(FP8LLM_FUZZ_MODEL_DIR);
  return config;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t from = 0;
  while (true) {
    const size_t at = text.find(sep, from);
    parts.push_back(text.substr(from, at == std::string_view::npos ? at : at - from));
    if (at == std::string_view::npos) return parts;
    from = at + 1;
  }
}

// One element of `fill`'s kind, stored as `dtype`.
void store(DType dtype, std::byte* at, char fill, size_t i) {
  float x = 0.0f;
  if (fill == '1') x = 0.01f * static_cast<float>(static_cast<int>(i % 17) - 8);
  if (fill == 'n') x = std::numeric_limits<float>::quiet_NaN();
  if (fill == 'i') x = std::numeric_limits<float>::infinity();
  switch (dtype) {
    case DType::F32:
      std::memcpy(at, &x, 4);
      break;
    case DType::BF16: {
      const uint16_t b = f32_to_bf16(x);
      std::memcpy(at, &b, 2);
      break;
    }
    case DType::F16: {
      const uint16_t h = f32_to_f16(x);
      std::memcpy(at, &h, 2);
      break;
    }
    default:
      std::memset(at, static_cast<int>(i & 0xff), dtype_size(dtype));
  }
}

struct Parsed {
  std::string config;
  std::vector<std::pair<std::string, HostTensor>> tensors;
  bool usable = true;
};

Parsed parse_input(std::string_view text) {
  Parsed p;
  const size_t cut = text.find("\n%%\n");
  p.config = std::string(text.substr(0, cut));
  if (cut == std::string_view::npos) return p;
  for (std::string_view line : split(text.substr(cut + 4), '\n')) {
    const std::vector<std::string_view> f = split(line, '\t');
    if (f.size() != 4) continue;
    const std::optional<DType> dtype = dtype_from_name(f[1]);
    if (!dtype) continue;
    Shape shape;
    int64_t elems = 1;
    for (std::string_view d : split(f[2], ',')) {
      if (d.empty() || d.size() > 7) return {p.config, {}, false};
      int64_t v = 0;
      for (char c : d) {
        if (c < '0' || c > '9') return {p.config, {}, false};
        v = v * 10 + (c - '0');
      }
      shape.push_back(v);
      elems *= std::max<int64_t>(v, 1);
      if (elems > (int64_t{1} << 20)) return {p.config, {}, false};
    }
    HostTensor t(*dtype, shape);
    const size_t size = dtype_size(*dtype);
    for (size_t i = 0; i * size < t.bytes.size(); ++i)
      store(*dtype, t.bytes.data() + i * size, f[3].empty() ? '0' : f[3][0], i);
    p.tensors.emplace_back(std::string(f[0]), std::move(t));
  }
  return p;
}

void check_adapter(const LoraAdapter& a, const ModelConfig& c) {
  check(a.rank > 0 && std::isfinite(a.scale));
  for (size_t i = 0; i < a.modules.size(); ++i) {
    const LoraModule& m = a.modules[i];
    check(m.layer >= 0 && m.layer < c.num_layers);
    if (i > 0) {
      const LoraModule& prev = a.modules[i - 1];
      check(prev.layer < m.layer || (prev.layer == m.layer && prev.kind < m.kind));
    }
    const ProjectionShape s = projection_shape(c, m.kind);
    check(m.a.size() == static_cast<size_t>(a.rank * s.in));
    check(m.b.size() == static_cast<size_t>(s.out * a.rank));
    for (uint16_t x : m.a) check(std::isfinite(bf16_to_f32(x)));
    for (uint16_t x : m.b) check(std::isfinite(bf16_to_f32(x)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Parsed p = parse_input(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!p.usable) return 0;
  const ModelConfig& c = tiny_config();
  std::vector<std::pair<std::string, TensorView>> views;
  bool finite = true;
  for (const auto& [name, t] : p.tensors) {
    views.emplace_back(name, t.view());
    if (!t.bytes.empty() &&
        (t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16)) {
      // Every element of a tensor shares its fill; the first says which.
      const TensorView v = t.view();
      const float first = v.dtype == DType::F32    ? v.as<float>()[0]
                          : v.dtype == DType::BF16 ? bf16_to_f32(v.as<uint16_t>()[0])
                                                   : f16_to_f32(v.as<uint16_t>()[0]);
      finite = finite && std::isfinite(first);
    }
  }
  bool layout_ok = false;
  try {
    const PeftLayout layout = peft_layout(c, p.config, views, "fuzz");
    layout_ok = true;
    check(layout.rank > 0 && std::isfinite(layout.scale));
  } catch (const Error&) {
  }
  try {
    const LoraAdapter a = parse_peft_adapter(c, p.config, views, "fuzz");
    check(layout_ok);
    check_adapter(a, c);
  } catch (const Error&) {
    check(!layout_ok || !finite);
  }
  return 0;
}
