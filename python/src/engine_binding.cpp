// fp8llm._core.Engine: the C++ Engine and the model's text layer (TextModel) for Python. Every
// long call releases the interpreter lock and takes the engine's own lock, so threads can share an
// engine one call at a time. The vLLM-shaped API (LLM, SamplingParams, outputs) is fp8llm/*.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/json_depth.h"
#include "fp8llm/engine.h"
#include "serving/sampling_json.h"
#include "serving/text_generation.h"
#include "tensor.h"
#include "tensor_input.h"
#include "text/text_model.h"

namespace fp8llm::python {
namespace py = pybind11;

namespace {

class PyEngine : public std::enable_shared_from_this<PyEngine> {
 public:
  explicit PyEngine(const LoadOptions& options)
      : model_dir_(options.model_dir), device_(options.device) {
    py::gil_scoped_release nogil;
    engine_ = Engine::load(options);
  }

  // Runs `f(engine)` without the interpreter lock, one call at a time.
  template <typename F>
  auto locked(F&& f) {
    py::gil_scoped_release nogil;
    std::lock_guard lock(mutex_);
    return f(*engine_);
  }

  Engine& engine() { return *engine_; }

  // The tokenizer and chat template, read when first needed (a checkpoint made for measurements
  // may have none; token-id prompts need neither).
  const TextModel& text() {
    if (!text_) text_ = TextModel::load(model_dir_);
    return *text_;
  }
  bool has_tokenizer() const { return std::filesystem::exists(model_dir_ / "tokenizer.json"); }
  Device device() const { return device_; }

  std::atomic<int64_t> live_views{0};

 private:
  std::filesystem::path model_dir_;
  Device device_;
  std::unique_ptr<Engine> engine_;
  std::optional<TextModel> text_;
  std::mutex mutex_;
};

// A view of the live weights counts as long as it (or an export of it) lives: sleep(2) on CUDA
// frees the memory such views point at.
struct ViewLease {
  explicit ViewLease(std::shared_ptr<PyEngine> e) : engine(std::move(e)) { ++engine->live_views; }
  ~ViewLease() { --engine->live_views; }
  ViewLease(const ViewLease&) = delete;
  ViewLease& operator=(const ViewLease&) = delete;
  std::shared_ptr<PyEngine> engine;
};

// The load options from LLM's keyword arguments, as a dict: a key this build does not know is an
// Error (a misspelt option would otherwise be ignored).
LoadOptions load_options(const py::dict& kw) {
  LoadOptions o;
  std::set<std::string> known;
  const auto get = [&](const char* key) -> py::object {
    known.insert(key);
    return kw.contains(key) ? py::reinterpret_borrow<py::object>(kw[key]) : py::none();
  };
  const auto text = [&](const char* key, const std::string& fallback) {
    const py::object v = get(key);
    return v.is_none() ? fallback : v.cast<std::string>();
  };
  const auto integer = [&](const char* key, int64_t fallback) {
    const py::object v = get(key);
    return v.is_none() ? fallback : v.cast<int64_t>();
  };
  o.model_dir = text("model", "");
  o.quantization = parse_quantization(text("quantization", "fp8-block"), "quantization");
  o.device = parse_device(text("device", "cpu"), "device");
  o.quantization_config = text("quantization_config", "");
  const py::object kv_memory = get("kv_memory");
  o.kv_memory_gib = kv_memory.is_none() ? 0.0 : kv_memory.cast<double>();
  o.max_context = integer("max_context", 0);
  o.max_seqs = integer("max_num_seqs", o.max_seqs);
  o.max_batch_tokens = integer("max_num_batched_tokens", 0);
  o.kv_cache_dtype = parse_kv_cache_dtype(text("kv_cache_dtype", "auto"), "kv_cache_dtype");
  o.block_size = integer("block_size", o.block_size);
  FP8LLM_CHECK(o.block_size >= 1, "block_size {} must be positive", o.block_size);
  const py::object prefix = get("enable_prefix_caching");
  o.prefix_caching = prefix.is_none() ? o.prefix_caching : prefix.cast<bool>();
  const py::object eager = get("enforce_eager");
  o.cuda_graphs = eager.is_none() ? o.cuda_graphs : !eager.cast<bool>();
  o.fp8_gemm = parse_fp8_gemm(text("fp8_gemm", "tensor-core"), "fp8_gemm");
  const py::object offline = get("offline");
  o.offline = !offline.is_none() && offline.cast<bool>();
  o.cache_dir = text("cache_dir", "");
  o.registry = text("registry", "");
  const int64_t tp = integer("tensor_parallel_size", 1);
  FP8LLM_CHECK(tp >= 1 && tp <= 64, "tensor_parallel_size {} must be in [1, 64]", tp);
  o.tensor_parallel = static_cast<int>(tp);
  const int64_t max_loras = integer("max_loras", 0);
  FP8LLM_CHECK(max_loras >= 0 && max_loras <= 1024, "max_loras {} must be in [0, 1024]", max_loras);
  o.max_loras = static_cast<int>(max_loras);
  o.max_lora_rank = integer("max_lora_rank", o.max_lora_rank);
  for (const auto& [key, value] : kw) {
    const std::string k = key.cast<std::string>();
    FP8LLM_CHECK(known.count(k), "LLM: unknown option '{}'", k);
  }
  return o;
}

py::dict load_summary(const LoadReport& r) {
  py::dict d;
  d["quantization"] = std::string(to_string(r.quantization));
  d["seconds"] = r.seconds;
  d["stream_seconds"] = r.stream_seconds;
  d["bytes_read"] = r.bytes_read;
  d["resident_bytes"] = r.resident_bytes;
  d["quantized_tensors"] = r.quantized_tensors;
  d["largest_tensor_bytes"] = r.largest_tensor_bytes;
  d["peak_host_bytes"] = r.peak_host_bytes;
  d["process_peak_host_bytes"] = r.process_peak_host_bytes;
  d["peak_device_bytes"] = r.peak_device_bytes;
  d["kv_cache_dtype"] = std::string(to_string(r.kv_cache_dtype));
  d["kv_blocks"] = r.kv_blocks;
  d["kv_block_size"] = r.kv_block_size;
  d["kv_bytes"] = r.kv_bytes;
  py::list steps;
  for (const TimedStep& s : r.steps) {
    py::dict step;
    step["name"] = s.name;
    step["start"] = s.start;
    step["seconds"] = s.seconds;
    steps.append(step);
  }
  d["steps"] = steps;
  return d;
}

py::object logprobs_of(const std::vector<TokenLogprob>& lps, bool asked) {
  if (!asked) return py::none();
  py::list out;
  for (const TokenLogprob& t : lps) out.append(py::make_tuple(t.id, t.logprob, t.top));
  return out;
}

py::dict completion(int index, const std::vector<int32_t>& ids, py::object text,
                    const std::vector<TokenLogprob>& lps, bool asked, FinishReason reason) {
  py::dict c;
  c["index"] = index;
  c["token_ids"] = ids;
  c["text"] = std::move(text);
  c["logprobs"] = logprobs_of(lps, asked);
  c["finish_reason"] = std::string(to_string(reason));
  return c;
}

py::list generate(PyEngine& self, const std::vector<std::vector<int32_t>>& prompts,
                  const std::vector<std::string>& samplings, const std::vector<std::string>& loras,
                  const py::object& progress) {
  FP8LLM_CHECK(prompts.size() == samplings.size(), "generate: {} prompts and {} sampling_params",
               prompts.size(), samplings.size());
  FP8LLM_CHECK(loras.empty() || loras.size() == prompts.size(),
               "generate: {} prompts and {} lora requests", prompts.size(), loras.size());
  std::vector<TextRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(samplings[i]);
    } catch (const nlohmann::json::exception& e) {
      fail("sampling_params: {}", e.what());
    }
    check_json_depth(j, "sampling_params");
    TextRequest r{prompts[i], parse_sampling(j, "sampling_params", SamplingParams{})};
    if (!loras.empty()) r.lora = loras[i];
    requests.push_back(std::move(r));
  }
  // A failing progress callback must not leave requests in the engine: its error waits for the
  // end of the batch.
  std::optional<py::error_already_set> progress_error;
  std::function<void(size_t, size_t)> report;
  if (!progress.is_none()) {
    report = [&](size_t done, size_t total) {
      py::gil_scoped_acquire gil;
      if (progress_error) return;
      try {
        progress(done, total);
      } catch (py::error_already_set& e) {
        progress_error = std::move(e);
      }
    };
  }
  py::list out;
  if (self.has_tokenizer()) {
    const TextModel& text = self.text();
    const std::vector<TextResult> results =
        self.locked([&](Engine& e) { return generate_text(e, text, requests, report); });
    if (progress_error) throw std::move(*progress_error);
    for (size_t i = 0; i < results.size(); ++i) {
      const TextResult& r = results[i];
      const SamplingParams& p = requests[i].sampling.params;
      py::list outputs;
      for (const TextCompletion& c : r.outputs)
        outputs.append(completion(c.index, c.token_ids, py::str(c.text), c.logprobs,
                                  p.logprobs >= 0, c.finish_reason));
      out.append(py::make_tuple(r.prompt, r.cached_prompt_tokens, outputs,
                                logprobs_of(r.prompt_logprobs, p.prompt_logprobs >= 0)));
    }
    return out;
  }
  // No tokenizer: token ids in and out, and no text (as vLLM's skip_tokenizer_init).
  std::vector<GenerationRequest> plain;
  for (const TextRequest& r : requests) {
    FP8LLM_CHECK(r.sampling.stop.empty(),
                 "stop strings need the model's tokenizer, and this model directory has none");
    plain.push_back({r.prompt, r.sampling.params, r.lora});
  }
  const std::vector<RequestOutput> results =
      self.locked([&](Engine& e) { return e.generate(plain, report); });
  if (progress_error) throw std::move(*progress_error);
  for (size_t i = 0; i < results.size(); ++i) {
    const RequestOutput& r = results[i];
    const SamplingParams& p = plain[i].params;
    py::list outputs;
    for (const CompletionOutput& c : r.outputs)
      outputs.append(completion(c.index, c.token_ids, py::none(), c.logprobs, p.logprobs >= 0,
                                c.finish_reason.value_or(FinishReason::Length)));
    out.append(py::make_tuple(r.prompt_ids, r.cached_prompt_tokens, outputs,
                              logprobs_of(r.prompt_logprobs, p.prompt_logprobs >= 0)));
  }
  return out;
}

py::array_t<float> logits(PyEngine& self, const std::vector<int32_t>& ids) {
  const std::vector<float> values = self.locked([&](Engine& e) { return e.logits(ids); });
  const auto vocab = static_cast<py::ssize_t>(self.engine().vocab_size());
  py::array_t<float> out({static_cast<py::ssize_t>(ids.size()), vocab});
  std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(float));
  return out;
}

StateDictForm form_of(const std::string& form) {
  if (form == "stored") return StateDictForm::Stored;
  if (form == "dequantized") return StateDictForm::Dequantized;
  fail("state_dict: form '{}' (expected 'stored' or 'dequantized')", form);
}

py::list state_dict_views(const std::shared_ptr<PyEngine>& self) {
  const std::vector<StateDictView> views =
      self->locked([](Engine& e) { return e.state_dict_views(); });
  const auto lease = std::make_shared<ViewLease>(self);
  py::list out;
  for (const StateDictView& v : views) {
    Tensor t;
    t.name = v.entry.name;
    t.dtype = *dtype_from_name(v.entry.dtype);
    t.shape = v.entry.shape;
    t.strides = v.strides;
    t.data = v.data;
    t.device = v.device;
    t.owner = lease;
    out.append(std::move(t));
  }
  return out;
}

py::list state_dict_copies(PyEngine& self, const std::string& form) {
  std::vector<Tensor> copies = self.locked([&](Engine& e) {
    std::vector<Tensor> ts;
    e.visit_state_dict(form_of(form), [&](const StateDictTensor& t) {
      ts.push_back(
          Tensor::owning(t.entry.name, *dtype_from_name(t.entry.dtype), t.entry.shape, t.bytes));
    });
    return ts;
  });
  py::list out;
  for (Tensor& t : copies) out.append(std::move(t));
  return out;
}

// (name, tensor) pairs as the engine takes them; `inputs` keeps their memory valid.
std::vector<WeightTensor> named_inputs(const char* what, const py::iterable& named,
                                       std::vector<InputTensor>& inputs) {
  for (const py::handle& item : named) {
    FP8LLM_CHECK(
        py::isinstance<py::sequence>(item) && !py::isinstance<py::str>(item) && py::len(item) == 2,
        "{}: expected (name, tensor) pairs", what);
    const auto pair = py::reinterpret_borrow<py::sequence>(item);
    inputs.push_back(input_tensor(pair[0].cast<std::string>(), pair[1]));
  }
  std::vector<WeightTensor> tensors;
  for (const InputTensor& in : inputs) tensors.push_back(in.tensor);
  return tensors;
}

void add_lora_tensors(PyEngine& self, const std::string& name, const std::string& config_json,
                      const py::iterable& named) {
  std::vector<InputTensor> inputs;
  const std::vector<WeightTensor> tensors = named_inputs("add_lora", named, inputs);
  self.locked([&](Engine& e) {
    e.add_lora(name, config_json, tensors);
    return 0;
  });
}

void replace_lora(PyEngine& self, const std::string& name, const py::iterable& named) {
  std::vector<InputTensor> inputs;
  const std::vector<WeightTensor> tensors = named_inputs("replace_lora", named, inputs);
  self.locked([&](Engine& e) {
    e.replace_lora(name, tensors);
    return 0;
  });
}

py::dict update_weights(PyEngine& self, const py::iterable& named) {
  std::vector<InputTensor> inputs;
  const std::vector<WeightTensor> tensors = named_inputs("update_weights", named, inputs);
  const WeightUpdateReport r = self.locked([&](Engine& e) { return e.update_weights(tensors); });
  py::dict d;
  d["tensors"] = r.tensors;
  d["quantized"] = r.quantized;
  d["bytes"] = r.bytes;
  d["check_seconds"] = r.check_seconds;
  d["seconds"] = r.seconds;
  return d;
}

void sleep(PyEngine& self, int level) {
  const int64_t views = self.live_views.load();
  // Host weights stay where they are at level 2, so views of them stay valid.
  FP8LLM_CHECK(level != 2 || views == 0 || self.device() == Device::Cpu,
               "sleep(2): {} views of the stored state dict are alive; they point at the "
               "weights' device memory, which level 2 frees (drop them first)",
               views);
  self.locked([&](Engine& e) {
    e.sleep(level);
    return 0;
  });
}

py::dict stats(PyEngine& self) {
  const EngineStats s = self.locked([](Engine& e) { return e.stats(); });
  py::dict d;
  d["running"] = s.running;
  d["waiting"] = s.waiting;
  d["kv_blocks_total"] = s.kv_blocks_total;
  d["kv_blocks_used"] = s.kv_blocks_used;
  d["block_size"] = s.block_size;
  d["prefix_query_tokens"] = s.prefix_query_tokens;
  d["prefix_hit_tokens"] = s.prefix_hit_tokens;
  d["prompt_tokens"] = s.prompt_tokens;
  d["generated_tokens"] = s.generated_tokens;
  d["preemptions"] = s.preemptions;
  d["steps"] = s.steps;
  return d;
}

}  // namespace

void bind_engine(py::module_& m) {
  m.def("cuda_available", &cuda_device_available,
        "Whether this build has the CUDA backend and a CUDA device is present.");
  py::class_<PyEngine, std::shared_ptr<PyEngine>>(m, "Engine")
      .def(py::init([](const py::dict& options) {
             return std::make_shared<PyEngine>(load_options(options));
           }),
           py::arg("options"))
      .def("load_summary", [](PyEngine& e) { return load_summary(e.engine().load_report()); })
      .def_property_readonly("vocab_size", [](PyEngine& e) { return e.engine().vocab_size(); })
      .def_property_readonly("max_context", [](PyEngine& e) { return e.engine().max_context(); })
      .def_property_readonly("eos_token_ids",
                             [](PyEngine& e) { return e.engine().eos_token_ids(); })
      .def_property_readonly("has_tokenizer", &PyEngine::has_tokenizer)
      .def("encode", [](PyEngine& e, const std::string& text) { return e.text().encode(text); })
      .def(
          "decode",
          [](PyEngine& e, const std::vector<int32_t>& ids, bool skip_special_tokens) {
            return e.text().decode(ids, skip_special_tokens);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = true)
      .def(
          "encode_chat",
          [](PyEngine& e, const std::string& messages, const std::string& variables) {
            nlohmann::ordered_json conversation, extra;
            try {
              conversation = nlohmann::ordered_json::parse(messages);
              extra = variables.empty() ? nlohmann::ordered_json()
                                        : nlohmann::ordered_json::parse(variables);
            } catch (const nlohmann::json::exception& x) {
              fail("chat: the messages are not JSON: {}", x.what());
            }
            check_json_depth(conversation, "chat: messages");
            check_json_depth(extra, "chat: variables");
            return e.text().encode_chat(conversation, extra);
          },
          py::arg("messages_json"), py::arg("variables_json") = "")
      .def("generate", &generate, py::arg("prompts"), py::arg("sampling_json"),
           py::arg("loras") = std::vector<std::string>{}, py::arg("progress") = py::none())
      .def("add_lora_dir",
           [](PyEngine& e, const std::string& name, const std::string& dir) {
             e.locked([&](Engine& x) {
               x.add_lora(name, std::filesystem::path(dir));
               return 0;
             });
           })
      .def("add_lora_tensors", &add_lora_tensors, py::arg("name"), py::arg("config_json"),
           py::arg("named_tensors"))
      .def("replace_lora", &replace_lora, py::arg("name"), py::arg("named_tensors"))
      .def("remove_lora",
           [](PyEngine& e, const std::string& name) {
             e.locked([&](Engine& x) {
               x.remove_lora(name);
               return 0;
             });
           })
      .def("lora_names", [](PyEngine& e) { return e.engine().lora_names(); })
      .def("logits", &logits, py::arg("prompt_token_ids"))
      .def("state_dict_listing",
           [](PyEngine& e, const std::string& form) {
             py::list out;
             for (const StateDictEntry& x : e.engine().state_dict(form_of(form)))
               out.append(py::make_tuple(x.name, x.dtype, x.shape));
             return out;
           })
      .def("state_dict_views", &state_dict_views)
      .def("state_dict_copies", &state_dict_copies, py::arg("form"))
      .def("update_weights", &update_weights, py::arg("named_tensors"))
      .def("sleep", &sleep, py::arg("level"))
      .def("wake_up",
           [](PyEngine& e) {
             e.locked([](Engine& x) {
               x.wake_up();
               return 0;
             });
           })
      .def_property_readonly("sleep_level", [](PyEngine& e) { return e.engine().sleep_level(); })
      .def("reset_prefix_cache",
           [](PyEngine& e) {
             e.locked([](Engine& x) {
               x.reset_prefix_cache();
               return 0;
             });
           })
      .def_property_readonly("live_views", [](PyEngine& e) { return e.live_views.load(); })
      .def("stats", &stats);
}

}  // namespace fp8llm::python
