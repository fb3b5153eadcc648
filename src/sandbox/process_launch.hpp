// sandbox/process_launch.hpp — pieces shared by the helper's two launchers.
// Internal to sandbox/; runs only in the single-threaded helper process.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::sandbox {

// argv/envp as the NUL-terminated arrays execve wants, built before fork so
// the child does nothing but system calls.
class ExecArgs {
 public:
  ExecArgs(std::vector<std::string> argv, std::vector<std::string> env);
  char* const* argv() { return argv_ptrs_.data(); }
  char* const* envp() { return env_ptrs_.data(); }
  const std::string& path() const { return argv_.front(); }

 private:
  std::vector<std::string> argv_, env_;
  std::vector<char*> argv_ptrs_, env_ptrs_;
};

// The environment exactly as the function sees it: spec.env minus the keys
// Lambent sets itself, plus AWS_LAMBDA_RUNTIME_API and `extra`.
std::vector<std::string> build_env(const std::vector<std::string>& spec_env,
                                   const std::string& runtime_api,
                                   const std::vector<std::string>& extra);

struct Pipe {
  UniqueFd read, write;
};
Result<Pipe> make_pipe(int flags);

// TCP listener on 127.0.0.1:port (0 = ephemeral), CLOEXEC, blocking; returns the bound port.
Result<UniqueFd> make_listener(int port, int* bound_port);

// Child side, between fork and exec: stdin = /dev/null, stdout = stderr = out,
// fd 3 = err_fd (CLOEXEC, reports exec failure), fd 4 = keep_fd (inherited by
// the program) when >= 0, everything else closed, the signal mask and
// dispositions reset. Only system calls.
// Signal dispositions: execve resets handled signals by itself, so only ignored
// ones need resetting. `ignored` (when the caller knows them) limits the reset
// to those; without it every signal is reset (one syscall each).
void child_setup_stdio(int null_fd, int out_fd, int err_fd, int keep_fd = -1,
                       const sigset_t* ignored = nullptr);
// Writes errno to fd 3 and exits 127.
[[noreturn]] void child_fail(int err);

// Reads the exec report: 0 bytes = exec succeeded; otherwise an errno.
Result<void> read_exec_report(int fd, const std::string& what);

ExitStatus status_from_siginfo(int code, int status);

}  // namespace lambent::sandbox
