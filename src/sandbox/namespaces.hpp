// sandbox/namespaces.hpp — the namespaces launcher: clone into new mount,
// PID, IPC, UTS and network namespaces, assemble the root, drop privileges,
// install seccomp, exec. Internal to sandbox/; runs only in the helper.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/network.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::sandbox {

class SeccompFilter;

struct NamespaceContext {
  uid_t uid = 993;
  gid_t gid = 993;
  CgroupVersion cgroup_version = CgroupVersion::kNone;
  std::string cgroup_name = "lambent";
  const SeccompFilter* seccomp = nullptr;
};

struct NamespaceLaunch {
  pid_t pid = -1;  // the environment's init, in the helper's PID namespace
  UniqueFd listener;
  UniqueFd output;
  // Init writes the bootstrap's wait status here (4 bytes) before it exits.
  UniqueFd status;
  std::unique_ptr<Cgroup> cgroup;
  nlohmann::json timings;  // microseconds per step
};

// `env_dir` is an empty private folder of the helper used as the mount point
// of the new root (only inside the new mount namespace).
// `egress` (may be null: loopback only) wires the environment to the host.
Result<NamespaceLaunch> launch_namespaces(const SandboxSpec& spec, const std::string& env_dir,
                                          const NamespaceContext& ctx,
                                          const EgressPlan* egress = nullptr);

// Whether this process may create the namespaces (root, or a user namespace).
Result<void> probe_namespaces();

}  // namespace lambent::sandbox
