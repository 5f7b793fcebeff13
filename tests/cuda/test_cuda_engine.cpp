// The CUDA backend end to end: the fixture models loaded onto the GPU against the transformers
// references (bf16 and FP8), against the CPU engine, token-by-token decoding against the full
// forward, the device FP8 weights against the reference FP8 checkpoints byte for byte,
// pre-quantized checkpoints, and the load errors. GPU tests are skipped without a device; the
// device checks (compute capability, memory) run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../engine/reference.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_load.h"
#include "backend/cuda/runtime/device.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "fp8llm/engine.h"
#include "loader/load_plan.h"
#include "model/llama_model.h"

namespace fp8llm::test {
namespace {

struct Case {
  std::string model;
  std::string quantization;
  std::string fp8_gemm = "fp32";
  // The KV cache of both engines: fp32 keeps the GPU within fp32 rounding of the CPU; bf16 (the
  // CUDA default) and fp8 round the keys and values the same way on both.
  std::string kv = "fp32";
};

// Bounds (what the product asks of the CUDA backend). Activations are fp32 on both backends, and
// with --fp8-gemm fp32 every FP8 product is summed in fp32, so the GPU differs from the CPU engine
// only by fp32 rounding order; now and then that moves an activation across an FP8 rounding step,
// which these small random models amplify. A wrong scale or layout gives errors of order 1.
constexpr double kNoneBound = 2e-2;   // vs bf16.pI
constexpr double kFp8Bound = 6e-2;    // vs fp8_*.pI
constexpr double kVsCpuBound = 3e-2;  // vs the CPU engine, same mode
// Token by token vs the full forward: decode tokens attend in decode_attention.h's kernel, whose
// fp32 sums run in another order than the prompt kernel's (up to 7.1e-3 with an fp32 KV cache,
// H200); with a rounded KV cache, kRoundedKvVsCpuBound.
constexpr double kIncrementalBound = 2e-2;
// With --fp8-gemm tensor-core, each GEMM of a prompt carries the tensor cores' summation error
// (about 1.2e-4 relative, measured in test_gemm.cpp) while single tokens are summed in fp32; the
// FP8 codes downstream then differ often enough that the logits move by 4e-2 to 5e-2 (measured on
// H100 and H200). The references bound still holds; the other two are looser by that much.
constexpr double kTensorCoreVsCpuBound = 8e-2;
constexpr double kTensorCoreIncrementalBound = 8e-2;
// In that mode prompts also attend on tensor cores, with q, keys, values and softmax weights
// rounded to bf16 (docs/FP8.md): against the references the fixtures then land 5.6e-2 to 7.0e-2
// away (H200), so the references bound is the tensor-core one too.
constexpr double kTensorCoreVsReferenceBound = 8e-2;
// A bf16 or fp8 KV cache is rounded the same way on both engines, but a last-bit difference before
// that rounding moves a key or value by a bf16 or fp8 step rather than an fp32 one: up to 3.3e-2
// from the CPU engine with fp32 sums, and 2.7e-2 token by token against the full forward (H200).
constexpr double kRoundedKvVsCpuBound = 4e-2;

bool tensor_cores(const Case& c) {
  return c.quantization != "none" && c.fp8_gemm == "tensor-core";
}

std::string reference_kind(const std::string& quantization) {
  if (quantization == "none") return "bf16";
  return quantization == "fp8-row" ? "fp8_row" : "fp8_block";
}

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  std::string name = param_info.param.model + "_" + param_info.param.quantization + "_" +
                     param_info.param.fp8_gemm + "_kv_" + param_info.param.kv;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class CudaEngine : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

class CudaWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Every prompt against the transformers reference of the mode (bf16 for none) and against the CPU
// engine (fp32 activations) in the same mode.
TEST_P(CudaEngine, MatchesReferenceAndCpuOnEveryPrompt) {
  const Case& c = GetParam();
  const Reference ref = Reference::load(c.model);
  auto gpu = Engine::load({.model_dir = data_path(c.model),
                           .quantization = parse_quantization(c.quantization),
                           .device = Device::Cuda,
                           .fp8_gemm = parse_fp8_gemm(c.fp8_gemm),
                           .kv_cache_dtype = parse_kv_cache_dtype(c.kv)});
  auto cpu = Engine::load({.model_dir = data_path(c.model),
                           .quantization = parse_quantization(c.quantization),
                           .kv_cache_dtype = parse_kv_cache_dtype(c.kv)});
  const std::string kind = reference_kind(c.quantization);
  const double bound = c.quantization == "none" ? kNoneBound
                       : tensor_cores(c)        ? kTensorCoreVsReferenceBound
                                                : kFp8Bound;
  const double cpu_bound = tensor_cores(c)  ? kTensorCoreVsCpuBound
                           : c.kv == "fp32" ? kVsCpuBound
                                            : kRoundedKvVsCpuBound;
  double worst_ref = 0, worst_cpu = 0;
  for (size_t p = 0; p < ref.prompts.size(); ++p) {
    const std::vector<float> got = gpu->logits(ref.prompts[p]);
    const std::vector<float> want = ref.expected(kind, p);
    const std::vector<float> on_cpu = cpu->logits(ref.prompts[p]);
    ASSERT_EQ(got.size(), want.size());
    const double err_ref = rel_l2(got, want);
    const double err_cpu = rel_l2(got, on_cpu);
    worst_ref = std::max(worst_ref, err_ref);
    worst_cpu = std::max(worst_cpu, err_cpu);
    std::printf("%s %s %s kv %s prompt %zu (%zu tokens): rel L2 vs %s %.3e, vs cpu %.3e\n",
                c.model.c_str(), c.quantization.c_str(), c.fp8_gemm.c_str(), c.kv.c_str(), p,
                ref.prompts[p].size(), kind.c_str(), err_ref, err_cpu);
    if (c.kv == "fp32") {
      EXPECT_LT(err_ref, bound) << "prompt " << p;
    }
    EXPECT_LT(err_cpu, cpu_bound) << "prompt " << p;
  }
  std::printf("%s %s %s: max rel L2 vs %s %.3e, vs cpu %.3e\n", c.model.c_str(),
              c.quantization.c_str(), c.fp8_gemm.c_str(), kind.c_str(), worst_ref, worst_cpu);
}

// Prompt 4 fed token by token (the KV cache path, one query row) equals the full forward.
TEST_P(CudaEngine, TokenByTokenEqualsFullForward) {
  const Case& c = GetParam();
  const Reference ref = Reference::load(c.model);
  auto engine = Engine::load({.model_dir = data_path(c.model),
                              .quantization = parse_quantization(c.quantization),
                              .device = Device::Cuda,
                              .fp8_gemm = parse_fp8_gemm(c.fp8_gemm),
                              .kv_cache_dtype = parse_kv_cache_dtype(c.kv)});
  const std::vector<int32_t>& prompt = ref.prompts.at(4);
  const std::vector<float> full = engine->logits(prompt);
  engine->reset();
  std::vector<float> stepwise;
  for (const int32_t id : prompt) {
    const std::vector<float> row = engine->feed(std::span<const int32_t>(&id, 1));
    stepwise.insert(stepwise.end(), row.begin(), row.end());
  }
  ASSERT_EQ(stepwise.size(), full.size());
  const double err = rel_l2(stepwise, full);
  std::printf("%s %s %s: token-by-token vs full forward %.3e\n", c.model.c_str(),
              c.quantization.c_str(), c.fp8_gemm.c_str(), err);
  EXPECT_LT(err, tensor_cores(c)  ? kTensorCoreIncrementalBound
                 : c.kv == "fp32" ? kIncrementalBound
                                  : kRoundedKvVsCpuBound);
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, CudaEngine,
    ::testing::Values(Case{"tiny-llama", "none"}, Case{"tiny-llama", "fp8-row"},
                      Case{"tiny-llama", "fp8-block"}, Case{"tiny-qwen2", "none"},
                      Case{"tiny-qwen2", "fp8-row"}, Case{"tiny-qwen2", "fp8-block"},
                      Case{"tiny-qwen3", "none"}, Case{"tiny-qwen3", "fp8-row"},
                      Case{"tiny-qwen3", "fp8-block"}, Case{"tiny-llama", "fp8-row", "tensor-core"},
                      Case{"tiny-llama", "fp8-block", "tensor-core"},
                      Case{"tiny-qwen2", "fp8-row", "tensor-core"},
                      Case{"tiny-qwen2", "fp8-block", "tensor-core"},
                      Case{"tiny-qwen3", "fp8-row", "tensor-core"},
                      Case{"tiny-qwen3", "fp8-block", "tensor-core"},
                      Case{"tiny-llama", "fp8-block", "fp32", "bf16"},
                      Case{"tiny-qwen2", "fp8-row", "fp32", "bf16"},
                      Case{"tiny-qwen3", "none", "fp32", "bf16"},
                      Case{"tiny-llama", "fp8-block", "fp32", "fp8"},
                      Case{"tiny-qwen2", "fp8-row", "fp32", "fp8"},
                      Case{"tiny-qwen3", "fp8-block", "fp32", "fp8"}),
    case_name);

LoadPlan plan_for(const std::filesystem::path& dir, const std::string& quantization) {
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  return build_load_plan(checkpoint, config, scheme_of(parse_quantization(quantization)));
}

// The CUDA backend of the checkpoint in `dir` (open while it loads, as streaming reads it).
CudaLoad load_on_device(const std::filesystem::path& dir, const std::string& quantization) {
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan =
      build_load_plan(checkpoint, config, scheme_of(parse_quantization(quantization)));
  return load_cuda_backend(plan,
                           {.model_dir = dir,
                            .quantization = parse_quantization(quantization),
                            .device = Device::Cuda,
                            .max_batch_tokens = 512,
                            .max_seqs = 8},
                           nullptr);
}

// One sequence run on a loaded device model through its own small paged cache.
struct OnDevice {
  ModelConfig config;
  CudaLoad load;
  std::unique_ptr<KvStorage> kv;
  LlamaModel model;
  std::vector<int32_t> tokens, table;

  OnDevice(const std::filesystem::path& dir, const std::string& quantization)
      : config(load_model_config(dir)), load(load_on_device(dir, quantization)), model(config) {
    kv = load.make_kv({.layers = config.num_layers,
                       .blocks = 64,
                       .block_size = 16,
                       .kv_heads = config.num_kv_heads,
                       .head_dim = config.head_dim,
                       .dtype = KvCacheDtype::F32});
    for (int32_t b = 1; b < 64; ++b) table.push_back(b);
  }
  // Runs `ids` after what ran before; the logits of the last position, on the device.
  Act feed(std::span<const int32_t> ids) {
    const auto begin = static_cast<int64_t>(tokens.size());
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    Batch batch;
    batch.add_sequence(tokens, begin, static_cast<int64_t>(tokens.size()), table,
                       Batch::Logits::Last);
    const BatchView view = load.backend->prepare(batch);
    return model.forward(*load.backend, *load.workspace, kv->view(), view);
  }
  void restart() { tokens.clear(); }
  TopToken pick(Act logits, const SampleShape& shape, double uniform) {
    const PickSpec spec{0, shape, uniform};
    TopToken out;
    load.picker->pick(logits, std::span(&spec, 1), std::span(&out, 1));
    return out;
  }
};

// The FP8 codes and scales the device quantizer wrote into the weight arena are those of the
// reference FP8 checkpoints, byte for byte.
TEST_F(CudaWeights, DeviceFp8WeightsEqualReferenceCheckpoints) {
  for (const std::string model : {"tiny-llama", "tiny-qwen2"}) {
    for (const std::string mode : {"row", "block"}) {
      SCOPED_TRACE(model + " " + mode);
      const std::filesystem::path dir = data_path(model);
      // The checkpoint stays open while the plan's tensors refer to it.
      const ModelConfig config = load_model_config(dir);
      const Checkpoint checkpoint = Checkpoint::open(dir);
      const LoadPlan plan =
          build_load_plan(checkpoint, config, scheme_of(parse_quantization("fp8-" + mode)));
      CudaLoad load = load_cuda_backend(plan,
                                        {.model_dir = dir,
                                         .quantization = parse_quantization("fp8-" + mode),
                                         .device = Device::Cuda},
                                        nullptr);
      std::printf("%s fp8-%s: %llu weight bytes on the device, peak device memory %llu bytes\n",
                  model.c_str(), mode.c_str(), static_cast<unsigned long long>(load.resident_bytes),
                  static_cast<unsigned long long>(load.peak_device_bytes));
      EXPECT_GE(load.peak_device_bytes, load.resident_bytes);
      auto& backend = dynamic_cast<cuda::CudaBackend&>(*load.backend);
      const auto expected = SafetensorsFile::open(dir / ("expected_fp8_" + mode + ".safetensors"));
      int compared = 0;
      for (const PlannedTensor& t : plan.tensors) {
        if (!t.quantize) continue;
        const cuda::DeviceTensorSlot* slot = backend.weights().slot(t.spec.name);
        ASSERT_NE(slot, nullptr) << t.spec.name;
        const TensorView want_q = expected->view(t.spec.name);
        std::vector<uint8_t> q(static_cast<size_t>(slot->rows * slot->cols));
        ASSERT_EQ(want_q.nbytes, q.size()) << t.spec.name;
        ASSERT_EQ(cudaMemcpy(q.data(), slot->data, q.size(), cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(std::memcmp(q.data(), want_q.data, q.size()), 0) << t.spec.name;

        const TensorView want_s = expected->view(weight_scale_name(*t.quantize, t.spec.name));
        const int64_t rows = want_s.shape.at(0);
        const int64_t cols = want_s.shape.size() > 1 ? want_s.shape[1] : 1;
        const int64_t ld = mode == "block" ? slot->scale_ld : 1;
        std::vector<float> s(static_cast<size_t>(rows * ld));
        ASSERT_EQ(
            cudaMemcpy(s.data(), slot->scales, s.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(std::memcmp(&s[static_cast<size_t>(r * ld)], want_s.as<float>() + r * cols,
                                static_cast<size_t>(cols) * 4),
                    0)
              << t.spec.name << " scale row " << r;
        }
        ++compared;
      }
      EXPECT_GT(compared, 0);
    }
  }
}

// A checkpoint that is already FP8 (fine-grained, 128x128 blocks) runs on the GPU as the CPU runs
// it: its codes are copied, its scales converted to the device layout. Summed in fp32, so that
// only rounding order separates the two.
TEST_F(CudaWeights, PrequantizedCheckpointMatchesCpu) {
  const std::filesystem::path dir = data_path("tiny-llama-fp8-block");
  const Reference ref = Reference::load("tiny-llama");
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan =
      build_load_plan(checkpoint, config, scheme_of(parse_quantization("fp8-block")));
  ASSERT_TRUE(plan.prequant.has_value());
  auto gpu = Engine::load({.model_dir = dir,
                           .quantization = Quantization::Fp8Block,
                           .device = Device::Cuda,
                           .fp8_gemm = Fp8Gemm::Fp32,
                           .kv_cache_dtype = KvCacheDtype::F32});
  auto cpu = Engine::load({.model_dir = dir, .quantization = Quantization::Fp8Block});
  for (size_t p = 0; p < ref.prompts.size(); ++p) {
    const std::vector<int32_t>& ids = ref.prompts[p];
    const std::vector<float> got = gpu->logits(ids);
    const double err = rel_l2(got, cpu->logits(ids));
    std::printf("tiny-llama-fp8-block prompt %zu: rel L2 vs cpu %.3e\n", p, err);
    EXPECT_LT(err, kVsCpuBound) << "prompt " << p;
  }
}

// A NaN in a projection stops the load with an error naming the tensor.
TEST_F(CudaWeights, NonFiniteWeightIsNamed) {
  TempDir dir;
  copy_dir(data_path("tiny-llama"), dir.path());
  const std::string bad = "model.layers.1.mlp.up_proj.weight";
  {
    const auto src = SafetensorsFile::open(data_path("tiny-llama/model.safetensors"));
    std::vector<std::vector<std::byte>> copies;
    std::vector<std::pair<std::string, TensorView>> tensors;
    for (const auto& info : src->tensors()) {
      TensorView v = src->view(info);
      if (info.name == bad) {
        copies.emplace_back(v.data, v.data + v.nbytes);
        const uint16_t nan = 0x7FC0;
        std::memcpy(copies.back().data() + 2 * 77, &nan, 2);
        v.data = copies.back().data();
      }
      tensors.emplace_back(info.name, v);
    }
    write_safetensors(dir / "model.safetensors", tensors, src->metadata());
  }
  for (const std::string q : {"fp8-row", "fp8-block"}) {
    try {
      Engine::load(
          {.model_dir = dir.path(), .quantization = parse_quantization(q), .device = Device::Cuda});
      ADD_FAILURE() << "no error for a NaN weight (" << q << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
    }
  }
}

// The rule of loader/value_checks.h on the device: a NaN or infinity in a tensor held as it is
// (embedding, norm, lm_head, or a projection with -q none), a NaN code in FP8 weights and a scale
// that is not finite and positive are errors naming the tensor, as on the CPU.
TEST_F(CudaWeights, NonFiniteKeptTensorsAndBadScalesAreNamed) {
  struct Poison {
    std::string model, tensor, quantization;
    size_t offset;
    std::vector<uint8_t> bytes;
    std::string error;
  };
  const float zero = 0.0f;
  std::vector<uint8_t> zero_bytes(4);
  std::memcpy(zero_bytes.data(), &zero, 4);
  const std::vector<Poison> cases = {
      {"tiny-llama",
       "model.embed_tokens.weight",
       "fp8-row",
       2,
       {0xC0, 0x7F},
       "contains NaN at [0, 1]"},
      {"tiny-llama", "lm_head.weight", "fp8-block", 0, {0x80, 0x7F}, "contains Inf at [0, 0]"},
      {"tiny-qwen3",
       "model.layers.0.self_attn.k_norm.weight",
       "fp8-row",
       4,
       {0xC0, 0x7F},
       "contains NaN at [2]"},
      {"tiny-llama",
       "model.layers.1.self_attn.o_proj.weight",
       "none",
       2 * 257,
       {0x80, 0xFF},
       "contains Inf at [1, 1]"},
      {"tiny-llama-fp8-block",
       "model.layers.0.mlp.up_proj.weight",
       "fp8-block",
       7,
       {0xFF},
       "contains the F8_E4M3 NaN code 0xff at [0, 7]"},
      {"tiny-llama-fp8-block", "model.layers.1.self_attn.o_proj.weight_scale_inv", "fp8-block", 4,
       zero_bytes, "scale 0 at [0, 1] is not a finite positive number"},
  };
  for (const Poison& c : cases) {
    SCOPED_TRACE(c.tensor);
    TempDir dir;
    copy_dir(data_path(c.model), dir.path());
    {
      const auto src = SafetensorsFile::open(data_path(c.model + "/model.safetensors"));
      std::vector<std::byte> copy;
      std::vector<std::pair<std::string, TensorView>> tensors;
      for (const auto& info : src->tensors()) {
        TensorView v = src->view(info);
        if (info.name == c.tensor) {
          copy.assign(v.data, v.data + v.nbytes);
          std::memcpy(copy.data() + c.offset, c.bytes.data(), c.bytes.size());
          v.data = copy.data();
        }
        tensors.emplace_back(info.name, v);
      }
      ASSERT_FALSE(copy.empty());
      write_safetensors(dir / "model.safetensors", tensors, src->metadata());
    }
    EXPECT_EQ(test::error_of([&] {
                Engine::load({.model_dir = dir.path(),
                              .quantization = parse_quantization(c.quantization),
                              .device = Device::Cuda});
              }),
              c.tensor + ": " + c.error);
  }
}

// The most likely token found on the device equals the host's answer on the same logits, on the
// prompt pass and on recorded (graph) decode steps.
TEST_F(CudaWeights, TopTokenOnDeviceEqualsHost) {
  const std::filesystem::path dir = data_path("tiny-llama");
  OnDevice d(dir, "fp8-row");
  const Reference ref = Reference::load("tiny-llama");
  std::vector<int32_t> ids = ref.prompts.at(1);
  std::vector<float> row(static_cast<size_t>(d.config.vocab_size));
  for (int step = 0; step < 6; ++step) {
    const std::span<const int32_t> feed =
        step == 0 ? std::span<const int32_t>(ids) : std::span<const int32_t>(&ids.back(), 1);
    const Act logits = d.feed(feed);
    const TopToken on_device = d.pick(logits, {.temperature = 0.0f}, 0.0);
    d.load.backend->read(logits, row.data());
    const TopToken on_host = top_token(row);
    EXPECT_EQ(on_device.id, on_host.id) << "step " << step;
    EXPECT_NEAR(on_device.logprob, on_host.logprob, 1e-5) << "step " << step;
    EXPECT_LT(on_device.logprob, 0.0f);
    ids.push_back(on_device.id);
  }
}

// Temperature sampling on the device picks what the definition picks on the host (index order,
// running sum of exp((logit - max) / T) passing uniform * total), draws skipped where the host sum
// lies within 1e-9 of a boundary; and generate() with a temperature is reproducible by seed.
TEST_F(CudaWeights, SampleTokenOnDeviceFollowsTheDefinition) {
  const std::filesystem::path dir = data_path("tiny-llama");
  OnDevice d(dir, "fp8-block");
  const ModelConfig& config = d.config;
  const Reference ref = Reference::load("tiny-llama");
  const std::vector<int32_t>& ids = ref.prompts.at(2);
  std::vector<float> row(static_cast<size_t>(config.vocab_size));
  int checked = 0;
  for (const float temperature : {0.5f, 1.0f, 1.7f}) {
    d.restart();
    const Act logits = d.feed(ids);
    d.load.backend->read(logits, row.data());
    const float m = *std::max_element(row.begin(), row.end());
    const double inv_t = 1.0f / temperature;
    std::vector<double> cumulative(row.size());
    double acc = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      acc += std::exp((static_cast<double>(row[i]) - m) * inv_t);
      cumulative[i] = acc;
    }
    for (int k = 0; k < 40; ++k) {
      const double u = (k + 0.37) / 40.0;
      const double target = u * acc;
      const size_t want = static_cast<size_t>(
          std::upper_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin());
      const bool near = std::fabs(cumulative[want] - target) < 1e-9 * acc ||
                        (want > 0 && std::fabs(cumulative[want - 1] - target) < 1e-9 * acc);
      const TopToken got = d.pick(logits, {.temperature = temperature}, u);
      if (near) continue;
      ++checked;
      EXPECT_EQ(got.id, static_cast<int32_t>(want)) << "T " << temperature << " u " << u;
      EXPECT_NEAR(got.logprob, log_softmax_at(row, got.id), 1e-5);
    }
  }
  EXPECT_GT(checked, 100);

  // The second run would find the prompt's first blocks in the prefix cache and run the rest in
  // a pass of 10 rows, on another GEMM kernel than the first run's 42 (docs/FP8.md): the seed is
  // what is under test here.
  auto engine = Engine::load({.model_dir = dir,
                              .quantization = Quantization::Fp8Block,
                              .device = Device::Cuda,
                              .prefix_caching = false});
  GenerationOptions options;
  options.max_tokens = 12;
  options.sampling.temperature = 0.9f;
  options.sampling.seed = 7;
  const GenerationResult a = engine->generate(ids, options);
  const GenerationResult b = engine->generate(ids, options);
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(a.tokens.size(), 12u);
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_GE(a.tokens[i], 0);
    EXPECT_LT(a.tokens[i], config.vocab_size);
    EXPECT_LE(a.logprobs[i], 0.0f);
  }
  // With filters the device draws too (tests/cuda/test_filtered_sample.cpp checks the draws);
  // top-k 1 is greedy decoding.
  options.sampling.top_k = 1;
  const GenerationResult top1 = engine->generate(ids, options);
  GenerationOptions greedy;
  greedy.max_tokens = 12;
  EXPECT_EQ(top1.tokens, engine->generate(ids, greedy).tokens);
  options.sampling.top_k = 20;
  options.sampling.top_p = 0.9f;
  options.sampling.min_p = 0.01f;
  const GenerationResult c = engine->generate(ids, options);
  EXPECT_EQ(c.tokens, engine->generate(ids, options).tokens);
  ASSERT_EQ(c.tokens.size(), 12u);
}

// The device checks, with the device's properties given: they need no GPU.
TEST(CudaDeviceCheck, Fp8NeedsComputeCapability89) {
  const LoadPlan plan = plan_for(data_path("tiny-llama"), "fp8-block");
  const CudaMemoryNeeds needs = cuda_memory_needs(plan, {});
  try {
    check_cuda_device(plan, needs, 80, needs.total() * 2, "NVIDIA A100");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("compute capability 8.9"), std::string::npos) << msg;
    EXPECT_NE(msg.find("NVIDIA A100 has 8.0"), std::string::npos) << msg;
  }
  // Mode none runs on any device; FP8 modes on 8.9 and later.
  const LoadPlan none = plan_for(data_path("tiny-llama"), "none");
  EXPECT_NO_THROW(
      check_cuda_device(none, cuda_memory_needs(none, {}), 80, needs.total() * 2, "NVIDIA A100"));
  EXPECT_NO_THROW(check_cuda_device(plan, needs, 89, needs.total() * 2, "NVIDIA L4"));
  EXPECT_NO_THROW(check_cuda_device(plan, needs, 90, needs.total(), "NVIDIA H100"));
}

TEST(CudaDeviceCheck, NotEnoughFreeMemorySaysWhatIsNeeded) {
  const LoadPlan plan = plan_for(data_path("tiny-qwen2"), "fp8-row");
  const CudaMemoryNeeds needs = cuda_memory_needs(plan, {});
  EXPECT_GE(needs.weights, plan.resident_bytes);
  EXPECT_GT(needs.staging, 0u);
  try {
    check_cuda_device(plan, needs, 90, needs.total() - 1, "NVIDIA H100");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("needs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("GiB of GPU memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("NVIDIA H100 has"), std::string::npos) << msg;
    EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace fp8llm::test
