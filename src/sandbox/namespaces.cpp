// The namespaces launcher. The helper clones an init process into new mount,
// PID, IPC, UTS and network namespaces; init (pid 1 there, helper code, no
// exec) builds the listener and the root, then forks the bootstrap, which
// drops every privilege and execs the function's runtime.
#include "sandbox/namespaces.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "sandbox/process_launch.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace lambent::sandbox {
namespace {

constexpr int kRuntimeApiPort = 9001;
constexpr int kSetupTimeoutMs = 10000;

// Steps reported on failure, so the spawn error names what broke.
enum Step : int {
  kStepCgroup = 1,
  kStepNetwork,
  kStepMounts,
  kStepPivot,
  kStepProc,
  kStepCredentials,
  kStepCapabilities,
  kStepLimits,
  kStepSeccomp,
  kStepExec,
  kStepFork,
};

const char* step_name(int step) {
  switch (step) {
    case kStepCgroup:
      return "joining the cgroup";
    case kStepNetwork:
      return "setting up the network namespace";
    case kStepMounts:
      return "assembling the root filesystem";
    case kStepPivot:
      return "pivot_root";
    case kStepProc:
      return "mounting /proc";
    case kStepCredentials:
      return "switching to the sandbox user";
    case kStepCapabilities:
      return "dropping capabilities";
    case kStepLimits:
      return "setting rlimits";
    case kStepSeccomp:
      return "installing the seccomp filter";
    case kStepExec:
      return "exec";
    case kStepFork:
      return "forking the bootstrap";
    default:
      return "setting up the environment";
  }
}

// What init and the bootstrap tell the helper over the control socket. A
// fixed binary record: the sender is between clone and exec.
struct Report {
  std::int32_t step = 0;  // 0 = init is ready (listener attached)
  std::int32_t err = 0;
  std::int64_t network_us = 0;
  std::int64_t mounts_us = 0;
  std::int64_t cgroup_us = 0;
};

std::int64_t now_us() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

void send_report(int sock, const Report& r, int fd = -1) {
  iovec iov{const_cast<Report*>(&r), sizeof(r)};  // sendmsg does not write it
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

[[noreturn]] void die(int sock, int step, int err) {
  Report r;
  r.step = step;
  r.err = err != 0 ? err : EIO;
  send_report(sock, r);
  ::_exit(127);
}

// Everything init needs, computed by the helper before clone.
struct Plan {
  const SandboxSpec* spec;
  const NamespaceContext* ctx;
  std::string root;  // mount point of the new root (env_dir)
  const Cgroup* cgroup;
  int control;  // child end of the control socket
  int output;   // write end of the output pipe
  int status;   // write end of the status pipe
  ExecArgs* exec;
  std::string passwd, group;
  const EgressPlan* egress;  // null: loopback only
};

// Host folders shown read-only at the same path (or recreated as the same
// symlink on merged-/usr systems).
constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                       "/lib32", "/lib64", "/libx32"};
// The parts of /etc a runtime needs: name resolution, TLS roots, the dynamic
// linker's cache, time zone. Never passwd/shadow/group: those are generated.
constexpr const char* kEtcEntries[] = {
    "hosts",     "resolv.conf",     "nsswitch.conf", "host.conf",       "gai.conf",
    "protocols", "services",        "ssl",           "ca-certificates", "ca-certificates.conf",
    "pki",       "crypto-policies", "ld.so.cache",   "ld.so.conf",      "ld.so.conf.d",
    "localtime", "alternatives",    "mime.types",    "os-release"};
constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

bool bind_ro(const std::string& src, const std::string& dst, unsigned long extra = 0) {
  if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  return ::mount(nullptr, dst.c_str(), nullptr,
                 MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | extra, nullptr) == 0;
}

bool make_file(const std::string& path, int mode = 0644) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

bool mkdirs(const std::string& path) {
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string part = path.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

int setup_network() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return -1;
  ::close(s);
  int port = 0;
  auto l = make_listener(kRuntimeApiPort, &port);
  if (!l) {
    errno = l.error().sys_errno;
    return -1;
  }
  return l->release();
}

// Builds the new root under plan.root. Returns false with errno set.
bool assemble_root(const Plan& p) {
  const std::string& r = p.root;
  const SandboxSpec& spec = *p.spec;
  std::string opts = "mode=0755,size=4m";
  if (::mount("lambent-root", r.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    return false;
  }
  struct stat st;
  for (const char* d : kSystemDirs) {
    if (::lstat(d, &st) != 0) continue;
    std::string dst = r + d;
    if (S_ISLNK(st.st_mode)) {
      char target[256];
      ssize_t n = ::readlink(d, target, sizeof(target) - 1);
      if (n < 0) return false;
      target[n] = '\0';
      if (::symlink(target, dst.c_str()) != 0) return false;
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0755) != 0 || !bind_ro(d, dst, MS_NODEV)) return false;
    }
  }
  if (::mkdir((r + "/etc").c_str(), 0755) != 0) return false;
  for (const char* e : kEtcEntries) {
    std::string src = std::string("/etc/") + e;
    if (::stat(src.c_str(), &st) != 0) continue;  // follows symlinks: we bind the target
    std::string dst = r + "/etc/" + e;
    bool made = S_ISDIR(st.st_mode) ? ::mkdir(dst.c_str(), 0755) == 0 : make_file(dst);
    if (!made || !bind_ro(src, dst, MS_NODEV)) return false;
  }
  if (!write_file(r + "/etc/passwd", p.passwd) || !write_file(r + "/etc/group", p.group)) {
    return false;
  }
  if (!write_file(r + "/etc/hostname", "localhost\n")) return false;

  // Lambda's fixed paths.
  if (!mkdirs(r + "/var/task") || !mkdirs(r + "/var/runtime") || !mkdirs(r + "/opt")) {
    return false;
  }
  if (!spec.task_root.empty() && !bind_ro(spec.task_root, r + "/var/task", MS_NODEV)) return false;
  if (!spec.runtime_root.empty() && ::stat(spec.runtime_root.c_str(), &st) == 0 &&
      !bind_ro(spec.runtime_root, r + "/var/runtime", MS_NODEV)) {
    return false;
  }
  if (spec.layer_roots.size() == 1) {
    if (!bind_ro(spec.layer_roots.front(), r + "/opt", MS_NODEV)) return false;
  } else if (spec.layer_roots.size() > 1) {
    // Later layers win: overlayfs gives precedence to the leftmost lowerdir.
    std::string lower;
    for (auto it = spec.layer_roots.rbegin(); it != spec.layer_roots.rend(); ++it) {
      if (!lower.empty()) lower += ':';
      lower += *it;
    }
    std::string o = "lowerdir=" + lower;
    if (::mount("lambent-layers", (r + "/opt").c_str(), "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV,
                o.c_str()) != 0) {
      return false;
    }
  }

  // The only writable place, limited to EphemeralStorage.
  std::string tmp_opts = fmt::format("mode=1777,size={}", spec.tmp_bytes);
  if (::mkdir((r + "/tmp").c_str(), 0755) != 0 ||
      ::mount("lambent-tmp", (r + "/tmp").c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              tmp_opts.c_str()) != 0) {
    return false;
  }

  // A minimal /dev: the harmless character devices, bound from the host.
  std::string dev = r + "/dev";
  if (::mkdir(dev.c_str(), 0755) != 0 ||
      ::mount("lambent-dev", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") !=
          0) {
    return false;
  }
  for (const char* n : kDevNodes) {
    std::string src = std::string("/dev/") + n, dst = dev + "/" + n;
    if (::stat(src.c_str(), &st) != 0) continue;
    if (!make_file(dst, 0666)) return false;
    if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    ::mount(nullptr, dst.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, nullptr);
  }
  const char* links[][2] = {{"/proc/self/fd", "fd"},
                            {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"},
                            {"/proc/self/fd/2", "stderr"}};
  for (auto& l : links) {
    if (::symlink(l[0], (dev + "/" + l[1]).c_str()) != 0) return false;
  }
  // POSIX shared memory (Python multiprocessing); its pages count against the memory cgroup.
  if (::mkdir((dev + "/shm").c_str(), 01777) != 0 ||
      ::mount("lambent-shm", (dev + "/shm").c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=64m") != 0) {
    return false;
  }
  if (::mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              nullptr) != 0) {
    return false;
  }
  return ::mkdir((r + "/proc").c_str(), 0555) == 0;
}

[[noreturn]] void run_bootstrap(const Plan& p) {
  const SandboxSpec& spec = *p.spec;
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) die(p.control, kStepExec, errno);
  child_setup_stdio(null_fd, p.output, p.control);  // fd 3 = control socket from here
  const int control = 3;
  ::setsid();

  // Capabilities: the bounding set needs CAP_SETPCAP, so drop it while still root.
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      die(control, kStepCapabilities, errno);
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (::setgroups(0, nullptr) != 0 || ::setresgid(p.ctx->gid, p.ctx->gid, p.ctx->gid) != 0 ||
      ::setresuid(p.ctx->uid, p.ctx->uid, p.ctx->uid) != 0) {
    die(control, kStepCredentials, errno);
  }
  // setresuid away from 0 already cleared permitted/effective; inheritable goes too.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  // syscall: glibc has no capset wrapper; libcap would allocate between fork and exec.
  if (::syscall(SYS_capset, &hdr, data) != 0) die(control, kStepCapabilities, errno);

  rlimit nofile{spec.max_fds, spec.max_fds};
  rlimit core{0, 0};
  // RLIMIT_NPROC is deliberately left alone: it counts every process of the
  // sandbox uid host-wide (all environments share it); pids.max is the limit.
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0 || ::setrlimit(RLIMIT_CORE, &core) != 0) {
    die(control, kStepLimits, errno);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(control, kStepSeccomp, errno);
  if (::chdir("/var/task") != 0) die(control, kStepExec, errno);
  if (int rc = p.ctx->seccomp->load(); rc != 0) die(control, kStepSeccomp, -rc);
  ::execve(p.exec->path().c_str(), p.exec->argv(), p.exec->envp());
  die(control, kStepExec, errno);
}

[[noreturn]] void run_init(const Plan& p) {
  // The helper's death kills init, and with it the whole PID namespace.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  Report ready;
  std::int64_t t = now_us();
  if (p.cgroup != nullptr) {
    for (const auto& fd : p.cgroup->procs_fds()) {
      if (::write(fd.get(), "0", 1) != 1) die(p.control, kStepCgroup, errno);
    }
  }
  ready.cgroup_us = now_us() - t;

  t = now_us();
  int listener = setup_network();
  if (listener < 0) die(p.control, kStepNetwork, errno);
  if (::sethostname("localhost", 9) != 0) die(p.control, kStepNetwork, errno);
  if (p.egress != nullptr) {
    int rc = setup_egress_in_init(*p.egress);
    // Nothing in the namespace may keep a socket of the host's namespace.
    ::close(p.egress->host_netlink);
    ::close(p.egress->host_inet);
    if (rc != 0) die(p.control, kStepNetwork, rc);
  }
  ready.network_us = now_us() - t;

  t = now_us();
  // Nothing we mount may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    die(p.control, kStepMounts, errno);
  }
  if (!assemble_root(p)) die(p.control, kStepMounts, errno);
  // syscall: glibc has no pivot_root wrapper. pivot_root(".", ".") stacks the
  // old root under the new one, and the detach below drops it.
  if (::chdir(p.root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    die(p.control, kStepPivot, errno);
  }
  // hidepid=invisible: the function sees only its own user's processes, not
  // init (a fork of the daemon: its command line names the data folder).
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") !=
      0) {
    die(p.control, kStepProc, errno);
  }
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    die(p.control, kStepMounts, errno);
  }
  ready.mounts_us = now_us() - t;

  send_report(p.control, ready, listener);
  ::close(listener);

  pid_t child = ::fork();
  if (child < 0) die(p.control, kStepFork, errno);
  if (child == 0) run_bootstrap(p);
  // The helper sees end-of-file on the control socket once the bootstrap has
  // exec'd (its copy is close-on-exec) and this one is closed.
  ::close(p.control);
  ::close(p.output);
  for (;;) {
    int wstatus = 0;
    pid_t pid = ::waitpid(-1, &wstatus, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) ::_exit(127);
    if (pid == child) {
      [[maybe_unused]] ssize_t n = ::write(p.status, &wstatus, sizeof(wstatus));
      // Returning from pid 1 makes the kernel kill everything left in the namespace.
      ::_exit(0);
    }
  }
}

// Waits for one report (and its fd) on the control socket; nullopt on EOF.
Result<std::optional<Report>> wait_report(int sock, UniqueFd* fd) {
  pollfd p{sock, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, kSetupTimeoutMs);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return fail(Errc::kTimeout, "the environment did not start within 10 s");
  Report r;
  iovec iov{&r, sizeof(r)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (n == 0) return std::optional<Report>{};
  if (n < 0) return fail(sys_error("reading the environment's setup report", errno));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_type == SCM_RIGHTS) {
      int f;
      std::memcpy(&f, CMSG_DATA(c), sizeof(int));
      fd->reset(f);
    }
  }
  if (n == sizeof(int)) {
    // child_setup_stdio's exec report: a bare errno.
    std::memcpy(&r.err, &r, sizeof(int));
    r.step = kStepExec;
  } else if (n != sizeof(r)) {
    return fail(Errc::kInternal, "malformed setup report from the environment");
  }
  return std::optional<Report>(r);
}

}  // namespace

Result<NamespaceLaunch> launch_namespaces(const SandboxSpec& spec, const std::string& env_dir,
                                          const NamespaceContext& ctx, const EgressPlan* egress) {
  if (::geteuid() != 0) {
    return fail(Errc::kUnavailable,
                "namespace isolation needs root (user-namespace mode is not implemented yet); "
                "use --isolation process");
  }
  if (ctx.seccomp == nullptr) return fail(Errc::kInternal, "no seccomp filter");
  NamespaceLaunch out;
  std::int64_t t = now_us();
  if (ctx.cgroup_version == CgroupVersion::kNone) {
    return fail(Errc::kUnavailable, "no cgroup hierarchy found under /sys/fs/cgroup");
  }
  CgroupLimits limits{spec.memory_bytes, spec.max_pids, spec.cpu_weight};
  auto cg = Cgroup::create(ctx.cgroup_version, ctx.cgroup_name, spec.id, limits);
  if (!cg) return fail(cg.error());
  out.cgroup = std::move(*cg);
  out.timings["cgroup_create_us"] = now_us() - t;

  auto output = make_pipe(O_CLOEXEC);
  if (!output) return fail(output.error());
  auto status = make_pipe(O_CLOEXEC);
  if (!status) return fail(status.error());
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return fail(sys_error("socketpair", errno));
  }
  UniqueFd control(sv[0]), child_control(sv[1]);
  std::vector<std::string> extra_env;
  // The host side of the pair: how an egress function reaches services on the host.
  if (egress != nullptr)
    extra_env.push_back("LAMBENT_HOST_ADDRESS=" + format_ipv4(egress->host_addr));
  ExecArgs exec(spec.argv,
                build_env(spec.env, fmt::format("127.0.0.1:{}", kRuntimeApiPort), extra_env));
  Plan plan{&spec,
            &ctx,
            env_dir,
            out.cgroup.get(),
            child_control.get(),
            output->write.get(),
            status->write.get(),
            &exec,
            fmt::format("root:x:0:0:root:/root:/sbin/nologin\n"
                        "sbx_user1051:x:{}:{}::/tmp:/sbin/nologin\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
                        ctx.uid, ctx.gid),
            fmt::format("root:x:0:\nsbx_user1051:x:{}:\nnogroup:x:65534:\n", ctx.gid),
            egress};

  t = now_us();
  // syscall: clone with namespace flags and fork-like semantics (no new stack);
  // the helper is single-threaded, so the child may run ordinary code.
  long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD;
  long pid = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) return fail(sys_error("clone into new namespaces", errno));
  if (pid == 0) {
    control.reset();
    run_init(plan);
  }
  out.timings["clone_us"] = now_us() - t;
  out.pid = static_cast<pid_t>(pid);
  child_control.reset();
  output->write.reset();
  status->write.reset();

  auto abort_child = [&](Error e) -> Result<NamespaceLaunch> {
    ::kill(out.pid, SIGKILL);
    ::waitpid(out.pid, nullptr, 0);
    return fail(std::move(e).with_context("starting environment " + spec.id));
  };
  UniqueFd listener;
  auto ready = wait_report(control.get(), &listener);
  if (!ready) return abort_child(std::move(ready.error()));
  if (!*ready) return abort_child(make_error(Errc::kInternal, "init died during setup"));
  if ((*ready)->step != 0) {
    return abort_child(sys_error(step_name((*ready)->step), (*ready)->err));
  }
  if (!listener) return abort_child(make_error(Errc::kInternal, "init sent no listener"));
  out.timings["cgroup_join_us"] = (*ready)->cgroup_us;
  out.timings["netns_listener_us"] = (*ready)->network_us;
  out.timings["mounts_us"] = (*ready)->mounts_us;

  t = now_us();
  UniqueFd none;
  auto exec_report = wait_report(control.get(), &none);
  if (!exec_report) return abort_child(std::move(exec_report.error()));
  if (*exec_report) {
    int err = (*exec_report)->err;
    std::string what = (*exec_report)->step == kStepExec
                           ? "exec " + spec.argv.front()
                           : std::string(step_name((*exec_report)->step));
    return abort_child(sys_error(what, err));
  }
  out.timings["bootstrap_exec_us"] = now_us() - t;

  (void)::fcntl(listener.get(), F_SETFL, O_NONBLOCK);
  (void)::fcntl(output->read.get(), F_SETFL, O_NONBLOCK);
  out.listener = std::move(listener);
  out.output = std::move(output->read);
  out.status = std::move(status->read);
  return out;
}

Result<void> probe_namespaces() {
  if (::geteuid() != 0) return fail(Errc::kUnavailable, "namespace isolation needs root");
  return {};
}

}  // namespace lambent::sandbox
