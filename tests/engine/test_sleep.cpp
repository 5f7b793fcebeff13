// sleep / wake_up on the CPU engine: the KV cache is given back and made again empty, nothing runs
// while asleep, and after wake_up the logits and generations are bit for bit what they were.
#include <gtest/gtest.h>

#include "core/error.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

const std::vector<int32_t> kPrompt = {0, 384, 950, 902, 17, 33, 640, 5};

std::unique_ptr<Engine> load(const std::string& quantization) {
  return Engine::load({.model_dir = data_path("tiny-llama"),
                       .quantization = parse_quantization(quantization),
                       .registry = data_path("no-registry.json"),
                       .max_context = 128});
}

std::vector<int32_t> generated(Engine& e) {
  GenerationRequest r{kPrompt, {.n = 2, .temperature = 0.8f, .seed = 5, .max_tokens = 12}};
  const RequestOutput out = e.generate({r}).at(0);
  std::vector<int32_t> all;
  for (const CompletionOutput& c : out.outputs)
    all.insert(all.end(), c.token_ids.begin(), c.token_ids.end());
  return all;
}

class Sleep : public ::testing::TestWithParam<int> {};

TEST_P(Sleep, WakeUpRestoresExactly) {
  const int level = GetParam();
  const auto engine = load("fp8-block");
  const std::vector<float> logits = engine->logits(kPrompt);
  const std::vector<int32_t> tokens = generated(*engine);
  engine->feed(kPrompt);  // an incremental sequence in progress is dropped by sleep
  const EngineStats before = engine->stats();

  engine->sleep(level);
  EXPECT_EQ(engine->sleep_level(), level);
  EXPECT_NE(
      error_of([&] { engine->logits(kPrompt); }).find("asleep (level " + std::to_string(level)),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              engine->add_request({kPrompt, {}});
            }).find("call wake_up() first"),
            std::string::npos);
  EXPECT_NE(error_of([&] { engine->sleep(1); }).find("asleep already"), std::string::npos);

  engine->wake_up();
  EXPECT_EQ(engine->sleep_level(), 0);
  EXPECT_EQ(engine->position(), 0);
  const EngineStats after = engine->stats();
  EXPECT_EQ(after.kv_blocks_used, 0);
  EXPECT_EQ(after.kv_blocks_total, before.kv_blocks_total);
  EXPECT_EQ(engine->logits(kPrompt), logits);
  EXPECT_EQ(generated(*engine), tokens);
  engine->wake_up();  // awake already: nothing to do
  EXPECT_EQ(engine->logits(kPrompt), logits);
}

INSTANTIATE_TEST_SUITE_P(Levels, Sleep, ::testing::Values(1, 2));

TEST(SleepRules, RefusedWhileRequestsRunAndForBadLevels) {
  const auto engine = load("fp8-row");
  EXPECT_NE(error_of([&] { engine->sleep(3); }).find("sleep: level 3"), std::string::npos);
  EXPECT_NE(error_of([&] { engine->sleep(0); }).find("sleep: level 0"), std::string::npos);
  engine->add_request({kPrompt, {.max_tokens = 3}});
  EXPECT_NE(error_of([&] { engine->sleep(1); }).find("requests are queued or running"),
            std::string::npos);
  while (engine->has_unfinished()) engine->step();
  engine->sleep(1);
  engine->wake_up();
}

// A trainer's cycle: sleep (level 1 keeps the weights), update, wake. Level 2 refuses updates.
TEST(SleepRules, UpdatesWhileAsleep) {
  const auto engine = load("fp8-row");
  const std::vector<float> logits = engine->logits(kPrompt);
  const StateDictTensor deq =
      engine->state_dict_tensor("model.layers.0.mlp.up_proj.weight", StateDictForm::Dequantized);
  const WeightTensor t{deq.entry.name, deq.entry.dtype, deq.entry.shape, deq.bytes.data()};
  engine->sleep(2);
  EXPECT_NE(error_of([&] {
              engine->update_weights({&t, 1});
            }).find("asleep at level 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { engine->state_dict_views(); }).find("asleep at level 2"),
            std::string::npos);
  engine->wake_up();
  engine->sleep(1);
  EXPECT_EQ(engine->update_weights({&t, 1}).tensors, 1u);
  engine->wake_up();
  EXPECT_EQ(engine->logits(kPrompt), logits);
}

}  // namespace
}  // namespace fp8llm::test
