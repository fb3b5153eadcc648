#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace lambent {
namespace {

TEST(Ids, UuidIsVersion4AndUnique) {
  const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_uuid();
    EXPECT_TRUE(std::regex_match(id, re)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, RandomHexAndTokenHaveRequestedShape) {
  EXPECT_TRUE(std::regex_match(random_hex(32), std::regex("^[0-9a-f]{32}$")));
  EXPECT_TRUE(std::regex_match(random_token(40), std::regex("^[A-Za-z0-9]{40}$")));
}

}  // namespace
}  // namespace lambent
