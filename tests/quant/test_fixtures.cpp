// The quantizer and the FP8 linear layer against the reference files made by PyTorch:
// whole checkpoints quantized byte for byte, and one layer's activations and outputs.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "backend/cpu/linear.h"
#include "core/dtype.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "quant/quantizer.h"
#include "test_util.h"

namespace fp8llm {
namespace {

// The decoder linear projections: the only tensors the FP8 schemes quantize.
bool is_decoder_projection(const std::string& name) {
  auto ends_with = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (name.rfind("model.layers.", 0) != 0) return false;
  for (const char* p : {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                        ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
                        ".mlp.gate_proj.weight", ".mlp.up_proj.weight", ".mlp.down_proj.weight"}) {
    if (ends_with(p)) return true;
  }
  return false;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// Index of the first differing byte, for the failure message.
size_t first_difference(const TensorView& a, const TensorView& b) {
  const size_t n = std::min(a.nbytes, b.nbytes);
  for (size_t i = 0; i < n; ++i) {
    if (a.data[i] != b.data[i]) return i;
  }
  return n;
}

struct FixtureCase {
  const char* model;
  Fp8Scheme scheme;
};

class QuantizedCheckpoint : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(QuantizedCheckpoint, MatchesTheReferenceByteForByte) {
  const auto [model, scheme] = GetParam();
  const Checkpoint ckpt = Checkpoint::open(test::data_path(model));
  const auto expected =
      SafetensorsFile::open(test::data_path(std::string(model) + "/expected_fp8_" +
                                            std::string(fp8_scheme_name(scheme)) + ".safetensors"));

  // Every checkpoint tensor is in the expected file: quantized (with its scale) or as it was.
  std::map<std::string, QuantizedTensor> quantized;
  int64_t projections = 0;
  for (const CheckpointTensor& t : ckpt.tensors()) {
    const std::string& name = t.info->name;
    const TensorInfo* want = expected->find(name);
    ASSERT_NE(want, nullptr) << name << " missing from the expected file";
    if (!is_decoder_projection(name)) {
      EXPECT_TRUE(same_bytes(t.file->view(*t.info), expected->view(*want)))
          << name << " should be an unchanged copy";
      continue;
    }
    ++projections;
    QuantizedTensor q = quantize_weight(scheme, t.file->view(*t.info), name);
    const TensorView want_q = expected->view(*want);
    ASSERT_EQ(want_q.dtype, DType::F8_E4M3) << name;
    EXPECT_TRUE(same_bytes(q.q.view(), want_q))
        << name << ": first differing byte " << first_difference(q.q.view(), want_q);
    const std::string scale_name = weight_scale_name(scheme, name);
    const TensorInfo* want_scale = expected->find(scale_name);
    ASSERT_NE(want_scale, nullptr) << scale_name;
    const TensorView want_s = expected->view(*want_scale);
    ASSERT_EQ(want_s.dtype, DType::F32) << scale_name;
    EXPECT_TRUE(same_bytes(q.scale.view(), want_s))
        << scale_name << ": first differing byte " << first_difference(q.scale.view(), want_s);
    quantized.emplace(name, std::move(q));
  }
  EXPECT_GT(projections, 0);
  // And the expected file holds nothing else.
  EXPECT_EQ(expected->tensors().size(), ckpt.tensors().size() + quantized.size());
  for (const TensorInfo& info : expected->tensors()) {
    const bool known = ckpt.find(info.name) != nullptr;
    const std::string suffix = scheme == Fp8Scheme::Row ? "_scale" : "_scale_inv";
    const bool is_scale = info.name.size() > suffix.size() && info.name.ends_with(suffix) &&
                          quantized.count(info.name.substr(0, info.name.size() - suffix.size()));
    EXPECT_TRUE(known || is_scale) << info.name << " is not explained by the checkpoint";
  }
  std::cout << model << " " << fp8_scheme_name(scheme) << ": " << quantized.size()
            << " quantized weights and " << ckpt.tensors().size() - quantized.size()
            << " copies match\n";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizedCheckpoint,
                         ::testing::Values(FixtureCase{"tiny-llama", Fp8Scheme::Row},
                                           FixtureCase{"tiny-llama", Fp8Scheme::Block},
                                           FixtureCase{"tiny-qwen2", Fp8Scheme::Row},
                                           FixtureCase{"tiny-qwen2", Fp8Scheme::Block}),
                         [](const auto& param_info) {
                           std::string name = std::string(param_info.param.model) + "_" +
                                              std::string(fp8_scheme_name(param_info.param.scheme));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

std::vector<float> as_floats(const TensorView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  to_f32(v.dtype, v.data, out.data(), out.size());
  return out;
}

struct LayerCase {
  const char* layer;
  Fp8Scheme scheme;
};

class LinearReference : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LinearReference, ActivationsAndOutputMatch) {
  const auto [layer, scheme] = GetParam();
  const std::string prefix = std::string(layer) + ".";
  const std::string mode = prefix + std::string(fp8_scheme_name(scheme)) + ".";
  const auto ref =
      SafetensorsFile::open(test::data_path("tiny-qwen2/linear_reference.safetensors"));
  const Checkpoint ckpt = Checkpoint::open(test::data_path("tiny-qwen2"));

  const TensorView x = ref->view(prefix + "x");
  ASSERT_EQ(x.dtype, DType::F32);
  ASSERT_EQ(x.shape.size(), 2u);
  const int64_t t = x.shape[0], k = x.shape[1];

  // This reference was made on the CPU, where the scale is a true quotient (fp8_scheme.h): every
  // step below uses Fp8ScaleRule::Divide. Activations: codes byte for byte, scales bit for bit.
  constexpr auto kRule = Fp8ScaleRule::Divide;
  std::vector<uint8_t> xq(static_cast<size_t>(t * k));
  std::vector<float> xs(static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
  quantize_activations(scheme, x.as<float>(), t, k, xq.data(), xs.data(), kRule);
  const TensorView want_q = ref->view(mode + "x_fp8");
  ASSERT_EQ(want_q.shape, (Shape{t, k}));
  for (int64_t i = 0; i < t * k; ++i) {
    ASSERT_EQ(xq[i], want_q.as<uint8_t>()[i])
        << "x_fp8 [" << i / k << ", " << i % k << "] of x = " << x.as<float>()[i];
  }
  const TensorView want_s = ref->view(mode + "x_scale");
  ASSERT_EQ(want_s.shape, activation_scale_shape(scheme, t, k));
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(xs[i]), std::bit_cast<uint32_t>(want_s.as<float>()[i]))
        << "x_scale " << i;
  }

  // Output: the layer's forward with the weight quantized from the checkpoint, bias included
  // (q_proj has one in Qwen2).
  const std::string weight_name = prefix + "weight";
  std::vector<float> bias;
  if (ckpt.find(prefix + "bias")) bias = as_floats(ckpt.view(prefix + "bias"));
  const TensorView want_y = ref->view(mode + "y");
  ASSERT_EQ(want_y.dtype, DType::F64);
  const std::vector<float> want = as_floats(want_y);
  auto layer_error = [&](Fp8ScaleRule rule, bool with_bias) {
    const QuantizedTensor w = quantize_weight(scheme, ckpt.view(weight_name), weight_name, rule);
    const int64_t n = w.q.shape[0];
    EXPECT_EQ(want_y.shape, (Shape{t, n}));
    std::vector<float> y(static_cast<size_t>(t * n));
    cpu::linear_fp8(scheme, x.as<float>(), t, k, w.q.as<uint8_t>(), w.scale.as<float>(), n,
                    with_bias && !bias.empty() ? bias.data() : nullptr, y.data(), rule);
    return test::rel_l2(y, want);
  };
  const double err = layer_error(kRule, true);
  // For comparison: the GPU rule flips codes at exact rounding ties, far beyond float32 rounding
  // in row mode (in block mode these tiles' scales happen to agree).
  const double err_other_rule = layer_error(Fp8ScaleRule::MultiplyByReciprocal, true);
  std::cout << layer << " " << fp8_scheme_name(scheme) << (bias.empty() ? "" : " (with bias)")
            << ": relative L2 " << err << " (with the reciprocal scale rule: " << err_other_rule
            << ")\n";
  EXPECT_LT(err, 1e-6);
  // The reference includes the bias: without it the output is far off.
  if (!bias.empty()) {
    EXPECT_GT(layer_error(kRule, false), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyQwen2, LinearReference,
    ::testing::Values(LayerCase{"model.layers.0.self_attn.q_proj", Fp8Scheme::Row},
                      LayerCase{"model.layers.0.self_attn.q_proj", Fp8Scheme::Block},
                      LayerCase{"model.layers.0.mlp.down_proj", Fp8Scheme::Row},
                      LayerCase{"model.layers.0.mlp.down_proj", Fp8Scheme::Block}),
    [](const auto& param_info) {
      std::string name =
          std::string(param_info.param.layer).substr(std::string("model.layers.0.").size()) + "_" +
          std::string(fp8_scheme_name(param_info.param.scheme));
      for (char& c : name) {
        if (c == '.') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace fp8llm
