// The one mapping from an op's LinearKind / NormKind and a checkpoint tensor's WeightRole to the
// members of a layer: every tensor of a model with all optional parts (q/k norms, every bias, an
// untied lm_head) lands in its own slot of HostWeights, the one its Hugging Face name says.
#include "model/layer_members.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "core/error.h"
#include "formats/hf_config.h"
#include "model/host_weights.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

ModelConfig every_part() {
  ModelConfig c = load_model_config(data_path("tiny-qwen3"));  // q/k norms
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_word_embeddings = false;
  return c;
}

TEST(LayerMembers, EveryTensorHasTheSlotItsNameSays) {
  const ModelConfig config = every_part();
  HostWeights w;
  w.layers.resize(static_cast<size_t>(config.num_layers));
  // The module part of a Hugging Face name, and the member it must land in.
  const auto expected_slot = [&w](const WeightSpec& s) -> const HostTensor* {
    if (s.name == "model.embed_tokens.weight") return &w.embed;
    if (s.name == "model.norm.weight") return &w.final_norm;
    if (s.name == "lm_head.weight") return &w.lm_head.weight;
    HostLayer& l = w.layers.at(static_cast<size_t>(s.layer));
    const std::map<std::string, HostLinear*> linears = {
        {"self_attn.q_proj", &l.q}, {"self_attn.k_proj", &l.k}, {"self_attn.v_proj", &l.v},
        {"self_attn.o_proj", &l.o}, {"mlp.gate_proj", &l.gate}, {"mlp.up_proj", &l.up},
        {"mlp.down_proj", &l.down}};
    const std::map<std::string, HostTensor*> norms = {
        {"input_layernorm", &l.input_norm},
        {"post_attention_layernorm", &l.post_attention_norm},
        {"self_attn.q_norm", &l.q_norm},
        {"self_attn.k_norm", &l.k_norm}};
    const std::string prefix = "model.layers." + std::to_string(s.layer) + ".";
    for (const auto& [module, lin] : linears) {
      if (s.name == prefix + module + ".weight") return &lin->weight;
      if (s.name == prefix + module + ".bias") return &lin->bias;
    }
    for (const auto& [module, norm] : norms)
      if (s.name == prefix + module + ".weight") return norm;
    return nullptr;
  };
  std::set<const HostTensor*> seen;
  size_t biases = 0, norms = 0;
  for (const WeightSpec& s : expected_weights(config)) {
    const HostTensor* want = expected_slot(s);
    ASSERT_NE(want, nullptr) << s.name;
    EXPECT_EQ(host_slot(w, s), want) << s.name;
    EXPECT_EQ(host_slot(static_cast<const HostWeights&>(w), s), want) << s.name;
    EXPECT_TRUE(seen.insert(want).second) << s.name << " shares a slot";
    // The projection: the weight's or bias's own HostLinear.
    const HostLinear* lin = host_linear(w, s);
    if (linear_kind_of(s.role)) {
      ASSERT_NE(lin, nullptr) << s.name;
      EXPECT_EQ(is_bias_role(s.role) ? &lin->bias : &lin->weight, want) << s.name;
      biases += is_bias_role(s.role);
    } else {
      EXPECT_EQ(lin, nullptr) << s.name;
      EXPECT_FALSE(is_bias_role(s.role)) << s.name;
    }
    norms += norm_kind_of(s.role).has_value();
  }
  const auto layers = static_cast<size_t>(config.num_layers);
  EXPECT_EQ(biases, 7 * layers);
  EXPECT_EQ(norms, 4 * layers + 1);
}

TEST(LayerMembers, KindsNameTheLayerMembers) {
  HostLayer l;
  const std::vector<const HostLinear*> linears = {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down};
  for (size_t i = 0; i < kLayerLinearKinds.size(); ++i)
    EXPECT_EQ(&layer_linear(l, kLayerLinearKinds[i]), linears[i]) << i;
  const std::vector<const HostTensor*> norms = {&l.input_norm, &l.post_attention_norm, &l.q_norm,
                                                &l.k_norm};
  for (size_t i = 0; i < kLayerNormKinds.size(); ++i)
    EXPECT_EQ(&layer_norm(l, kLayerNormKinds[i]), norms[i]) << i;
  EXPECT_EQ(linear_kind_of(WeightRole::GateBias), LinearKind::Gate);
  EXPECT_EQ(linear_kind_of(WeightRole::LmHead), LinearKind::LmHead);
  EXPECT_EQ(linear_kind_of(WeightRole::Embedding), std::nullopt);
  EXPECT_EQ(norm_kind_of(WeightRole::FinalNorm), NormKind::Final);
  EXPECT_EQ(norm_kind_of(WeightRole::QProj), std::nullopt);
}

TEST(LayerMembers, TheModelsOwnWeightsAreNotALayers) {
  HostLayer l;
  EXPECT_EQ(error_of([&] { layer_linear(l, LinearKind::LmHead); }),
            "lm_head is not a projection of a decoder layer");
  EXPECT_EQ(error_of([&] { layer_norm(l, NormKind::Final); }),
            "the final norm is not a norm of a decoder layer");
}

TEST(LayerMembers, ALayerTheWeightsDoNotHaveHasNoSlot) {
  HostWeights w;
  w.layers.resize(2);
  for (const int64_t layer : {int64_t{-1}, int64_t{2}}) {
    const WeightSpec q{
        .name = "q", .role = WeightRole::QProj, .layer = layer, .shape = {}, .quantizable = true};
    const WeightSpec norm{.name = "n",
                          .role = WeightRole::InputNorm,
                          .layer = layer,
                          .shape = {},
                          .quantizable = false};
    EXPECT_EQ(host_slot(w, q), nullptr) << layer;
    EXPECT_EQ(host_linear(w, q), nullptr) << layer;
    EXPECT_EQ(host_slot(w, norm), nullptr) << layer;
  }
}

}  // namespace
}  // namespace fp8llm::test
