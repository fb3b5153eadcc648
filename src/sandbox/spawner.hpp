// sandbox/spawner.hpp — the Linux Spawner: a single-threaded helper process
// forked before the daemon starts any thread, which creates and reaps every
// environment on the daemon's behalf.
// Owns: the helper process, its socket, and the reader thread that turns the
// helper's replies into SpawnCallback / ExitCallback calls.
// Never: HTTP, the store, payload bytes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "core/result.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::sandbox {

struct SpawnerOptions {
  Isolation isolation = Isolation::kNamespaces;
  // Per-environment folders (process-mode TMPDIR, namespace-mode mount
  // staging). Swept of leftovers when the helper starts.
  std::string state_dir;
  // Parent cgroup name under each hierarchy; swept of leftovers at start and
  // removed at shutdown. Empty: "lambent-<hash of state_dir>", so that several
  // daemons on one machine (each with its own data folder) never sweep each
  // other's environments, while a restarted daemon finds its predecessor's.
  std::string cgroup_name;
  uid_t sandbox_uid = 993;
  gid_t sandbox_gid = 993;
  bool default_egress = false;
  // Logs per-step timings (clone, netns, mounts, cgroup, exec) at debug level
  // from the helper (stderr) and returns them with each spawn.
  bool trace_timings = false;
  // Namespaces: sandboxes kept made ahead of demand, per kind (plain, and one
  // zygote kind per Python interpreter in use), so that a cold start pays
  // only for attaching the function and exec. 0: every sandbox made on demand.
  int pool_size = 0;
  // Pre-started Python runtimes in the pool (see docs/sandbox.md).
  bool zygotes = true;
  // Environments can be frozen (Sandbox::freeze). On cgroup v1 this costs one
  // more cgroup migration per spawn, so the daemon asks only with --freeze-idle.
  bool freezer = true;
  // Namespaces: a spawn whose sandbox has not started (exec'd) by then fails
  // with Errc::kTimeout — or, if its sandbox was made ahead, is retried once
  // in a new one.
  int setup_timeout_ms = 10000;
};

// Thread-safe (see Spawner).
class LinuxSpawner : public Spawner {
 public:
  // Id of the helper process, for diagnostics and tests.
  virtual pid_t helper_pid() const = 0;
};

// The cgroup parent used when SpawnerOptions::cgroup_name is empty.
std::string default_cgroup_name(const std::string& state_dir);

// Forks the helper. Must be called while the calling process has exactly one
// thread (fork in a multi-threaded process may deadlock the child), and from
// the thread that lives as long as the daemon: the helper's PR_SET_PDEATHSIG
// fires when the forking *thread* exits.
Result<std::unique_ptr<LinuxSpawner>> start_spawner(const SpawnerOptions& options);

}  // namespace lambent::sandbox
