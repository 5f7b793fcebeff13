// The engine's LoRA adapters by name: which slot of the backend each occupies, its version (the
// prefix cache keys blocks by it, so a replaced adapter never reuses keys computed with its old
// factors), and how many unfinished requests use it. Adding, replacing and removing happen on any
// thread and take effect on the backend at the start of the next step (apply), between passes.
// Replacing keeps the slot: requests already running with the adapter use the new factors from
// the next step on; removing an adapter in use is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/backend.h"
#include "model/lora_weights.h"

namespace fp8llm {

class LoraSlots {
 public:
  LoraSlots(int max_loras, int64_t max_rank)
      : max_rank_(max_rank), slots_(static_cast<size_t>(max_loras)) {}
  bool enabled() const { return !slots_.empty(); }
  int64_t max_rank() const { return max_rank_; }

  void add(const std::string& name, LoraAdapter adapter, std::string config_json);
  // New factors of the same modules and rank; returns nothing until apply().
  void replace(const std::string& name, LoraAdapter adapter);
  // The same from factors on the device: `stage` puts them aside on the backend (Backend::
  // stage_lora, an Error leaving everything as it was), under the lock that apply() takes, so a
  // staging never overlaps the commit of the one before.
  void replace_staged(const std::string& name, int64_t rank,
                      const std::vector<std::pair<int64_t, LinearKind>>& modules,
                      const std::function<void(int slot)>& stage);
  void remove(const std::string& name);
  std::vector<std::string> names() const;
  // The adapter_config.json an adapter was added with (replace reads new factors against it).
  std::string config_of(const std::string& name) const;

  struct Use {
    int32_t slot = -1;
    uint64_t prefix_root = 0;
  };
  // A request starts using `name` (an Error for an unknown one); release() when it is done.
  Use acquire(const std::string& name);
  void release(int32_t slot);

  // Where apply() puts an adapter: its slot and factors (nullptr empties the slot); `commit`
  // makes a slot's staged factors current (Backend::commit_lora).
  using Sink = std::function<void(int slot, const LoraAdapter* adapter)>;
  using Commit = std::function<void(int slot)>;
  // On the step thread, before a pass: pushes what changed to the backend(s).
  void apply(const Sink& sink, const Commit& commit);

 private:
  struct Slot {
    std::string name;  // empty: free
    uint64_t version = 0;
    int users = 0;
    std::string config_json;
    std::optional<LoraAdapter> upload;  // factors not yet on the backend
    bool staged = false;                // factors staged on the backend, not yet committed
    bool clear = false;                 // empty the backend's slot
    std::vector<std::pair<int64_t, LinearKind>> modules;
    int64_t rank = 0;
  };
  Slot* find(const std::string& name);
  const Slot* find(const std::string& name) const;

  int64_t max_rank_;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  uint64_t next_version_ = 1;
};

}  // namespace fp8llm
