// sandbox/helper.hpp — the helper process's main loop. Internal to sandbox/.
#pragma once

#include "sandbox/spawner.hpp"

namespace lambent::sandbox {

// Runs in the freshly forked helper; `sock` is its end of the socketpair.
// Never returns: exits when the daemon says shutdown, closes its end, or dies.
[[noreturn]] void run_helper(int sock, pid_t daemon_pid, const SpawnerOptions& options);

}  // namespace lambent::sandbox
