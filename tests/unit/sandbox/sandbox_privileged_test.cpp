// Namespace-mode Spawner tests: need root. Filled in with the namespaces launcher.
#include "sandbox_test_util.hpp"

namespace lambent::sandbox {
namespace {

TEST(NamespaceSandboxTest, RequiresRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  SUCCEED();
}

}  // namespace
}  // namespace lambent::sandbox
