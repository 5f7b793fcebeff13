// WorkerGroup: a helper's exception reaches the owner and stops the others; stop_and_join wakes
// helpers that wait; destroying a group joins its threads.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "core/worker_group.h"

namespace fp8llm {
namespace {

TEST(WorkerGroup, FirstFailureStopsTheOthersAndReachesTheOwner) {
  WorkerGroup group;
  std::atomic<int> stopped{0};
  std::atomic<int> next{0};
  group.start(4, [&] {
    if (next.fetch_add(1) == 2) throw std::runtime_error("helper failed");
    // The others wait until the group stops.
    std::unique_lock lock(group.mutex());
    group.cv().wait(lock, [&] { return group.stopping(); });
    ++stopped;
  });
  {
    std::unique_lock lock(group.mutex());
    group.cv().wait(lock, [&] { return group.error() != nullptr; });
    EXPECT_TRUE(group.stopping());
    EXPECT_THROW(group.rethrow_error(), std::runtime_error);
  }
  group.join();
  EXPECT_EQ(stopped.load(), 3);
}

TEST(WorkerGroup, StopAndJoinWakesWaitingHelpers) {
  std::atomic<int> woke{0};
  {
    WorkerGroup group;
    group.start(3, [&] {
      std::unique_lock lock(group.mutex());
      group.cv().wait(lock, [&] { return group.stopping(); });
      ++woke;
    });
    group.stop_and_join();
    EXPECT_EQ(woke.load(), 3);
    std::lock_guard lock(group.mutex());
    EXPECT_EQ(group.error(), nullptr);
  }
}

TEST(WorkerGroup, DestructionStopsAndJoins) {
  std::atomic<int> finished{0};
  {
    WorkerGroup group;
    group.start(2, [&] {
      std::unique_lock lock(group.mutex());
      group.cv().wait(lock, [&] { return group.stopping(); });
      ++finished;
    });
  }
  EXPECT_EQ(finished.load(), 2);
}

TEST(WorkerGroup, HelpersThatFinishOnTheirOwnAreJoined) {
  std::atomic<int> done{0};
  WorkerGroup group;
  group.start(5, [&] { ++done; });
  group.join();
  EXPECT_EQ(done.load(), 5);
  std::lock_guard lock(group.mutex());
  EXPECT_FALSE(group.stopping());
}

}  // namespace
}  // namespace fp8llm
