// The helper process: single-threaded, so it may fork freely. It owns every
// environment's processes, folders and cgroups, and reports each exit.
#include "sandbox/helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "core/files.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/namespaces.hpp"
#include "sandbox/network.hpp"
#include "sandbox/process_launch.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/wire.hpp"

namespace lambent::sandbox {
namespace {

using nlohmann::json;

// The helper has no spdlog sink of its own worth configuring: it writes
// plain lines to the daemon's stderr, which it inherited.
template <class... Args>
void helper_log(fmt::format_string<Args...> f, Args&&... args) {
  std::string line = "[sandbox-helper] " + fmt::format(f, std::forward<Args>(args)...) + "\n";
  [[maybe_unused]] ssize_t n = ::write(2, line.data(), line.size());
}

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

struct LiveEnv {
  std::string id;
  pid_t pid = -1;
  Isolation isolation = Isolation::kProcess;
  std::string dir;                 // <state_dir>/<id>
  UniqueFd status;                 // namespaces: the bootstrap's wait status
  std::unique_ptr<Cgroup> cgroup;  // namespaces only
  int egress_slot = -1;            // namespaces with egress: its /30
};

struct Launch {
  LiveEnv env;
  std::string address;
  UniqueFd listener, output;
  std::vector<UniqueFd> extra;  // namespaces: peak memory, freezer
  json info = json::object();
};

class Helper {
 public:
  Helper(int sock, SpawnerOptions options) : sock_(sock), options_(std::move(options)) {}

  [[noreturn]] void run() {
    setup();
    loop();
    stop_all();
    ::_exit(0);
  }

 private:
  void setup() {
    // Signals become fd events so that the loop is one poll().
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    sigfd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    // Orphaned grandchildren of process-mode environments come back to us to be reaped.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    null_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));

    if (!options_.state_dir.empty()) {
      (void)make_dirs(options_.state_dir, 0711);
      sweep_state_dir();
    }
    if (options_.isolation == Isolation::kNamespaces) {
      cgroup_version_ = detect_cgroup_version();
      if (cgroup_version_ != CgroupVersion::kNone) {
        Cgroup::sweep(cgroup_version_, options_.cgroup_name);
      }
      // A killed predecessor's NAT table (absent nft: a quick failed exec).
      disable_nat(nat_table());
      auto filter = SeccompFilter::build();
      if (filter) {
        seccomp_ = std::move(*filter);
      } else {
        helper_log("building the seccomp filter failed: {}", filter.error().message);
      }
    }
  }

  void sweep_state_dir() {
    // Leftovers of a crashed helper: nothing else lives in state_dir.
    auto r = remove_tree(options_.state_dir);
    if (!r) helper_log("sweeping {}: {}", options_.state_dir, r.error().message);
    (void)make_dirs(options_.state_dir, 0711);
  }

  void loop() {
    for (;;) {
      pollfd fds[2] = {{sock_, POLLIN, 0}, {sigfd_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents & POLLIN) {
        if (!drain_signals()) return;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        auto msg = wire::receive(sock_);
        if (!msg || !*msg) return;  // the daemon is gone
        if (!handle((*msg)->body)) return;
      }
    }
  }

  // False when asked to stop.
  bool drain_signals() {
    signalfd_siginfo si;
    bool stop = false;
    while (::read(sigfd_.get(), &si, sizeof(si)) == sizeof(si)) {
      if (si.ssi_signo != SIGCHLD) stop = true;
    }
    reap();
    return !stop;
  }

  void reap() {
    for (;;) {
      siginfo_t info{};
      // WNOWAIT: the exited leader stays a zombie, so its pid (= the process
      // group id) cannot be reused while we kill the rest of the group.
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
      pid_t pid = info.si_pid;
      auto it = envs_.find(pid);
      if (it != envs_.end() && it->second.isolation == Isolation::kProcess) ::kill(-pid, SIGKILL);
      siginfo_t reaped{};
      ::waitid(P_PID, static_cast<id_t>(pid), &reaped, WEXITED);
      if (it == envs_.end()) continue;  // an orphaned grandchild
      LiveEnv env = std::move(it->second);
      envs_.erase(it);
      finish(std::move(env), status_from_siginfo(info.si_code, info.si_status));
    }
  }

  void finish(LiveEnv env, ExitStatus st) {
    if (env.status) {
      // Init reports how the bootstrap ended; init itself only mirrors it.
      int wstatus = 0;
      if (::read(env.status.get(), &wstatus, sizeof(wstatus)) == sizeof(wstatus)) {
        st = ExitStatus{};
        if (WIFEXITED(wstatus)) {
          st.exit_code = WEXITSTATUS(wstatus);
        } else if (WIFSIGNALED(wstatus)) {
          st.signal = WTERMSIG(wstatus);
        }
      }
    }
    std::uint64_t peak = 0;
    if (env.cgroup) {
      st.oom_killed = env.cgroup->oom_killed();
      if (auto fd = env.cgroup->open_peak()) peak = cgroup_read_peak(fd->get());
      env.cgroup.reset();  // kills stragglers, removes the folders
    }
    // The pair died with the namespace (deleting one end deletes both).
    addresses_.release(env.egress_slot);
    if (!env.dir.empty()) {
      auto r = remove_tree(env.dir);
      if (!r) helper_log("removing {}: {}", env.dir, r.error().message);
    }
    (void)wire::send(sock_, json{{"op", "exited"},
                                 {"id", env.id},
                                 {"exit_code", st.exit_code},
                                 {"signal", st.signal},
                                 {"oom_killed", st.oom_killed},
                                 {"peak_memory_bytes", peak}});
  }

  // False when asked to stop.
  bool handle(const json& msg) {
    std::string op = msg.value("op", "");
    if (op == "spawn") {
      handle_spawn(msg);
    } else if (op == "kill") {
      kill_env(msg.value("id", ""));
    } else if (op == "freeze" || op == "thaw") {
      // Process mode only: namespaced environments are frozen through their cgroup.
      pid_t pid = pid_of(msg.value("id", ""));
      if (pid > 0) ::kill(-pid, op == "freeze" ? SIGSTOP : SIGCONT);
    } else if (op == "shutdown") {
      return false;
    }
    return true;
  }

  pid_t pid_of(const std::string& id) const {
    for (const auto& [pid, env] : envs_) {
      if (env.id == id) return pid;
    }
    return -1;
  }

  void kill_env(const std::string& id) {
    pid_t pid = pid_of(id);
    if (pid <= 0) return;
    const LiveEnv& env = envs_.at(pid);
    if (env.isolation == Isolation::kProcess) {
      ::kill(-pid, SIGKILL);
      ::kill(-pid, SIGCONT);  // a stopped (frozen) group must run to die
    } else {
      // Killing a PID namespace's init kills every process in it.
      ::kill(pid, SIGKILL);
      if (env.cgroup && env.cgroup->version() == CgroupVersion::kV1) {
        // A frozen cgroup must thaw for its tasks to die.
        auto fz = env.cgroup->open_freezer();
        if (fz) (void)cgroup_set_frozen(fz->get(), CgroupVersion::kV1, false);
      } else if (env.cgroup) {
        auto fz = env.cgroup->open_freezer();
        if (fz) (void)cgroup_set_frozen(fz->get(), CgroupVersion::kV2, false);
      }
    }
  }

  void handle_spawn(const json& msg) {
    std::uint64_t req = msg.value("req", std::uint64_t{0});
    auto spec = wire::spec_from_json(msg.value("spec", json::object()));
    Result<Launch> launched = spec ? launch(*spec) : fail(spec.error());
    if (!launched) {
      (void)wire::send(
          sock_,
          json{{"op", "spawn_failed"}, {"req", req}, {"error", wire::to_json(launched.error())}});
      return;
    }
    Launch& l = *launched;
    std::vector<int> fds = {l.listener.get(), l.output.get()};
    for (auto& e : l.extra) fds.push_back(e.get());
    json reply = {{"op", "spawned"},  {"req", req},           {"id", l.env.id},
                  {"pid", l.env.pid}, {"address", l.address}, {"info", l.info}};
    auto sent = wire::send(sock_, reply, fds);
    pid_t pid = l.env.pid;
    envs_.emplace(pid, std::move(l.env));
    if (!sent) kill_env(envs_.at(pid).id);
  }

  Result<Launch> launch(const SandboxSpec& spec) {
    if (!wire::valid_env_id(spec.id)) {
      return fail(Errc::kInvalidParameter, "invalid environment id '" + spec.id + "'");
    }
    if (spec.argv.empty()) return fail(Errc::kInvalidParameter, "empty argv for " + spec.id);
    if (pid_of(spec.id) > 0) {
      return fail(Errc::kConflict, "environment " + spec.id + " already exists");
    }
    std::string dir = options_.state_dir + "/" + spec.id;
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return fail(sys_error("creating environment folder " + dir, errno));
    }
    Result<Launch> r = options_.isolation == Isolation::kProcess ? launch_process(spec, dir)
                                                                 : launch_ns(spec, dir);
    if (!r) (void)remove_tree(dir);
    return r;
  }

  Result<Launch> launch_process(const SandboxSpec& spec, const std::string& dir) {
    std::string tmp = dir + "/tmp";
    if (::mkdir(tmp.c_str(), 0700) != 0) return fail(sys_error("creating " + tmp, errno));
    int port = 0;
    auto listener = make_listener(0, &port);
    if (!listener) return fail(listener.error());
    std::string address = fmt::format("127.0.0.1:{}", port);
    auto out = make_pipe(O_CLOEXEC);
    if (!out) return fail(out.error());
    auto report = make_pipe(O_CLOEXEC);
    if (!report) return fail(report.error());
    ExecArgs args(spec.argv, build_env(spec.env, address, {"TMPDIR=" + tmp}));
    const std::string cwd = spec.task_root.empty() ? tmp : spec.task_root;

    pid_t pid = ::fork();
    if (pid < 0) return fail(sys_error("fork", errno));
    if (pid == 0) {
      // Only system calls from here to exec.
      ::setsid();
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      child_setup_stdio(null_.get(), out->write.get(), report->write.get());
      if (::chdir(cwd.c_str()) != 0) child_fail(errno);
      ::execve(args.path().c_str(), args.argv(), args.envp());
      child_fail(errno);
    }
    report->write.reset();
    out->write.reset();
    LiveEnv env{spec.id, pid, Isolation::kProcess, dir, {}, {}};
    auto exec_ok = read_exec_report(report->read.get(), "starting " + spec.argv.front());
    if (!exec_ok) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail(exec_ok.error());
    }
    (void)::fcntl(out->read.get(), F_SETFL, O_NONBLOCK);
    (void)::fcntl(listener->get(), F_SETFL, O_NONBLOCK);
    Launch l;
    l.env = std::move(env);
    l.address = address;
    l.listener = std::move(*listener);
    l.output = std::move(out->read);
    return l;
  }

  Result<Launch> launch_ns(const SandboxSpec& spec, const std::string& dir) {
    NamespaceContext ctx;
    ctx.uid = options_.sandbox_uid;
    ctx.gid = options_.sandbox_gid;
    ctx.cgroup_version = cgroup_version_;
    ctx.cgroup_name = options_.cgroup_name;
    ctx.seccomp = seccomp_ ? &*seccomp_ : nullptr;
    if (ctx.seccomp == nullptr) return fail(Errc::kUnavailable, "no seccomp filter available");
    std::int64_t t0 = now_us();
    EgressPlan egress;
    HostNetSockets host_sockets;
    int slot = -1;
    if (spec.network_egress) {
      if (!nat_tried_) {
        nat_tried_ = true;
        auto nat = enable_nat(nat_table());
        nat_ok_ = nat.has_value();
        if (!nat) helper_log("{}", nat.error().message);
      }
      auto sockets = open_host_net_sockets();
      if (!sockets) return fail(sockets.error());
      host_sockets = std::move(*sockets);
      slot = addresses_.allocate();
      if (slot < 0)
        return fail(Errc::kUnavailable, "egress: every address of 10.201.0.0/16 is in use");
      // Unique per daemon by the slot, across daemons by the id.
      egress.host_if = fmt::format("lb{:04x}{}", slot, spec.id.substr(0, 8));
      egress.host_addr = EgressAddresses::host_address(slot);
      egress.env_addr = EgressAddresses::env_address(slot);
      egress.host_netlink = host_sockets.netlink.get();
      egress.host_inet = host_sockets.inet.get();
    }
    auto ns = launch_namespaces(spec, dir, ctx, slot >= 0 ? &egress : nullptr);
    if (!ns) {
      addresses_.release(slot);
      return fail(ns.error());
    }
    Launch l;
    l.env = LiveEnv{
        spec.id, ns->pid, Isolation::kNamespaces, dir, std::move(ns->status), std::move(ns->cgroup),
        slot};
    l.address = "127.0.0.1:9001";
    l.listener = std::move(ns->listener);
    l.output = std::move(ns->output);
    l.info["cgroup_version"] = l.env.cgroup ? static_cast<int>(l.env.cgroup->version()) : 0;
    if (l.env.cgroup) {
      auto peak = l.env.cgroup->open_peak();
      auto fz = l.env.cgroup->open_freezer();
      if (peak && fz) {
        l.extra.push_back(std::move(*peak));
        l.extra.push_back(std::move(*fz));
      }
    }
    if (slot >= 0) l.info["egress_address"] = format_ipv4(egress.env_addr);
    ns->timings["total_us"] = now_us() - t0;
    l.info["timings"] = ns->timings;
    if (options_.trace_timings) helper_log("spawned {}: {}", spec.id, ns->timings.dump());
    return l;
  }

  // Kills every environment and reports each exit; bounded by the kernel's
  // teardown, not by the environments' cooperation.
  void stop_all() {
    for (auto& [pid, env] : envs_) kill_env(env.id);
    while (!envs_.empty()) {
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) break;
      reap();
    }
    // Orphans of process-mode environments may still be dying.
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!options_.state_dir.empty()) sweep_state_dir();
    if (nat_ok_) disable_nat(nat_table());
    if (cgroup_version_ != CgroupVersion::kNone) {
      Cgroup::sweep(cgroup_version_, options_.cgroup_name);
      Cgroup::remove_parent(cgroup_version_, options_.cgroup_name);
    }
  }

  // nftables table names: letters, digits, underscores.
  std::string nat_table() const {
    std::string t = options_.cgroup_name;
    for (char& c : t) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return t;
  }

  int sock_;
  SpawnerOptions options_;
  UniqueFd sigfd_;
  UniqueFd null_;
  CgroupVersion cgroup_version_ = CgroupVersion::kNone;
  std::optional<SeccompFilter> seccomp_;
  std::map<pid_t, LiveEnv> envs_;
  EgressAddresses addresses_{static_cast<std::uint32_t>(::getpid()) * 613u};
  bool nat_tried_ = false, nat_ok_ = false;
};

}  // namespace

void run_helper(int sock, pid_t daemon_pid, const SpawnerOptions& options) {
  // The daemon dying must end the helper and its environments: SIGTERM goes
  // through the signalfd and the orderly stop_all(); EOF on the socket too.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != daemon_pid) ::_exit(0);
  // Out of the terminal's process group: Ctrl-C is the daemon's to handle.
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "lambent-spawner");
  // Keep only the socket and stdio; the daemon may have had anything open.
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::close(devnull);
  }
  if (sock != 3) {
    ::dup2(sock, 3);
    sock = 3;
  }
  ::close_range(4, ~0U, 0);
  Helper helper(sock, options);
  helper.run();
}

}  // namespace lambent::sandbox
