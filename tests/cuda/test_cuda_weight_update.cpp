// Live weight updates and sleep on the CUDA engine: the dequantized state dict written back changes
// no bit; a modified checkpoint's tensors, from host memory or already on the device (BF16 and
// F32), give the stored bytes and the logits of a fresh CUDA load of that checkpoint, and decode
// steps replayed from CUDA graphs recorded before the update use the new weights; a NaN on the
// device changes nothing; sleep(2) and wake_up put the weights back bit for bit. Skipped without
// a CUDA device.
#include <gtest/gtest.h>

#include <limits>

#include "../engine/weight_update_util.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/error.h"

namespace fp8llm::test {
namespace {

const std::vector<int32_t> kPrompt = {0, 384, 950, 902, 17, 33, 640, 5};

std::unique_ptr<Engine> load(const std::filesystem::path& dir, const std::string& mode) {
  // fp32 sums: the logits of two engines holding the same bytes are then the same.
  return Engine::load({.model_dir = dir,
                       .quantization = parse_quantization(mode),
                       .registry = data_path("no-registry.json"),
                       .device = Device::Cuda,
                       .fp8_gemm = Fp8Gemm::Fp32,
                       .max_context = 128});
}

std::map<std::string, std::vector<std::byte>> stored(Engine& e) {
  std::map<std::string, std::vector<std::byte>> out;
  e.visit_state_dict(StateDictForm::Stored,
                     [&](const StateDictTensor& t) { out.emplace(t.entry.name, t.bytes); });
  return out;
}

std::vector<int32_t> greedy(Engine& e) {
  GenerationRequest r{kPrompt, {.max_tokens = 12, .ignore_eos = true}};
  return e.generate({r}).at(0).outputs.at(0).token_ids;
}

class CudaWeightUpdate : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaWeightUpdate, DequantizedStateDictWrittenBackChangesNoBit) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<float> before = engine->logits(kPrompt);
  const auto bytes = stored(*engine);
  std::vector<StateDictTensor> deq;
  engine->visit_state_dict(StateDictForm::Dequantized,
                           [&](const StateDictTensor& t) { deq.push_back(t); });
  std::vector<WeightTensor> ts;
  for (const StateDictTensor& t : deq)
    ts.push_back({t.entry.name, t.entry.dtype, t.entry.shape, t.bytes.data()});
  engine->update_weights(ts);
  EXPECT_EQ(stored(*engine), bytes);
  EXPECT_EQ(engine->logits(kPrompt), before);
}

TEST_P(CudaWeightUpdate, ModifiedCheckpointFromHostOrDeviceGivesAFreshLoad) {
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  TempDir dir;
  write_model(dir, changed);
  const auto fresh = load(dir.path(), GetParam());
  const std::vector<float> want = fresh->logits(kPrompt);
  const std::vector<int32_t> want_tokens = greedy(*fresh);

  for (const bool on_device : {false, true}) {
    const auto engine = load(data_path("tiny-llama"), GetParam());
    greedy(*engine);  // records the decode steps' CUDA graphs over the old weights
    greedy(*engine);
    std::vector<HostTensor> keep;
    keep.reserve(changed.size());
    std::vector<cuda::DeviceBuffer> device;
    std::vector<WeightTensor> ts;
    size_t i = 0;
    for (const auto& [name, t] : changed) {
      keep.push_back(i++ % 2 == 0 ? t : as_f32(t));  // BF16 and F32 sources
      const HostTensor& src = keep.back();
      WeightTensor w = tensor_of(name, src);
      if (on_device) {
        device.emplace_back(src.bytes.size());
        device.back().upload(src.bytes.data(), src.bytes.size());
        w.data = device.back().data();
        w.device = Device::Cuda;
      }
      ts.push_back(w);
    }
    const WeightUpdateReport r = engine->update_weights(ts);
    EXPECT_EQ(r.tensors, changed.size());
    EXPECT_EQ(stored(*engine), stored(*fresh)) << (on_device ? "device" : "host");
    EXPECT_EQ(engine->logits(kPrompt), want);
    EXPECT_EQ(greedy(*engine), want_tokens);
  }
}

TEST_P(CudaWeightUpdate, NanOnTheDeviceChangesNothing) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<float> before = engine->logits(kPrompt);
  const auto bytes = stored(*engine);
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  const std::string name = "model.layers.1.mlp.down_proj.weight";
  HostTensor bad = as_f32(changed.at(name));
  bad.as<float>()[1000] = std::numeric_limits<float>::quiet_NaN();
  cuda::DeviceBuffer dev(bad.bytes.size());
  dev.upload(bad.bytes.data(), bad.bytes.size());
  std::vector<WeightTensor> ts;
  for (const auto& [n, t] : changed)
    if (n != name) ts.push_back(tensor_of(n, t));
  ts.push_back({name, "F32", bad.shape, dev.data(), Device::Cuda});
  EXPECT_NE(error_of([&] { engine->update_weights(ts); }).find(name), std::string::npos);
  EXPECT_EQ(stored(*engine), bytes);
  EXPECT_EQ(engine->logits(kPrompt), before);
}

TEST_P(CudaWeightUpdate, SleepAndWakeUpRestoreExactly) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<float> before = engine->logits(kPrompt);
  const std::vector<int32_t> tokens = greedy(*engine);
  const auto bytes = stored(*engine);
  for (const int level : {1, 2}) {
    engine->sleep(level);
    engine->wake_up();
    EXPECT_EQ(stored(*engine), bytes) << level;
    EXPECT_EQ(engine->logits(kPrompt), before) << level;
    EXPECT_EQ(greedy(*engine), tokens) << level;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CudaWeightUpdate, ::testing::Values("fp8-row", "fp8-block", "none"),
                         [](const auto& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace fp8llm::test
