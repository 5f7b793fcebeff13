#include "loader/quantize_checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/log.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/file_sink.h"
#include "loader/load_plan.h"
#include "loader/quantization_config.h"

namespace fp8llm {
namespace fs = std::filesystem;

std::vector<fs::path> companion_files(const fs::path& model_dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(model_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    const bool keep = name.starts_with("tokenizer") || name.starts_with("chat_template") ||
                      name == "generation_config.json" || name == "special_tokens_map.json" ||
                      name == "added_tokens.json" || name == "vocab.json" || name == "merges.txt";
    if (keep) out.push_back(e.path());
  }
  return out;
}

void check_output_directory(const fs::path& out_dir) {
  FP8LLM_CHECK(!fs::exists(out_dir), "{}: already exists (choose a new output directory)",
               out_dir.string());
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  FP8LLM_CHECK(fs::exists(parent), "{}: the parent directory does not exist", out_dir.string());
  FP8LLM_CHECK(fs::is_directory(parent), "{}: the parent {} is not a directory", out_dir.string(),
               parent.string());
  FP8LLM_CHECK(::access(parent.c_str(), W_OK) == 0, "{}: the parent directory is not writable ({})",
               out_dir.string(), std::strerror(errno));
}

namespace {

// "<out>.fp8llm-tmp-<pid>-<hex>": the pid says whether the process building it still runs, so a
// later run can remove what a killed one left (kill -9 runs no cleanup).
constexpr std::string_view kTempMarker = ".fp8llm-tmp-";

// The pid in a temporary directory name made for `out_name`, or 0 if `name` is not one.
pid_t temp_dir_owner(const std::string& name, const std::string& out_name) {
  const std::string prefix = out_name + std::string(kTempMarker);
  if (!name.starts_with(prefix)) return 0;
  const std::string rest = name.substr(prefix.size());
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos) return 0;
  long long pid = 0;
  for (size_t i = 0; i < dash; ++i) {
    if (rest[i] < '0' || rest[i] > '9' || pid > (1LL << 31)) return 0;
    pid = pid * 10 + (rest[i] - '0');
  }
  return static_cast<pid_t>(pid);
}

// A directory locked (flock) by the process building it: the lock ends with the process however
// it ends, and guards against a pid that names a live process of another pid namespace.
class LockedDir {
 public:
  explicit LockedDir(const fs::path& dir)
      : fd_(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~LockedDir() {
    if (fd_ >= 0) ::close(fd_);
  }
  LockedDir(const LockedDir&) = delete;
  LockedDir& operator=(const LockedDir&) = delete;
  bool lock(bool wait) { return fd_ >= 0 && ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) == 0; }

 private:
  int fd_;
};

// Removes the temporary directories next to `out_dir` that earlier runs left: their process no
// longer runs and nobody holds their lock.
void remove_stale_temp_dirs(const fs::path& parent, const std::string& out_name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const pid_t pid = temp_dir_owner(e.path().filename().string(), out_name);
    if (pid <= 0 || !e.is_directory(ec)) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // running (or not ours to signal)
    LockedDir dir(e.path());
    if (!dir.lock(/*wait=*/false)) continue;
    std::error_code removed;
    fs::remove_all(e.path(), removed);
    if (!removed) {
      log_info("removed {}, left by process {}, which no longer runs", e.path().string(), pid);
    }
  }
}

}  // namespace

void build_directory_atomically(const fs::path& out_dir,
                                const std::function<void(const fs::path&)>& fill) {
  check_output_directory(out_dir);
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  const std::string out_name = out_dir.filename().string();
  remove_stale_temp_dirs(parent, out_name);
  std::random_device rd;
  fs::path tmp;
  for (int attempt = 0;; ++attempt) {
    tmp = parent / fmt::format("{}{}{}-{:08x}", out_name, kTempMarker, ::getpid(), rd());
    // 0777 & ~umask, as mkdir(1) makes it (mkdtemp would make it 0700).
    if (::mkdir(tmp.c_str(), 0777) == 0) break;
    FP8LLM_CHECK(errno == EEXIST && attempt < 100, "{}: cannot create a temporary directory: {}",
                 tmp.string(), std::strerror(errno));
  }
  LockedDir lock(tmp);
  try {
    FP8LLM_CHECK(lock.lock(/*wait=*/true), "{}: cannot lock: {}", tmp.string(),
                 std::strerror(errno));
    fill(tmp);
    fs::rename(tmp, out_dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
}

void write_model_directory(const fs::path& source_dir, const fs::path& out_dir,
                           const nlohmann::json& quantization_config,
                           const std::function<void(const fs::path&)>& write_weights) {
  // Read before anything is written, so that a bad source fails with nothing to clean up.
  nlohmann::json config_json = nlohmann::json::parse(read_text_file(source_dir / "config.json"));
  check_json_depth(config_json, (source_dir / "config.json").string());
  if (quantization_config.is_null()) {
    config_json.erase("quantization_config");
  } else {
    config_json["quantization_config"] = quantization_config;
  }
  const std::vector<fs::path> companions = companion_files(source_dir);
  build_directory_atomically(out_dir, [&](const fs::path& tmp) {
    write_weights(tmp);
    for (const fs::path& f : companions) fs::copy_file(f, tmp / f.filename());
    write_text_file_atomically(tmp / "config.json", config_json.dump(2) + "\n");
  });
}

QuantizeSummary quantize_checkpoint(const fs::path& model_dir, Fp8Scheme scheme,
                                    const fs::path& out_dir, uint64_t max_shard_bytes,
                                    const StreamProgress& progress) {
  const ModelConfig config = load_model_config(model_dir);
  const Checkpoint checkpoint = Checkpoint::open(model_dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
  FP8LLM_CHECK(!plan.prequant,
               "{}: already an FP8 checkpoint ({}); quantize reads a BF16, F16 or "
               "F32 checkpoint",
               model_dir.string(), plan.prequant->description);

  QuantizeSummary summary;
  write_model_directory(model_dir, out_dir, quantization_config_for(scheme),
                        [&](const fs::path& tmp) {
                          FileSink sink(plan, tmp, max_shard_bytes);
                          const StreamStats stats = stream_weights(plan, sink, progress);
                          sink.finish();
                          summary.bytes_read = stats.bytes_read;
                          summary.files = sink.files();
                        });
  for (const auto& o : output_tensors(plan)) summary.bytes_written += o.nbytes;
  for (const auto& t : plan.tensors) summary.quantized_tensors += t.quantize.has_value();
  return summary;
}

}  // namespace fp8llm
