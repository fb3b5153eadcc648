// The namespaces launcher, in two phases (see namespaces.hpp). The helper
// clones an init process (pid 1 of a new PID namespace, helper code, no exec);
// init unshares the other namespaces, builds the listener and the root, and
// waits for its function; then it attaches the function's folders, forks the
// bootstrap, which drops every privilege and execs the runtime, and reaps.
#include "sandbox/namespaces.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
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

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "core/cpus.hpp"
#include "sandbox/process_launch.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/wire.hpp"

namespace lambent::sandbox {
namespace {

constexpr int kRuntimeApiPort = 9001;
// The zygote's end of the pipe that carries its function's environment.
constexpr int kZygoteFd = 4;

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
  kStepNamespaces,
  kStepAssign,
};

const char* step_name(int step) {
  switch (step) {
    case kStepCgroup:
      return "creating or joining the cgroup";
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
    case kStepNamespaces:
      return "creating the namespaces";
    case kStepAssign:
      return "attaching the function's folders";
    default:
      return "setting up the environment";
  }
}

// What init and the bootstrap tell the helper over the control socket. A
// fixed binary record: the bootstrap sends it between fork and exec.
struct Report {
  std::int32_t step = 0;  // 0 = init is ready (listener attached)
  std::int32_t err = 0;
  std::int64_t network_us = 0;
  std::int64_t mounts_us = 0;
  std::int64_t cgroup_us = 0;
  std::int64_t zygote_us = 0;
  std::int64_t netns_reused = 0;  // 1: an ended sandbox's network namespace was entered
};

std::int64_t now_us() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// `fds`: the listener, then (root mode) the network namespace; -1 ends the list.
void send_report(int sock, const Report& r, std::array<int, 2> fds = {-1, -1}) {
  const std::size_t n = fds[0] < 0 ? 0 : fds[1] < 0 ? 1 : 2;
  (void)wire::send_bytes(sock, &r, sizeof(r), std::span<const int>(fds.data(), n));
}

// A small /proc file, whole and NUL-terminated; false if it does not fit.
bool read_small_file(const char* path, char* buf, std::size_t size) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t n = 0;
  ssize_t r;
  while (n + 1 < size && (r = ::read(fd, buf + n, size - 1 - n)) > 0)
    n += static_cast<std::size_t>(r);
  ::close(fd);
  buf[n] = '\0';
  if (n + 1 < size) return true;
  errno = EFBIG;  // more than fits: never mistaken for a missing file
  return false;
}

// Whether the current network namespace holds no socket a function could
// run into: no TCP, UDP, UDP-Lite or raw socket (IPv4 or IPv6; sockstat's
// per-namespace "inuse" counters) holding a port, no Unix socket holding an
// abstract name, and no IPv6 flow label lingering after its socket. An
// unprivileged function cannot change a namespace's addresses, routes or
// sysctls; what it can leave behind is sockets outliving
// its processes (held in flight by SCM_RIGHTS cycles until the kernel
// collects them), and the daemon may still hold the ended sandbox's listener
// and connections. Netlink sockets are not looked at: one left behind
// occupies nothing a function binds (port ids are picked around it), and
// /proc/net/netlink walks every netlink socket of the host.
bool netns_holds_no_socket() {
  char buf[4096];
  for (const char* f : {"/proc/self/net/sockstat", "/proc/self/net/sockstat6"}) {
    if (!read_small_file(f, buf, sizeof(buf))) {
      if (errno == ENOENT && f[std::strlen(f) - 1] == '6') continue;  // a kernel without IPv6
      return false;
    }
    for (const char* at = buf; (at = std::strstr(at, "inuse ")) != nullptr;) {
      at += 6;
      if (at[0] != '0' || (at[1] != ' ' && at[1] != '\n' && at[1] != '\0')) return false;
    }
  }
  // Each of these lists nothing but its header line in a namespace nothing is left in. IPv6
  // flow labels outlive their sockets (an unprivileged linger of up to 150 s) and carry 16
  // bytes each that the next function could read.
  for (const char* f : {"/proc/self/net/unix", "/proc/self/net/ip6_flowlabel"}) {
    if (!read_small_file(f, buf, sizeof(buf))) {
      if (errno == ENOENT && std::strstr(f, "ip6") != nullptr) continue;  // no IPv6
      return false;
    }
    const char* nl = std::strchr(buf, '\n');
    if (nl == nullptr || nl[1] != '\0') return false;
  }
  return true;
}

// The bootstrap runs on a borrowed stack (spawn_bootstrap) that AddressSanitizer
// does not know; its no-return bookkeeping would print a warning into the
// function's output. Only system calls run there, so nothing is lost.
#define LAMBENT_BORROWED_STACK __attribute__((no_sanitize_address))

LAMBENT_BORROWED_STACK [[noreturn]] void die(int sock, int step, int err) {
  Report r;
  r.step = step;
  r.err = err != 0 ? err : EIO;
  send_report(sock, r);
  ::_exit(127);
}

// Everything init needs, computed by the helper before clone.
struct InitPlan {
  const BlankPlan* blank;
  const NamespaceContext* ctx;
  Cgroup* cgroup;    // made by init; null: rootless without cgroups
  int control;       // child end of the control socket
  int output;        // write end of the output pipe
  int status;        // write end of the status pipe
  ExecArgs* zygote;  // null: no zygote
  std::string passwd, group;
  sigset_t ignored_signals;  // the signals init ignores (inherited from the helper)
};

// The sandbox's /etc/passwd and /etc/group (Lambda's user name).
std::string passwd_file(const NamespaceContext& ctx) {
  return fmt::format(
      "root:x:0:0:root:/root:/sbin/nologin\n"
      "sbx_user1051:x:{}:{}::/tmp:/sbin/nologin\n"
      "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
      ctx.uid, ctx.gid);
}
std::string group_file(const NamespaceContext& ctx) {
  return fmt::format("root:x:0:\nsbx_user1051:x:{}:\nnogroup:x:65534:\n", ctx.gid);
}

// Empties the capability bounding set, which limits what an execve can grant.
// Init never execs and keeps its own (effective) capabilities; every process it
// starts inherits the empty set. Done once per sandbox, before it is ready,
// instead of ~64 prctl calls in each bootstrap on the cold-start path.
bool drop_capability_bounding_set() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past CAP_LAST_CAP
      return false;
    }
  }
  return true;
}

// The signals whose disposition is SIG_IGN: they stay ignored across execve,
// unlike handled ones, so a child resets just these.
sigset_t ignored_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) sigaddset(&set, sig);
  }
  return set;
}

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

// The function-independent root under plan.dir: system folders, /etc, /dev,
// /var/runtime, and empty mount points for /var/task, /opt, /tmp, /proc.
// POSIX shared memory (Python multiprocessing); its pages count against the memory cgroup.
bool mount_shm(const std::string& where) {
  return ::mount("lambent-shm", where.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=1777,size=64m") == 0;
}

// The folder of the libc this process runs with, resolved: where the system
// keeps its shared libraries ("/usr/lib/x86_64-linux-gnu" on Debian).
std::string host_library_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&::getpid), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  char resolved[PATH_MAX];
  if (::realpath(info.dli_fname, resolved) == nullptr) return {};
  std::string dir(resolved);
  dir.resize(dir.rfind('/'));
  return dir;
}

// Lambda's LD_LIBRARY_PATH begins /lib64:/usr/lib64, where Amazon Linux keeps
// its libraries. Debian keeps them in /usr/lib/<multiarch>, and its /usr/lib64
// holds only the loader, so the dynamic loader of every process in a sandbox
// probed every folder of that path, with its hwcaps subfolders, before its
// cache found libc: a native bootstrap made 151 lookups before its main
// (136 failing, ~4 us each in a sandbox), now 21 (bench/RESULTS.md). The
// host's library folder is shown at /usr/lib64 as well, as on Amazon Linux,
// when nothing it would cover is missing from it. True unless the bind fails.
bool show_libraries_at_lib64(const std::string& r) {
  const std::string libdir = host_library_dir();
  struct stat st;
  if (libdir.empty() || ::stat("/usr/lib64", &st) != 0 || !S_ISDIR(st.st_mode)) return true;
  char lib64[PATH_MAX];
  if (::realpath("/usr/lib64", lib64) == nullptr || libdir == lib64) return true;
  DIR* d = ::opendir("/usr/lib64");
  if (d == nullptr) return true;
  bool covered = true;  // on Debian: the loader's symlink, which libdir has as a file
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::access((libdir + "/" + name).c_str(), F_OK) != 0) covered = false;
  }
  ::closedir(d);
  return !covered || bind_ro(libdir, r + "/usr/lib64", MS_NODEV);
}

// `runtime` (may be empty) is bound at /var/runtime; `per_env`: also the
// parts each sandbox owns (/dev/shm). Without them it is the shared template.
bool assemble_root(const std::string& r, const std::string& runtime, const std::string& passwd,
                   const std::string& group, bool per_env) {
  if (::mount("lambent-root", r.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m") != 0) {
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
  if (!show_libraries_at_lib64(r)) return false;
  if (::mkdir((r + "/etc").c_str(), 0755) != 0) return false;
  for (const char* e : kEtcEntries) {
    std::string src = std::string("/etc/") + e;
    if (::stat(src.c_str(), &st) != 0) continue;  // follows symlinks: we bind the target
    std::string dst = r + "/etc/" + e;
    bool made = S_ISDIR(st.st_mode) ? ::mkdir(dst.c_str(), 0755) == 0 : make_file(dst);
    if (!made || !bind_ro(src, dst, MS_NODEV)) return false;
  }
  if (!write_file(r + "/etc/passwd", passwd) || !write_file(r + "/etc/group", group)) {
    return false;
  }
  if (!write_file(r + "/etc/hostname", "localhost\n")) return false;

  // Lambda's fixed paths; /var/task and /opt are attached at assignment.
  if (!mkdirs(r + "/var/task") || !mkdirs(r + "/var/runtime") || !mkdirs(r + "/opt")) {
    return false;
  }
  if (!runtime.empty() && ::stat(runtime.c_str(), &st) == 0 &&
      !bind_ro(runtime, r + "/var/runtime", MS_NODEV)) {
    return false;
  }
  if (::mkdir((r + "/tmp").c_str(), 01777) != 0) return false;

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
  if (::mkdir((dev + "/shm").c_str(), 01777) != 0 || (per_env && !mount_shm(dev + "/shm"))) {
    return false;
  }
  if (::mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              nullptr) != 0) {
    return false;
  }
  return ::mkdir((r + "/proc").c_str(), 0555) == 0;
}

// Makes the assembled folder the root: pivot_root, a fresh /proc, read-only.
// Returns 0 or the failed step (errno set).
int enter_root(const std::string& root, bool make_read_only = true) {
  // hidepid=invisible: the function sees only its own user's processes, not
  // init (a fork of the daemon: its command line names the data folder).
  // Mounted before pivot_root: in a user namespace the kernel allows a new
  // /proc only while a fully visible one is still in the mount namespace.
  if (::mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=invisible") != 0) {
    return kStepProc;
  }
  // syscall: glibc has no pivot_root wrapper. pivot_root(".", ".") stacks the
  // old root under the new one, and the detach below drops it.
  if (::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    return kStepPivot;
  }
  if (make_read_only &&
      ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return kStepMounts;
  }
  return 0;
}

// Root mode with a template (build_root_template): this mount namespace's copy
// of the shared read-only root gets the sandbox's own /dev/shm and
// /var/runtime, then becomes the root.
int enter_template_root(const InitPlan& p) {
  const std::string& r = p.ctx->root_template;
  if (!mount_shm(r + "/dev/shm")) return kStepMounts;
  const std::string& runtime = p.blank->runtime_root;
  struct stat st;
  if (!runtime.empty() && ::stat(runtime.c_str(), &st) == 0 &&
      !bind_ro(runtime, r + "/var/runtime", MS_NODEV)) {
    return kStepMounts;
  }
  return enter_root(r, /*make_read_only=*/false);  // read-only already, and shared
}

// The part of starting a bootstrap (or zygote) that does not depend on its
// function: stdio, a new session, every privilege dropped, limits, the seccomp
// filter. `keep` (>= 0) becomes fd 4.
LAMBENT_BORROWED_STACK void drop_privileges(const InitPlan& p, std::uint32_t max_fds, int keep) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) die(p.control, kStepExec, errno);
  static_assert(kZygoteFd == 4, "child_setup_stdio puts the kept fd at 4");
  // fd 3 = control, fd 4 = keep; only the signals init ignores need resetting.
  child_setup_stdio(null_fd, p.output, p.control, keep, &p.ignored_signals);
  const int control = 3;
  ::setsid();

  // Capabilities: init emptied the bounding set before its blank was ready
  // (drop_capability_bounding_set); one read checks that it did.
  if (::prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0) die(control, kStepCapabilities, EPERM);
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  // In a user namespace setgroups is denied (and there is only one group mapped).
  if ((!p.ctx->user_namespace && ::setgroups(0, nullptr) != 0) ||
      ::setresgid(p.ctx->gid, p.ctx->gid, p.ctx->gid) != 0 ||
      ::setresuid(p.ctx->uid, p.ctx->uid, p.ctx->uid) != 0) {
    die(control, kStepCredentials, errno);
  }
  // setresuid away from 0 already cleared permitted/effective; inheritable goes too.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  // syscall: glibc has no capset wrapper; libcap would allocate between fork and exec.
  if (::syscall(SYS_capset, &hdr, data) != 0) die(control, kStepCapabilities, errno);

  rlimit nofile{max_fds, max_fds};
  rlimit core{0, 0};
  // RLIMIT_NPROC is deliberately left alone: it counts every process of the
  // sandbox uid host-wide (all environments share it); pids.max is the limit.
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0 || ::setrlimit(RLIMIT_CORE, &core) != 0) {
    die(control, kStepLimits, errno);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(control, kStepSeccomp, errno);
  if (int rc = p.ctx->seccomp->load(); rc != 0) die(control, kStepSeccomp, -rc);
}

// The bootstrap (or zygote): drops every privilege and execs.
LAMBENT_BORROWED_STACK [[noreturn]] void run_bootstrap(const InitPlan& p, ExecArgs& exec,
                                                       std::uint32_t max_fds, int keep) {
  drop_privileges(p, max_fds, keep);
  if (::chdir("/var/task") != 0) die(3, kStepExec, errno);
  ::execve(exec.path().c_str(), exec.argv(), exec.envp());
  die(3, kStepExec, errno);
}

// A bootstrap started with its sandbox, before its function is known: it drops
// its privileges and loads the seccomp filter (attaching it costs ~0.3 ms: the
// kernel runs the filter for every syscall number to cache its verdicts), then
// waits on fd 4 for init to attach /var/task and fill in `exec`. It shares
// init's memory (CLONE_VM, as the vfork below) but runs alongside it; it only
// makes system calls, on its own stack, never allocates, and reads `exec`
// after the go byte. It also shares init's thread-local errno, so a failure in
// one at the moment the other reads errno could report the wrong code; errno
// only ever goes into an error report or decides an EINTR retry (which just
// tries again), and the two are rarely busy at once: once the bootstrap is
// started, init reports ready and waits in poll.
struct PreStarted {
  const InitPlan* p = nullptr;
  int go = -1;  // read end of the go pipe
  ExecArgs* exec = nullptr;
  std::uint32_t max_fds = 0;  // the assignment's, when it differs from the blank's
};

LAMBENT_BORROWED_STACK int prestarted_entry(void* a) {
  auto* s = static_cast<PreStarted*>(a);
  drop_privileges(*s->p, s->p->blank->max_fds, s->go);
  ::fcntl(4, F_SETFD, FD_CLOEXEC);  // the go pipe is not the function's
  char go = 0;
  ssize_t n;
  do {
    n = ::read(4, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(0);  // init went away: the sandbox is being torn down
  if (s->max_fds != s->p->blank->max_fds) {
    rlimit nofile{s->max_fds, s->max_fds};
    if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) die(3, kStepLimits, errno);
  }
  if (::chdir("/var/task") != 0) die(3, kStepExec, errno);
  ::execve(s->exec->path().c_str(), s->exec->argv(), s->exec->envp());
  die(3, kStepExec, errno);
}

pid_t prestart_bootstrap(PreStarted& s) {
  alignas(64) static char stack[256 * 1024];
  return ::clone(prestarted_entry, stack + sizeof(stack), CLONE_VM | SIGCHLD, &s);
}

// The bootstrap shares init's memory until it execs (vfork semantics, as
// posix_spawn): no page tables to copy, and no copied address space for exec
// to tear down — together ~1.5 ms of every cold start when init forked. The
// child runs only system calls on its own stack; init waits until it execs.
struct BootstrapArgs {
  const InitPlan* p;
  ExecArgs* exec;
  std::uint32_t max_fds;
  int keep;
};

LAMBENT_BORROWED_STACK int bootstrap_entry(void* a) {
  auto* x = static_cast<BootstrapArgs*>(a);
  run_bootstrap(*x->p, *x->exec, x->max_fds, x->keep);
}

pid_t spawn_bootstrap(const InitPlan& p, ExecArgs& exec, std::uint32_t max_fds, int keep) {
  BootstrapArgs args{&p, &exec, max_fds, keep};
  alignas(64) static char stack[256 * 1024];
  return ::clone(bootstrap_entry, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
}

// Attaches a detached mount the helper cloned from the host (root mode).
bool attach(int tree, const char* where) {
  return ::move_mount(tree, "", AT_FDCWD, where, MOVE_MOUNT_F_EMPTY_PATH) == 0;
}

// The assignment's function part, before the bootstrap starts. Root mode: the
// root is already entered and the helper sent detached mounts. User-namespace
// mode: the helper cannot clone mounts, so init binds by host path and enters
// the root only now. Returns 0 or the failed step (errno set).
int apply_assignment(const InitPlan& p, const nlohmann::json& a, std::vector<UniqueFd>& fds) {
  std::size_t next = 0;
  auto take = [&](const char* key) -> int {
    if (!a.value(key, false)) return -1;
    return next < fds.size() ? fds[next++].get() : -2;
  };
  int task = take("task"), opt = take("opt");
  if (task == -2 || opt == -2) {
    errno = EBADF;
    return kStepAssign;
  }
  const std::uint64_t tmp_bytes = a.value("tmp_bytes", 0ull);
  if (p.ctx->user_namespace) {
    const std::string& r = p.blank->dir;
    const std::string tmp_opts = fmt::format("mode=1777,size={}", tmp_bytes);
    std::string task_root = a.value("task_root", ""), opt_root = a.value("opt_root", "");
    if (!task_root.empty() && !bind_ro(task_root, r + "/var/task", MS_NODEV)) return kStepAssign;
    if (!opt_root.empty() && !bind_ro(opt_root, r + "/opt", MS_NODEV)) return kStepAssign;
    if (::mount("lambent-tmp", (r + "/tmp").c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                tmp_opts.c_str()) != 0) {
      return kStepAssign;
    }
    return enter_root(r);
  }
  if ((task >= 0 && !attach(task, "/var/task")) || (opt >= 0 && !attach(opt, "/opt"))) {
    return kStepAssign;
  }
  // /tmp was mounted with the blank (run_init), with the size of the latest
  // spawn; resized if this function's EphemeralStorage differs (it is still empty).
  if (tmp_bytes != p.blank->tmp_bytes &&
      ::mount("lambent-tmp", "/tmp", "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
              fmt::format("size={}", tmp_bytes).c_str()) != 0) {
    return kStepAssign;
  }
  return 0;
}

// Reaps until the bootstrap exits, reports its status, and exits: returning
// from pid 1 makes the kernel kill everything left in the namespace.
[[noreturn]] void reap_until(pid_t child, int status_fd) {
  for (;;) {
    int wstatus = 0;
    pid_t pid = ::waitpid(-1, &wstatus, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) ::_exit(127);
    if (pid == child) {
      [[maybe_unused]] ssize_t n = ::write(status_fd, &wstatus, sizeof(wstatus));
      ::_exit(0);
    }
  }
}

// Closes every fd from 3 up but `keep` (-1 entries ignored).
void close_all_but(std::vector<int> keep) {
  std::erase_if(keep, [](int fd) { return fd < 3; });
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > from) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(from, ~0U, 0);
}

[[noreturn]] void run_init(InitPlan& p) {
  // The helper's death kills init, and with it the whole PID namespace.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // A fork of the helper holds a copy of every file the helper has open: its
  // socket to the daemon, other sandboxes' pipes, sockets and network
  // namespaces. Init keeps only its own, or those would live as long as it does.
  close_all_but({p.control, p.output, p.status, p.blank->netns,
                 p.blank->egress ? p.blank->egress->host_netlink : -1,
                 p.blank->egress ? p.blank->egress->host_inet : -1});
  if (p.ctx->user_namespace) {
    // Wait until the helper has written our uid/gid maps.
    char go = 0;
    if (::read(p.control, &go, 1) != 1) ::_exit(127);
  }
  Report ready;
  std::int64_t t = now_us();
  if (p.cgroup != nullptr) {
    // Made here rather than by the helper: the mkdirs and limit writes (~0.4 ms
    // on v1) run in parallel with other spawns instead of in the helper's loop.
    if (auto made = p.cgroup->make(p.blank->limits); !made) {
      die(p.control, kStepCgroup, made.error().sys_errno);
    }
    for (const auto& fd : p.cgroup->procs_fds()) {
      if (::write(fd.get(), "0", 1) != 1) die(p.control, kStepCgroup, errno);
    }
  }
  ready.cgroup_us = now_us() - t;

  t = now_us();
  // Unshared here rather than cloned by the helper: creating a network
  // namespace costs ~1.3 ms of CPU, and here it runs in parallel with other
  // spawns. An ended sandbox's namespace, when the helper offers one and it
  // holds no socket any more, costs a setns instead (docs/sandbox.md).
  int new_net = CLONE_NEWNET;
  if (p.blank->netns >= 0) {
    if (::setns(p.blank->netns, CLONE_NEWNET) == 0 && netns_holds_no_socket()) {
      new_net = 0;
      ready.netns_reused = 1;
    }
    ::close(p.blank->netns);
  }
  if (::unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | new_net) != 0) {
    die(p.control, kStepNamespaces, errno);
  }
  int listener = setup_network();
  if (listener < 0) die(p.control, kStepNetwork, errno);
  if (::sethostname("localhost", 9) != 0) die(p.control, kStepNetwork, errno);
  if (const EgressPlan* egress = p.blank->egress; egress != nullptr) {
    int rc = setup_egress_in_init(*egress);
    // Nothing in the namespace may keep a socket of the host's namespace.
    ::close(egress->host_netlink);
    ::close(egress->host_inet);
    if (rc != 0) die(p.control, kStepNetwork, rc);
  }
  ready.network_us = now_us() - t;

  t = now_us();
  // Nothing we mount may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    die(p.control, kStepMounts, errno);
  }
  if (!p.ctx->root_template.empty()) {
    if (int step = enter_template_root(p); step != 0) die(p.control, step, errno);
  } else {
    if (!assemble_root(p.blank->dir, p.blank->runtime_root, p.passwd, p.group, true)) {
      die(p.control, kStepMounts, errno);
    }
    if (!p.ctx->user_namespace) {
      if (int step = enter_root(p.blank->dir); step != 0) die(p.control, step, errno);
    }
  }
  // The only writable place, limited to EphemeralStorage (the size is the
  // pool's guess until assignment). In a user namespace it is mounted at
  // assignment, before init enters its root.
  if (!p.ctx->user_namespace &&
      ::mount("lambent-tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              fmt::format("mode=1777,size={}", p.blank->tmp_bytes).c_str()) != 0) {
    die(p.control, kStepMounts, errno);
  }
  ready.mounts_us = now_us() - t;
  if (!drop_capability_bounding_set()) die(p.control, kStepCapabilities, errno);

  // The zygote starts now, before its function is known; it reads the
  // function's environment from kZygoteFd once /var/task is attached.
  // Otherwise (root mode) the bootstrap starts now too, and waits for the go
  // byte; in a user namespace init changes its root at assignment, so there
  // the bootstrap is started then.
  pid_t child = -1;
  UniqueFd zygote_pipe, go_pipe, child_pidfd;
  static PreStarted prestarted;  // shared with the pre-started bootstrap
  if (p.zygote != nullptr || !p.ctx->user_namespace) {
    t = now_us();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) die(p.control, kStepFork, errno);
    if (p.zygote != nullptr) {
      child = spawn_bootstrap(p, *p.zygote, p.blank->max_fds, fds[0]);
      zygote_pipe.reset(fds[1]);
    } else {
      prestarted.p = &p;
      prestarted.go = fds[0];
      child = prestart_bootstrap(prestarted);
      go_pipe.reset(fds[1]);
    }
    if (child < 0) die(p.control, kStepFork, errno);
    ::close(fds[0]);
    // syscall: glibc 2.36 has no pidfd_open wrapper.
    child_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
    if (!child_pidfd) die(p.control, kStepFork, errno);
    ready.zygote_us = now_us() - t;
  }
  // Root mode: the helper keeps the namespace when this sandbox ends, to offer it to a later one
  // (an egress namespace holds its veth pair, and is never reused).
  int netns = -1;
  if (!p.ctx->user_namespace && p.blank->egress == nullptr) {
    netns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  }
  send_report(p.control, ready, {listener, netns});
  ::close(listener);
  if (netns >= 0) ::close(netns);
  // Copy-on-write faults of this fork of the helper cost ~0.2 ms when the
  // assignment is parsed; take them now, while nobody waits.
  auto warm = nlohmann::json::parse(R"({"argv":["/var/task/bootstrap"],"env":["A=B"],"x":1})");
  warm.clear();

  // Wait for the function (or for the zygote's death, or the helper's).
  for (;;) {
    pollfd w[2] = {{p.control, POLLIN, 0}, {child_pidfd.get(), POLLIN, 0}};
    int rc = ::poll(w, child_pidfd ? 2 : 1, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) ::_exit(127);
    if (w[0].revents != 0) break;
    if (w[1].revents != 0) reap_until(child, p.status);  // the zygote died while waiting
  }
  auto msg = wire::receive(p.control);
  if (!msg || !*msg) ::_exit(0);  // the helper is gone or gave up on us
  std::vector<UniqueFd>& fds = (*msg)->fds;
  const nlohmann::json& a = (*msg)->body;
  if (int step = apply_assignment(p, a, fds); step != 0) die(p.control, step, errno);
  fds.clear();
  // The environment's CPUs: init's own are inherited by a bootstrap started
  // below; one started already (zygote, pre-started) gets them before it is
  // let go. A placement, not a limit, so a failure is not an error.
  if (const auto cpus = a.value("cpus", std::vector<int>{}); !cpus.empty()) {
    const cpu_set_t set = cpu_set_of(cpus);
    ::sched_setaffinity(0, sizeof(set), &set);
    if (child > 0) ::sched_setaffinity(child, sizeof(set), &set);
  }

  if (zygote_pipe) {
    std::string block;
    for (const auto& kv : a.value("env", std::vector<std::string>{})) {
      block += kv;
      block.push_back('\0');
    }
    for (std::size_t off = 0; off < block.size();) {
      ssize_t n = ::write(zygote_pipe.get(), block.data() + off, block.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die(p.control, kStepExec, errno);
      off += static_cast<std::size_t>(n);
    }
    zygote_pipe.reset();
  } else if (go_pipe) {
    // Lives until init exits (reap_until does not return): the bootstrap reads it.
    static std::optional<ExecArgs> exec;
    exec.emplace(a.value("argv", std::vector<std::string>{}),
                 a.value("env", std::vector<std::string>{}));
    if (exec->argv()[0] == nullptr) die(p.control, kStepExec, EINVAL);
    prestarted.exec = &*exec;
    prestarted.max_fds = a.value("max_fds", p.blank->max_fds);
    if (::write(go_pipe.get(), "g", 1) != 1) die(p.control, kStepExec, errno);
    go_pipe.reset();
  } else {
    ExecArgs exec(a.value("argv", std::vector<std::string>{}),
                  a.value("env", std::vector<std::string>{}));
    if (exec.argv()[0] == nullptr) die(p.control, kStepExec, EINVAL);
    child = spawn_bootstrap(p, exec, a.value("max_fds", p.blank->max_fds), -1);
    if (child < 0) die(p.control, kStepFork, errno);
  }
  // The helper sees end-of-file on the control socket once the bootstrap has
  // exec'd (its copy is close-on-exec) and this one is closed.
  ::close(p.control);
  ::close(p.output);
  reap_until(child, p.status);
}

Result<void> write_proc_file(pid_t pid, const char* name, const std::string& text) {
  std::string path = fmt::format("/proc/{}/{}", pid, name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail(sys_error("writing " + path, errno));
  }
  return {};
}

// A detached, read-only clone of a host folder, for init to attach.
Result<UniqueFd> clone_tree(const std::string& path) {
  UniqueFd fd(
      ::open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!fd) return fail(sys_error("cloning the mount of " + path, errno));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(fd.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) != 0) {
    return fail(sys_error("making " + path + " read-only", errno));
  }
  return fd;
}

// /opt: one layer is a clone of its folder; several are one read-only overlay
// (later layers win: overlayfs gives precedence to the leftmost lowerdir).
Result<UniqueFd> layers_tree(const std::vector<std::string>& layers) {
  if (layers.size() == 1) return clone_tree(layers.front());
  std::string lower;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (!lower.empty()) lower += ':';
    lower += *it;
  }
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) return fail(sys_error("fsopen overlay", errno));
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "lowerdir", lower.c_str(), 0) != 0 ||
      ::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return fail(sys_error("creating the layers' overlay", errno));
  }
  UniqueFd m(::fsmount(fs.get(), FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!m) return fail(sys_error("mounting the layers' overlay", errno));
  return m;
}

}  // namespace

Result<void> build_root_template(NamespaceContext& ctx, const std::string& dir) {
  if (ctx.user_namespace) return fail(Errc::kUnavailable, "a root template needs root");
  if (::unshare(CLONE_NEWNS) != 0) return fail(sys_error("unsharing the mount namespace", errno));
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return fail(sys_error("making the helper's mounts slaves of the host's", errno));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(sys_error("creating " + dir, errno));
  }
  if (!assemble_root(dir, "", passwd_file(ctx), group_file(ctx), /*per_env=*/false)) {
    return fail(sys_error("assembling the sandbox root under " + dir, errno));
  }
  if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0) {
    return fail(sys_error("making the sandbox root read-only", errno));
  }
  ctx.root_template = dir;
  return {};
}

Result<Blank> start_blank(const BlankPlan& plan, const NamespaceContext& ctx) {
  if (ctx.seccomp == nullptr) return fail(Errc::kInternal, "no seccomp filter");
  if (plan.egress != nullptr && ctx.user_namespace) {
    return fail(Errc::kUnavailable,
                "outbound network (egress) needs a daemon running as root; this one uses user "
                "namespaces");
  }
  Blank out;
  if (ctx.cgroups) {
    if (ctx.cgroup_version == CgroupVersion::kNone) {
      return fail(Errc::kUnavailable, "no cgroup hierarchy found under /sys/fs/cgroup");
    }
    out.cgroup = Cgroup::adopt(ctx.cgroup_version, ctx.cgroup_name, plan.id, plan.limits,
                               "/sys/fs/cgroup", ctx.freezer);
  }
  auto output = make_pipe(O_CLOEXEC);
  if (!output) return fail(output.error());
  auto status = make_pipe(O_CLOEXEC);
  if (!status) return fail(status.error());
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return fail(sys_error("socketpair", errno));
  }
  UniqueFd control(sv[0]), child_control(sv[1]);
  std::optional<ExecArgs> zygote;
  if (!plan.zygote_argv.empty()) zygote.emplace(plan.zygote_argv, plan.zygote_env);
  InitPlan ip{&plan, &ctx, out.cgroup.get(), child_control.get(), output->write.get(),
              status->write.get(), zygote ? &*zygote : nullptr, passwd_file(ctx), group_file(ctx),
              // The helper's dispositions, which init inherits; they do not
              // change after it starts, so they are read once.
              [] {
                static const sigset_t ignored = ignored_signals();
                return ignored;
              }()};

  // syscall: clone with fork-like semantics (no new stack); the helper is
  // single-threaded, so the child may run ordinary code. Only the PID (and
  // user) namespace is made here: the others are unshared by init itself.
  long flags = CLONE_NEWPID | SIGCHLD | (ctx.user_namespace ? CLONE_NEWUSER : 0);
  const std::int64_t t0 = now_us();
  long pid = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) return fail(sys_error("clone into a new PID namespace", errno));
  if (pid == 0) {
    control.reset();
    run_init(ip);
  }
  out.pid = static_cast<pid_t>(pid);
  out.clone_us = now_us() - t0;
  if (ctx.user_namespace) {
    // The sandbox user inside is the helper's own user outside; nothing else is mapped.
    auto mapped = write_proc_file(out.pid, "setgroups", "deny");
    if (mapped)
      mapped = write_proc_file(out.pid, "uid_map", fmt::format("{} {} 1", ctx.uid, ::geteuid()));
    if (mapped)
      mapped = write_proc_file(out.pid, "gid_map", fmt::format("{} {} 1", ctx.gid, ::getegid()));
    if (mapped && ::write(control.get(), "g", 1) != 1)
      mapped = fail(sys_error("starting init", errno));
    if (!mapped) {
      ::kill(out.pid, SIGKILL);
      ::waitpid(out.pid, nullptr, 0);
      return fail(mapped.error());
    }
  }
  (void)::fcntl(output->read.get(), F_SETFL, O_NONBLOCK);
  out.control = std::move(control);
  out.output = std::move(output->read);
  out.status = std::move(status->read);
  return out;
}

InitReport read_init_report(int control) {
  InitReport out;
  Report r;
  iovec iov{&r, sizeof(r)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(2 * sizeof(int))] = {};
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  ssize_t n;
  do {
    n = ::recvmsg(control, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    auto fds = wire::take_fds(msg);  // the listener, then (root mode) the network namespace
    if (!fds.empty()) out.listener = std::move(fds[0]);
    if (fds.size() > 1) out.netns = std::move(fds[1]);
  }
  if (n == 0 || (n < 0 && errno == ECONNRESET)) {
    out.kind = InitReport::kClosed;
    return out;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    out.kind = InitReport::kNothing;
    return out;
  }
  if (n < 0) {
    out.error = sys_error("reading the environment's setup report", errno);
    return out;
  }
  if (n == sizeof(int)) {
    // child_setup_stdio's exec report: a bare errno.
    int err;
    std::memcpy(&err, &r, sizeof(int));
    out.error = sys_error("exec", err);
    return out;
  }
  if (n != sizeof(r)) {
    out.error = make_error(Errc::kInternal, "malformed setup report from the environment");
    return out;
  }
  if (r.step != 0) {
    out.error = sys_error(step_name(r.step), r.err);
    return out;
  }
  if (!out.listener) {
    out.error = make_error(Errc::kInternal, "init sent no listener");
    return out;
  }
  out.kind = InitReport::kReady;
  out.timings = {
      {"cgroup_us", r.cgroup_us}, {"netns_listener_us", r.network_us}, {"mounts_us", r.mounts_us}};
  if (r.zygote_us > 0) out.timings["zygote_fork_us"] = r.zygote_us;
  if (r.netns_reused != 0) out.timings["netns_reused"] = true;
  return out;
}

Result<void> assign_blank(int control, const SandboxSpec& spec, const std::vector<std::string>& env,
                          bool zygote) {
  nlohmann::json a = {{"tmp_bytes", spec.tmp_bytes}, {"max_fds", spec.max_fds}};
  if (!spec.cpus.empty()) a["cpus"] = spec.cpus;
  if (!zygote) {
    a["argv"] = spec.argv;
    a["env"] = env;
  } else {
    a["env"] = env;
  }
  std::vector<UniqueFd> trees;
  if (::geteuid() == 0) {
    // Root: the helper clones the folders as detached mounts; init attaches them.
    if (!spec.task_root.empty()) {
      auto t = clone_tree(spec.task_root);
      if (!t) return fail(t.error());
      trees.push_back(std::move(*t));
      a["task"] = true;
    }
    if (!spec.layer_roots.empty()) {
      auto o = layers_tree(spec.layer_roots);
      if (!o) return fail(o.error());
      trees.push_back(std::move(*o));
      a["opt"] = true;
    }
  } else {
    // User namespace: init binds the host paths itself, before it enters its root.
    if (spec.layer_roots.size() > 1) {
      return fail(Errc::kUnavailable, "several layers need a daemon running as root");
    }
    a["task_root"] = spec.task_root;
    if (!spec.layer_roots.empty()) a["opt_root"] = spec.layer_roots.front();
  }
  std::vector<int> fds;
  for (const auto& t : trees) fds.push_back(t.get());
  return wire::send(control, a, fds);
}

Result<void> probe_namespaces(NamespaceContext& ctx) {
  ctx.user_namespace = ::geteuid() != 0;
  if (!ctx.user_namespace) return {};
  // Unprivileged user namespaces may be disabled (sysctls); find out now
  // rather than at the first invoke.
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr,
                       nullptr);
  if (pid < 0) {
    return fail(
        sys_error("namespace isolation without root needs unprivileged user namespaces "
                  "(kernel.unprivileged_userns_clone / user.max_user_namespaces)",
                  errno));
  }
  if (pid == 0) ::_exit(0);
  ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  return {};
}

}  // namespace lambent::sandbox
