// The perplexity windows against plans worked out by hand from the definition in eval/windows.h.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "eval/windows.h"
#include "test_util.h"

namespace fp8llm::eval {
namespace {

using W = std::vector<Window>;

TEST(PerplexityWindows, OverlappingWindowsScoreEveryTargetOnce) {
  // 10 ids, windows of 4 every 2: after the first, each window scores its last 2 tokens.
  const W plan = plan_windows(10, 4, 2);
  EXPECT_EQ(plan, (W{{0, 4, 1}, {2, 6, 4}, {4, 8, 6}, {6, 10, 8}}));
  EXPECT_EQ(scored_positions(plan), 9);
}

TEST(PerplexityWindows, StrideOneScoresOneTargetPerWindow) {
  const W plan = plan_windows(6, 3, 1);
  EXPECT_EQ(plan, (W{{0, 3, 1}, {1, 4, 3}, {2, 5, 4}, {3, 6, 5}}));
  EXPECT_EQ(scored_positions(plan), 5);
}

TEST(PerplexityWindows, LastWindowIsCutAtTheEnd) {
  // Windows of 4 every 3 over 8 ids: the third starts at 6 and holds only 2 ids.
  const W plan = plan_windows(8, 4, 3);
  EXPECT_EQ(plan, (W{{0, 4, 1}, {3, 7, 4}, {6, 8, 7}}));
  EXPECT_EQ(scored_positions(plan), 7);
}

TEST(PerplexityWindows, DisjointWindowsLeaveEachFirstTokenAsContext) {
  // stride == context: ids 4 and 8 open their windows and are never targets.
  const W plan = plan_windows(10, 4, 4);
  EXPECT_EQ(plan, (W{{0, 4, 1}, {4, 8, 5}, {8, 10, 9}}));
  EXPECT_EQ(scored_positions(plan), 7);
}

TEST(PerplexityWindows, WindowWithNoTargetIsDropped) {
  // The window [8, 9) would hold one id, which is context only.
  EXPECT_EQ(plan_windows(9, 4, 4), (W{{0, 4, 1}, {4, 8, 5}}));
}

TEST(PerplexityWindows, ShortTextIsOneWindow) {
  EXPECT_EQ(plan_windows(3, 512, 256), (W{{0, 3, 1}}));
  EXPECT_EQ(plan_windows(2, 2, 1), (W{{0, 2, 1}}));
  EXPECT_EQ(plan_windows(4, 4, 2), (W{{0, 4, 1}}));
}

TEST(PerplexityWindows, BadArgumentsAreErrors) {
  using test::error_of;
  EXPECT_NE(error_of([] { plan_windows(10, 1, 1); }).find("context 1"), std::string::npos);
  EXPECT_NE(error_of([] { plan_windows(10, 4, 0); }).find("stride 0"), std::string::npos);
  EXPECT_NE(error_of([] { plan_windows(10, 4, 5); }).find("stride 5"), std::string::npos);
  EXPECT_NE(error_of([] { plan_windows(1, 4, 2); }).find("1 tokens"), std::string::npos);
  EXPECT_EQ(error_of([] { plan_windows(2, 2, 2); }), "");
}

}  // namespace
}  // namespace fp8llm::eval
