#include "engine/lora_slots.h"

#include "core/error.h"
#include "kv/block_manager.h"

namespace fp8llm {
namespace {

std::vector<std::pair<int64_t, LinearKind>> modules_of(const LoraAdapter& a) {
  std::vector<std::pair<int64_t, LinearKind>> out;
  for (const LoraModule& m : a.modules) out.emplace_back(m.layer, m.kind);
  return out;
}

uint64_t root_of(int32_t slot, uint64_t version) {
  uint64_t x =
      kPrefixRoot ^ (static_cast<uint64_t>(slot) << 48) ^ (version * 0xbf58476d1ce4e5b9ull);
  x ^= x >> 31;
  return x * 0x94d049bb133111ebull;
}

}  // namespace

LoraSlots::Slot* LoraSlots::find(const std::string& name) {
  for (Slot& s : slots_)
    if (!s.name.empty() && s.name == name) return &s;
  return nullptr;
}

const LoraSlots::Slot* LoraSlots::find(const std::string& name) const {
  for (const Slot& s : slots_)
    if (!s.name.empty() && s.name == name) return &s;
  return nullptr;
}

void LoraSlots::add(const std::string& name, LoraAdapter adapter, std::string config_json) {
  std::lock_guard lock(mutex_);
  FP8LLM_CHECK(enabled(), "lora {}: this engine was loaded without adapter slots (--max-loras)",
               name);
  FP8LLM_CHECK(!name.empty(), "lora: an adapter needs a name");
  FP8LLM_CHECK(find(name) == nullptr, "lora {}: an adapter of that name is loaded already", name);
  FP8LLM_CHECK(adapter.rank <= max_rank_, "lora {}: rank {} exceeds --max-lora-rank {}", name,
               adapter.rank, max_rank_);
  Slot* free_slot = nullptr;
  for (Slot& s : slots_)
    if (s.name.empty() && s.users == 0 && !free_slot) free_slot = &s;
  FP8LLM_CHECK(free_slot != nullptr, "lora {}: all {} adapter slots are in use (--max-loras)", name,
               slots_.size());
  free_slot->name = name;
  free_slot->version = next_version_++;
  free_slot->config_json = std::move(config_json);
  free_slot->modules = modules_of(adapter);
  free_slot->rank = adapter.rank;
  free_slot->upload = std::move(adapter);
  free_slot->clear = false;
}

void LoraSlots::replace(const std::string& name, LoraAdapter adapter) {
  std::lock_guard lock(mutex_);
  Slot* s = find(name);
  FP8LLM_CHECK(s != nullptr, "lora {}: no adapter of that name is loaded", name);
  FP8LLM_CHECK(adapter.rank == s->rank && modules_of(adapter) == s->modules,
               "lora {}: the new factors must have the adapter's rank ({}) and modules", name,
               s->rank);
  s->version = next_version_++;
  s->upload = std::move(adapter);
  s->staged = false;
}

void LoraSlots::replace_staged(const std::string& name, int64_t rank,
                               const std::vector<std::pair<int64_t, LinearKind>>& modules,
                               const std::function<void(int slot)>& stage) {
  std::lock_guard lock(mutex_);
  Slot* s = find(name);
  FP8LLM_CHECK(s != nullptr, "lora {}: no adapter of that name is loaded", name);
  FP8LLM_CHECK(rank == s->rank && modules == s->modules,
               "lora {}: the new factors must have the adapter's rank ({}) and modules", name,
               s->rank);
  stage(static_cast<int>(s - slots_.data()));
  s->version = next_version_++;
  s->staged = true;  // a host upload still pending goes first (it sets the scale), then this
}

void LoraSlots::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  Slot* s = find(name);
  FP8LLM_CHECK(s != nullptr, "lora {}: no adapter of that name is loaded", name);
  FP8LLM_CHECK(s->users == 0, "lora {}: {} unfinished requests use it", name, s->users);
  s->name.clear();
  s->upload.reset();
  s->staged = false;
  s->clear = true;
  s->modules.clear();
}

std::vector<std::string> LoraSlots::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const Slot& s : slots_)
    if (!s.name.empty()) out.push_back(s.name);
  return out;
}

std::string LoraSlots::config_of(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Slot* s = find(name);
  FP8LLM_CHECK(s != nullptr, "lora {}: no adapter of that name is loaded", name);
  return s->config_json;
}

LoraSlots::Use LoraSlots::acquire(const std::string& name) {
  std::lock_guard lock(mutex_);
  Slot* s = find(name);
  if (s == nullptr) {
    std::string known;
    for (const Slot& x : slots_)
      if (!x.name.empty()) known += (known.empty() ? "" : ", ") + x.name;
    fail("lora: no adapter named '{}' (loaded: {})", name, known.empty() ? "none" : known);
  }
  ++s->users;
  const auto slot = static_cast<int32_t>(s - slots_.data());
  return {slot, root_of(slot, s->version)};
}

void LoraSlots::release(int32_t slot) {
  std::lock_guard lock(mutex_);
  if (slot >= 0 && slot < static_cast<int32_t>(slots_.size()))
    --slots_[static_cast<size_t>(slot)].users;
}

void LoraSlots::apply(const Sink& sink, const Commit& commit) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.upload || s.staged) {
      if (s.upload) sink(static_cast<int>(i), &*s.upload);
      if (s.staged) commit(static_cast<int>(i));
      s.upload.reset();
      s.staged = false;
    } else if (s.clear) {
      sink(static_cast<int>(i), nullptr);
    }
    s.clear = false;
  }
}

}  // namespace fp8llm
