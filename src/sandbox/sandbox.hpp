// sandbox/sandbox.hpp — the seam between engine/ and process isolation.
// Owns: creating, freezing and killing one environment's process tree.
// Never: HTTP, the store, payload bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace lambent::sandbox {

enum class Isolation {
  kProcess,     // plain child process, own working folder and TMPDIR; no isolation (warned)
  kNamespaces,  // mount/PID/IPC/UTS/net namespaces, cgroup, seccomp, unprivileged user
};

// Built by engine/ from a validated FunctionConfig.
struct SandboxSpec {
  std::string id;                        // environment id, 32 hex; names the cgroup and folders
  std::string function_name;             // for diagnostics only
  std::string task_root;                 // host path of the unpacked package → /var/task (ro)
  std::vector<std::string> layer_roots;  // host paths merged in order → /opt (ro)
  std::string runtime_root;       // host path of Lambent's runtime clients → /var/runtime (ro)
  std::vector<std::string> argv;  // argv[0] is a path inside the environment
  std::vector<std::string> env;   // KEY=VALUE, without AWS_LAMBDA_RUNTIME_API
  std::uint64_t memory_bytes = 128ull << 20;
  std::uint64_t tmp_bytes = 512ull << 20;
  std::uint32_t max_pids = 1024;
  std::uint32_t max_fds = 1024;
  std::uint32_t cpu_weight = 100;  // relative; proportional to memory
  // CPUs the environment's processes start on (their affinity); empty: any.
  // A placement for speed, not a limit: the function may change it.
  std::vector<int> cpus;
  bool network_egress = false;
};

// How the environment's process tree ended.
struct ExitStatus {
  int exit_code = -1;  // >= 0 when it exited
  int signal = 0;      // > 0 when killed by a signal
  bool oom_killed = false;
};

// One live environment. Thread-compatible: owned by one engine Environment.
class Sandbox {
 public:
  virtual ~Sandbox() = default;  // kills the tree if still alive
  // The environment's Runtime API listening socket (non-blocking), created
  // inside its network namespace; the daemon accepts and serves it.
  virtual UniqueFd take_runtime_listener() = 0;
  // Read end of the pipe carrying the environment's stdout and stderr (non-blocking).
  virtual UniqueFd take_output() = 0;
  // host:port the runtime was told in AWS_LAMBDA_RUNTIME_API.
  virtual std::string runtime_api_address() const = 0;
  virtual int pid() const = 0;  // in the daemon's PID namespace
  virtual Result<void> freeze() = 0;
  virtual Result<void> thaw() = 0;
  // Kills the whole tree; idempotent. The exit is reported through on_exit.
  virtual void kill() = 0;
  // High-water mark of the environment's memory, in bytes (cgroup peak, or the
  // process's VmHWM without cgroups).
  virtual std::uint64_t peak_memory_bytes() const = 0;
};

// Where an environment sees its folders. With namespaces these are Lambda's
// fixed paths (/var/task, /var/runtime, /opt, /tmp); the process launcher uses
// host paths. engine/ builds argv and the environment variables from it.
struct EnvironmentLayout {
  std::string task_root;
  std::string runtime_root;
  std::string opt_root;
  std::string tmp;
};

using ExitCallback = std::function<void(ExitStatus)>;
using SpawnCallback = std::function<void(Result<std::unique_ptr<Sandbox>>)>;

// Thread-safe. Callbacks run on the spawner's own thread: they must only post
// work elsewhere, never block.
class Spawner {
 public:
  virtual ~Spawner() = default;
  // on_exit is called exactly once, after the tree has died (whatever the cause),
  // and only if `done` received a Sandbox: a failed spawn left no tree behind.
  // When the helper process is already gone, `done` gets Errc::kUnavailable on
  // the calling thread, before spawn() returns.
  virtual void spawn(SandboxSpec spec, ExitCallback on_exit, SpawnCallback done) = 0;
  virtual EnvironmentLayout layout(const SandboxSpec& spec) const = 0;
  virtual Isolation isolation() const = 0;
  // Stops every environment and the helper process; blocks until done.
  virtual void shutdown() = 0;
};

}  // namespace lambent::sandbox
