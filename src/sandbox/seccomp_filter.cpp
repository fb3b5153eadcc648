#include "sandbox/seccomp_filter.hpp"

#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fd.hpp"

#include <utility>

namespace lambent::sandbox {
namespace {

// Denied outright with EPERM. docs/sandbox.md gives the reason for each group.
constexpr const char* kDenied[] = {
    // Mounts and filesystem views: the root is assembled once, by us.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // New namespaces: nested sandboxes widen the kernel attack surface
    // (user namespaces above all) and could escape our cgroup/netns view.
    "unshare",
    "setns",
    // Kernel modules and replacing the kernel.
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    // eBPF and perf: large, frequently exploited kernel surfaces.
    "bpf",
    "perf_event_open",
    // Looking into or writing other processes' memory.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    // Kernel keyrings are not namespaced per environment.
    "keyctl",
    "add_key",
    "request_key",
    // Host-wide state.
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "vhangup",
    "nfsservctl",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    // Bypasses path-based access checks.
    "open_by_handle_at",
    // Used to widen race windows in kernel exploits.
    "userfaultfd",
    // Legacy/rare interfaces with a history of bugs.
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "get_kernel_syms",
    "query_module",
    "create_module",
    "afs_syscall",
    "vserver",
    "remap_file_pages",
};

// Denied with ENOSYS so that callers take their fallback path: glibc falls
// back from clone3 to clone (which we can inspect), libuv from io_uring to epoll.
constexpr const char* kNotImplemented[] = {"clone3", "io_uring_setup", "io_uring_enter",
                                           "io_uring_register"};

// clone flags that create namespaces.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,     CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER,   CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */};

}  // namespace

Result<SeccompFilter> SeccompFilter::build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return fail(Errc::kInternal, "seccomp_init failed");
  SeccompFilter filter(ctx);
  // Other architectures (i386 via int 0x80, x32) are killed: the rules below
  // are written for the native syscall table only.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return fail(sys_error("seccomp bad-arch action", -rc));
  }
  // A binary tree of syscall numbers instead of a list: the kernel runs the
  // filter once per syscall number when it is attached (to cache the
  // always-allowed ones), and a linear walk past ~70 rules made attaching it
  // ~0.4 ms of every cold start.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return fail(sys_error("seccomp optimization level", -rc));
  }
  auto add = [&](std::uint32_t action, const char* name, unsigned count,
                 const scmp_arg_cmp* cmp) -> Result<void> {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return {};  // not on this architecture
    int rc = seccomp_rule_add_array(ctx, action, nr, count, cmp);
    if (rc < 0) return fail(sys_error(std::string("seccomp rule for ") + name, -rc));
    return {};
  };
  for (const char* name : kDenied) LAMBENT_TRY(add(SCMP_ACT_ERRNO(EPERM), name, 0, nullptr));
  for (const char* name : kNotImplemented) {
    LAMBENT_TRY(add(SCMP_ACT_ERRNO(ENOSYS), name, 0, nullptr));
  }
  for (unsigned long flag : kNamespaceFlags) {
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    LAMBENT_TRY(add(SCMP_ACT_ERRNO(EPERM), "clone", 1, &cmp));
  }
  // personality(): disabling ASLR or making reads imply exec weakens exploit
  // mitigations. The query personality(0xffffffff) must stay allowed, and
  // libseccomp accepts one comparison per argument, so the mask includes bit 31:
  // values with bit 31 set (other than the query) are not checked — documented gap.
  for (unsigned long flag : {static_cast<unsigned long>(ADDR_NO_RANDOMIZE),
                             static_cast<unsigned long>(READ_IMPLIES_EXEC)}) {
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, flag | 0x80000000UL, flag);
    LAMBENT_TRY(add(SCMP_ACT_ERRNO(EPERM), "personality", 1, &cmp));
  }
  // TIOCSTI/TIOCLINUX push input into a terminal another process reads.
  for (unsigned long req : {static_cast<unsigned long>(TIOCSTI), 0x541CUL /* TIOCLINUX */}) {
    scmp_arg_cmp cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, req);
    LAMBENT_TRY(add(SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &cmp));
  }
  // Compile once: libseccomp 2.5 exports BPF only to an fd.
  UniqueFd mem(::memfd_create("lambent-seccomp", MFD_CLOEXEC));
  if (!mem) return fail(sys_error("memfd_create", errno));
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0) {
    return fail(sys_error("exporting the seccomp filter", -rc));
  }
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    return fail(Errc::kInternal, "seccomp filter export has an odd size");
  }
  filter.program_.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), filter.program_.data(), static_cast<std::size_t>(size), 0) != size) {
    return fail(sys_error("reading the seccomp filter", errno));
  }
  return filter;
}

SeccompFilter::SeccompFilter(SeccompFilter&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), program_(std::move(o.program_)) {}

SeccompFilter& SeccompFilter::operator=(SeccompFilter&& o) noexcept {
  if (this != &o) {
    if (ctx_ != nullptr) seccomp_release(static_cast<scmp_filter_ctx>(ctx_));
    ctx_ = std::exchange(o.ctx_, nullptr);
    program_ = std::move(o.program_);
  }
  return *this;
}

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) seccomp_release(static_cast<scmp_filter_ctx>(ctx_));
}

int SeccompFilter::load() const {
  // The program exported at build(): seccomp_load() would compile the context
  // again, allocating, in a child that shares init's memory (and heap) and in
  // the pre-started bootstrap runs alongside it.
  sock_fprog prog{static_cast<unsigned short>(program_.size()),
                  const_cast<sock_filter*>(program_.data())};  // the kernel only reads it
  // syscall: glibc has no seccomp wrapper; flags 0 as libseccomp's defaults.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return -errno;
  return 0;
}

}  // namespace lambent::sandbox
