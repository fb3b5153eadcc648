#include "engine/placement.hpp"

#include <gtest/gtest.h>

namespace lambent::engine {
namespace {

TEST(Placement, NewEnvironmentsGoToTheShardWithFewest) {
  Placement p({{0}, {1}, {2}});
  EXPECT_EQ(p.choose(-1), 0);
  p.add(0);
  EXPECT_EQ(p.choose(-1), 1);
  p.add(1);
  p.add(2);
  p.add(1);
  EXPECT_EQ(p.choose(-1), 0);  // 1, 2, 1: the lowest index on a tie
  p.remove(1);
  p.remove(1);
  EXPECT_EQ(p.choose(-1), 1);
  EXPECT_EQ(p.environments(1), 0);
  EXPECT_EQ(p.environments(2), 1);
}

TEST(Placement, TheInvokingShardKeepsItsEnvironmentWhileWithinAQuarterOfTheFewest) {
  Placement p({{0}, {1}});
  EXPECT_EQ(p.choose(1), 1);
  p.add(1);  // 0, 1
  EXPECT_EQ(p.choose(1), 1);
  p.add(1);  // 0, 2: one too many
  EXPECT_EQ(p.choose(1), 0);
  for (int i = 0; i < 8; ++i) p.add(0);  // 8, 2
  EXPECT_EQ(p.choose(0), 1);
  for (int i = 0; i < 6; ++i) p.add(1);  // 8, 8
  for (int i = 0; i < 3; ++i) p.add(1);  // 8, 11: 8 + 1 + 2
  EXPECT_EQ(p.choose(1), 1);
  p.add(1);  // 8, 12
  EXPECT_EQ(p.choose(1), 0);
  // Whatever shard every invoke arrives on, the counts stay within 25% (and 2).
  Placement q({{0}, {1}});
  for (int i = 0; i < 100; ++i) q.add(q.choose(0));
  EXPECT_LE(q.environments(0), q.environments(1) + 2 + q.environments(1) / 4);
  EXPECT_EQ(q.environments(0) + q.environments(1), 100);
}

TEST(Placement, ANewEnvironmentGoesWhereFewestAreWorking) {
  Placement p({{0}, {1}});
  p.add(0);
  p.working(0, +1);           // one running on shard 0
  EXPECT_EQ(p.choose(0), 1);  // not beside it, though the invoke came in there
  p.add(1);
  p.working(1, +1);
  EXPECT_EQ(p.choose(0), 0);  // both busy: the invoking shard again
  p.working(0, -1);
  p.add(0);
  p.add(0);  // shard 0: 3 environments, 0 working; shard 1: 1, 1 working
  EXPECT_EQ(p.choose(1), 0);
  EXPECT_EQ(p.working(0), 0);
  EXPECT_EQ(p.working(1), 1);
}

TEST(Placement, EnvironmentsUpToTheShardsVcpusArePlacedOnItsCpus) {
  Placement p({{0, 2}, {1, 3}});
  EXPECT_EQ(p.cpus_for(0, 128), (std::vector<int>{0, 2}));
  EXPECT_EQ(p.cpus_for(1, 1769), (std::vector<int>{1, 3}));  // one vCPU on Lambda
  EXPECT_EQ(p.cpus_for(1, 3538), (std::vector<int>{1, 3}));  // two
  EXPECT_TRUE(p.cpus_for(1, 3539).empty());                  // three: anywhere
  EXPECT_TRUE(p.cpus_for(0, 10240).empty());
}

TEST(Placement, OneCpuPerShardPlacesOnlyUpToOneVcpu) {
  Placement p({{0}, {1}});
  EXPECT_EQ(p.cpus_for(1, 1769), (std::vector<int>{1}));
  EXPECT_TRUE(p.cpus_for(1, 1770).empty());
}

TEST(Placement, AShardWithoutKnownCpusPlacesNothing) {
  Placement p({{}, {}});
  EXPECT_TRUE(p.cpus_for(0, 128).empty());
}

}  // namespace
}  // namespace lambent::engine
