// LoraSlots, the engine's adapters by slot: what apply() pushes to the backend and when, for
// factors from host memory and factors staged on the device; a staging that fails changes
// nothing; every replacement gives the adapter new prefix-cache keys.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/lora_slots.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

LoraAdapter adapter(int64_t rank, float scale) {
  LoraAdapter a;
  a.rank = rank;
  a.scale = scale;
  a.modules.push_back({.layer = 0, .kind = LinearKind::Q, .a = {1}, .b = {2}});
  return a;
}

const std::vector<std::pair<int64_t, LinearKind>> kModules = {{0, LinearKind::Q}};

// What apply() did, in order: "set S scale" / "clear S" / "commit S".
std::vector<std::string> applied(LoraSlots& slots) {
  std::vector<std::string> log;
  slots.apply(
      [&](int slot, const LoraAdapter* a) {
        log.push_back(a == nullptr ? "clear " + std::to_string(slot)
                                   : "set " + std::to_string(slot) + " " +
                                         std::to_string(static_cast<int>(a->scale)));
      },
      [&](int slot) { log.push_back("commit " + std::to_string(slot)); });
  return log;
}

TEST(LoraSlots, StagedFactorsAreCommittedAtTheNextApplyAfterAnyPendingUpload) {
  LoraSlots slots(2, 16);
  slots.add("x", adapter(8, 2), "{}");
  const uint64_t root_added = slots.acquire("x").prefix_root;
  slots.release(0);
  // Staged before the adapter ever reached the backend: its upload (which sets the scale) goes
  // first, then the staged factors.
  std::vector<int> staged;
  slots.replace_staged("x", 8, kModules, [&](int slot) { staged.push_back(slot); });
  EXPECT_EQ(staged, std::vector<int>{0});
  EXPECT_EQ(applied(slots), (std::vector<std::string>{"set 0 2", "commit 0"}));
  EXPECT_TRUE(applied(slots).empty());
  const uint64_t root_staged = slots.acquire("x").prefix_root;
  slots.release(0);
  EXPECT_NE(root_staged, root_added);

  // A host replacement after a staged one wins: the staged copy is not committed over it.
  slots.replace_staged("x", 8, kModules, [](int) {});
  slots.replace("x", adapter(8, 3));
  EXPECT_EQ(applied(slots), (std::vector<std::string>{"set 0 3"}));

  // A staging that fails leaves the adapter as it was: nothing to apply, the same keys.
  const uint64_t before = slots.acquire("x").prefix_root;
  slots.release(0);
  EXPECT_THROW(
      slots.replace_staged("x", 8, kModules, [](int) { throw Error("a value is not finite"); }),
      Error);
  EXPECT_TRUE(applied(slots).empty());
  EXPECT_EQ(slots.acquire("x").prefix_root, before);
  slots.release(0);

  // Another rank or other modules are refused before anything is staged.
  bool called = false;
  EXPECT_NE(error_of([&] {
              slots.replace_staged("x", 4, kModules, [&](int) { called = true; });
            }).find("must have the adapter's rank (8) and modules"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              slots.replace_staged("x", 8, {{1, LinearKind::Q}}, [&](int) { called = true; });
            }).find("must have the adapter's rank (8) and modules"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              slots.replace_staged("nope", 8, kModules, [&](int) { called = true; });
            }).find("lora nope: no adapter of that name is loaded"),
            std::string::npos);
  EXPECT_FALSE(called);

  // Removing an adapter drops what was staged for it; the slot is emptied instead.
  slots.replace_staged("x", 8, kModules, [](int) {});
  slots.remove("x");
  EXPECT_EQ(applied(slots), (std::vector<std::string>{"clear 0"}));
}

}  // namespace
}  // namespace fp8llm::test
