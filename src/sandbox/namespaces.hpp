// sandbox/namespaces.hpp — the namespaces launcher, in two phases so that
// sandboxes can be made ahead of demand:
//   1. start_blank(): cgroup, clone, and an init that builds everything that
//      does not depend on the function — namespaces, loopback and the Runtime
//      API listener, the read-only root with /usr, /etc, /dev, /var/runtime,
//      pivot_root, /proc — and then waits. A blank may also carry a *zygote*:
//      the runtime's interpreter already started (as the sandbox user, under
//      seccomp), waiting for its function.
//   2. assign_blank(): the function's part — /var/task (and /opt) attached as
//      detached read-only mounts the helper cloned from the host, /tmp of the
//      function's size, then the bootstrap is exec'd (or the zygote released
//      with the function's environment).
// Both phases are asynchronous for the helper: it polls each blank's control
// socket and reads what init reports with read_init_report().
// Internal to sandbox/; runs only in the helper.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

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
  // The helper is not root: a user namespace maps the sandbox user to the
  // helper's own uid/gid, and init holds capabilities only inside it.
  bool user_namespace = false;
  // Without a writable cgroup hierarchy (rootless), environments run without
  // a memory/pids cgroup; the helper warns once.
  bool cgroups = true;
  // cgroup v1: also join the freezer hierarchy (needed only to freeze idle
  // environments).
  bool freezer = true;
  // Root mode: the read-only root every sandbox shares (build_root_template),
  // in the helper's own mount namespace. Empty: each init assembles its own.
  std::string root_template;
};

struct BlankPlan {
  std::string id;   // names the cgroup
  std::string dir;  // empty private folder: mount point of the new root (inside only)
  std::string runtime_root;
  CgroupLimits limits;
  // Root mode: /tmp is mounted with this size ahead (the latest spawn's);
  // assignment only resizes it when the function's differs.
  std::uint64_t tmp_bytes = 512ull << 20;
  const EgressPlan* egress = nullptr;  // null: loopback only
  // A zygote: argv/env of the runtime started ahead (env without the
  // function's variables; it receives them at assignment). Empty: none.
  std::vector<std::string> zygote_argv, zygote_env;
  std::uint32_t max_fds = 1024;
  // Root mode: the network namespace of an ended sandbox (an nsfs fd), entered
  // instead of creating one when no socket is left in it. -1: a new one.
  int netns = -1;
};

// A booting, waiting or assigned pre-made sandbox.
struct Blank {
  pid_t pid = -1;     // its init, in the helper's PID namespace
  UniqueFd control;   // the helper's end of init's control socket
  UniqueFd output;    // read end of stdout+stderr
  UniqueFd status;    // init writes the bootstrap's wait status here (4 bytes)
  UniqueFd listener;  // the Runtime API listener, once init reported ready
  UniqueFd netns;     // its network namespace (root mode), once init reported ready
  std::unique_ptr<Cgroup> cgroup;
  std::int64_t clone_us = 0;  // the helper's clone of init
};

// Creates the cgroup and clones init; returns at once (init reports readiness
// on `control`).
Result<Blank> start_blank(const BlankPlan& plan, const NamespaceContext& ctx);

// Root mode, once per helper: moves the helper into a mount namespace of its
// own (a slave of the host's: host mounts still propagate in, nothing
// propagates out, and everything is gone when the helper exits) and assembles
// there, under `dir`, the function-independent root of every sandbox: system
// folders, /etc, /dev, read-only. Each init's copy of the mount namespace
// then holds the whole root; init adds /proc, /dev/shm and /var/runtime and
// pivots, instead of ~40 mounts and ~30 files per sandbox. Sets
// ctx.root_template.
Result<void> build_root_template(NamespaceContext& ctx, const std::string& dir);

// What init reported; call when the control socket is readable.
struct InitReport {
  enum Kind {
    kReady,    // the blank is built; `listener` attached
    kFailed,   // a setup step failed: `error`
    kClosed,   // end of file: after assignment, the bootstrap was exec'd (or the
               // zygote released); before it, init died
    kNothing,  // nothing to read (yet)
  } kind = kFailed;
  Error error;
  UniqueFd listener;
  UniqueFd netns;  // root mode: init's network namespace, for reuse after it ends
  nlohmann::json timings = nlohmann::json::object();  // microseconds per step, on kReady
};
InitReport read_init_report(int control);

// Sends the function's part to a ready blank. `env` is the complete
// environment (build_env()).
Result<void> assign_blank(int control, const SandboxSpec& spec, const std::vector<std::string>& env,
                          bool zygote);

// Whether namespace isolation can work here: root, or unprivileged user
// namespaces. Sets ctx.user_namespace accordingly.
Result<void> probe_namespaces(NamespaceContext& ctx);

}  // namespace lambent::sandbox
