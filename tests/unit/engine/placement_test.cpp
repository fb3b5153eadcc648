#include "engine/placement.hpp"

#include <gtest/gtest.h>

namespace lambent::engine {
namespace {

TEST(Placement, NewEnvironmentsGoToTheShardWithFewest) {
  Placement p({{0}, {1}, {2}});
  EXPECT_EQ(p.least_loaded(), 0);
  p.add(0);
  EXPECT_EQ(p.least_loaded(), 1);
  p.add(1);
  p.add(2);
  p.add(1);
  EXPECT_EQ(p.least_loaded(), 0);  // 1, 2, 1: the lowest index on a tie
  p.remove(1);
  p.remove(1);
  EXPECT_EQ(p.least_loaded(), 1);
  EXPECT_EQ(p.environments(1), 0);
  EXPECT_EQ(p.environments(2), 1);
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
