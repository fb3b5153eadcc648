#include "sandbox/process_launch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace lambent::sandbox {

ExecArgs::ExecArgs(std::vector<std::string> argv, std::vector<std::string> env)
    : argv_(std::move(argv)), env_(std::move(env)) {
  for (auto& a : argv_) argv_ptrs_.push_back(a.data());
  argv_ptrs_.push_back(nullptr);
  for (auto& e : env_) env_ptrs_.push_back(e.data());
  env_ptrs_.push_back(nullptr);
}

std::vector<std::string> build_env(const std::vector<std::string>& spec_env,
                                   const std::string& runtime_api,
                                   const std::vector<std::string>& extra) {
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> out;
  for (const auto& kv : spec_env) {
    std::string key = key_of(kv);
    bool ours = key == "AWS_LAMBDA_RUNTIME_API";
    for (const auto& e : extra) ours = ours || key == key_of(e);
    if (!ours) out.push_back(kv);
  }
  out.push_back("AWS_LAMBDA_RUNTIME_API=" + runtime_api);
  for (const auto& e : extra) out.push_back(e);
  return out;
}

Result<Pipe> make_pipe(int flags) {
  int fds[2];
  if (::pipe2(fds, flags) != 0) return fail(sys_error("pipe2", errno));
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<UniqueFd> make_listener(int port, int* bound_port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return fail(sys_error("socket", errno));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // reinterpret_cast: the sockets API takes the generic sockaddr view.
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(sys_error("binding the Runtime API listener to 127.0.0.1", errno));
  }
  if (::listen(s.get(), 64) != 0) return fail(sys_error("listen", errno));
  socklen_t len = sizeof(addr);
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail(sys_error("getsockname", errno));
  }
  *bound_port = ntohs(addr.sin_port);
  return s;
}

void child_setup_stdio(int null_fd, int out_fd, int err_fd, int keep_fd, const sigset_t* ignored) {
  // Out of the way of the dup2s below, whatever its number.
  if (keep_fd >= 0 && (keep_fd = ::fcntl(keep_fd, F_DUPFD_CLOEXEC, 64)) < 0) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (ignored == nullptr || sigismember(ignored, sig) == 1) ::signal(sig, SIG_DFL);
  }
  if (::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) {
    ::_exit(127);
  }
  if (err_fd != 3 && ::dup3(err_fd, 3, O_CLOEXEC) < 0) ::_exit(127);
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  if (keep_fd >= 0 && ::dup2(keep_fd, 4) < 0) ::_exit(127);  // dup2: not close-on-exec
  ::close_range(keep_fd >= 0 ? 5 : 4, ~0U, 0);
}

void child_fail(int err) {
  [[maybe_unused]] ssize_t n = ::write(3, &err, sizeof(err));
  ::_exit(127);
}

Result<void> read_exec_report(int fd, const std::string& what) {
  int err = 0;
  ssize_t n;
  do {
    n = ::read(fd, &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  if (n == 0) return {};
  if (n == sizeof(err)) return fail(sys_error(what, err));
  return fail(Errc::kInternal, what + ": the child died before exec");
}

ExitStatus status_from_siginfo(int code, int status) {
  ExitStatus st;
  if (code == CLD_EXITED) {
    st.exit_code = status;
  } else {
    st.signal = status;
  }
  return st;
}

}  // namespace lambent::sandbox
