#include "sandbox/namespaces.hpp"

namespace lambent::sandbox {

Result<NamespaceLaunch> launch_namespaces(const SandboxSpec&, const std::string&,
                                          const NamespaceContext&) {
  return fail(Errc::kUnavailable, "namespace isolation is not implemented yet");
}

Result<void> probe_namespaces() {
  return fail(Errc::kUnavailable, "not implemented yet");
}

}  // namespace lambent::sandbox
