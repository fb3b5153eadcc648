// The helper process: single-threaded, so it may fork freely. It owns every
// environment's processes, folders and cgroups, and reports each exit.
#include "sandbox/helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "core/cpus.hpp"
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

// A process-mode environment.
struct LiveEnv {
  std::string id;
  pid_t pid = -1;
  std::string dir;  // <state_dir>/<id>
};

struct Launch {
  LiveEnv env;
  std::string address;
  UniqueFd listener, output;
};

// A namespaced sandbox from clone to exit. Made ahead (a pool blank: req 0
// until claimed) or for one spawn; assigned to an environment when init is
// ready; live once the bootstrap runs.
struct NsEnv {
  enum class Stage { kBooting, kReady, kAssigned, kLive };
  Stage stage = Stage::kBooting;
  std::string id;  // the environment's id once assigned; the blank's own before
  std::string dir;
  std::string kind;  // pool key
  bool zygote = false;
  Blank blank;
  int egress_slot = -1;
  std::uint64_t req = 0;            // the spawn it serves; 0 while unclaimed
  std::optional<SandboxSpec> spec;  // the claimed spawn's spec, until it is live
  bool made_ahead = false;          // claimed from the pool: a failure retries afresh
  std::int64_t deadline_us = 0;     // claimed: the spawn fails (or retries) after it
  std::int64_t t0 = 0, t_assigned = 0;
  json timings = json::object();
};

// The kind of a sandbox that failed: never counted as available.
constexpr const char* kFailedKind = "(failed)";

// Network namespaces of ended sandboxes, kept to be entered by later ones
// (~1.3 ms of CPU less per spawn than a new namespace, and none to tear
// down). Each costs ~180 KB of kernel memory: at most this many are kept, and
// none longer than kSpareNetnsUs.
constexpr std::size_t kMaxSpareNetns = 256;
constexpr std::int64_t kSpareNetnsUs = 30'000'000;

struct SpareNetns {
  UniqueFd fd;
  std::int64_t since_us = 0;
};

// What the pool keeps ready for one kind of environment.
struct PoolKind {
  std::vector<std::string> zygote_argv, zygote_env;  // empty: plain blanks
  int failures = 0;  // consecutive blanks that died before use; at 3 the kind stops
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
      ctx_.uid = options_.sandbox_uid;
      ctx_.gid = options_.sandbox_gid;
      ctx_.cgroup_name = options_.cgroup_name;
      ctx_.freezer = options_.freezer;
      if (auto probe = probe_namespaces(ctx_); !probe) {
        helper_log("{}", probe.error().message);
        ns_unavailable_ = probe.error().message;
      }
      ctx_.cgroup_version = detect_cgroup_version();
      if (ctx_.cgroup_version != CgroupVersion::kNone) {
        Cgroup::sweep(ctx_.cgroup_version, options_.cgroup_name);
      }
      if (ctx_.user_namespace && !cgroups_writable()) {
        ctx_.cgroups = false;
        helper_log(
            "running without root and without a writable cgroup hierarchy: environments get no "
            "memory, pids or CPU limits (delegate a cgroup v2 subtree, or run as root)");
      }
      // A killed predecessor's NAT table (absent nft: a quick failed exec).
      if (!ctx_.user_namespace) disable_nat(nat_table());
      auto filter = SeccompFilter::build();
      if (filter) {
        seccomp_ = std::move(*filter);
        ctx_.seccomp = &*seccomp_;
      } else {
        helper_log("building the seccomp filter failed: {}", filter.error().message);
      }
      if (ns_unavailable_.empty() && !ctx_.user_namespace && !options_.state_dir.empty()) {
        if (auto t = build_root_template(ctx_, options_.state_dir + "/root"); !t) {
          helper_log("each sandbox assembles its own root: {}", t.error().message);
        }
      }
      if (options_.pool_size > 0 && ns_unavailable_.empty() && ctx_.seccomp != nullptr) {
        kinds_[""] = PoolKind{};  // plain blanks: custom runtimes, and the fallback
      }
    }
  }

  bool cgroups_writable() const {
    if (ctx_.cgroup_version == CgroupVersion::kNone) return false;
    auto probe = Cgroup::create(ctx_.cgroup_version, options_.cgroup_name, "probe", CgroupLimits{},
                                "/sys/fs/cgroup");
    return probe.has_value();
  }

  void sweep_state_dir() {
    // Leftovers of a crashed helper: nothing else lives in state_dir.
    auto r = remove_tree(options_.state_dir);
    if (!r) helper_log("sweeping {}: {}", options_.state_dir, r.error().message);
    (void)make_dirs(options_.state_dir, 0711);
  }

  void loop() {
    std::vector<pollfd> fds;
    std::vector<pid_t> owners;
    for (;;) {
      fds.assign({{sock_, POLLIN, 0}, {sigfd_.get(), POLLIN, 0}});
      owners.assign(2, -1);
      for (const auto& [pid, e] : ns_) {
        if (e.stage != NsEnv::Stage::kLive && e.blank.control) {
          fds.push_back({e.blank.control.get(), POLLIN, 0});
          owners.push_back(pid);
        }
      }
      // Refilling the pool and removing dead cgroups wait for idle moments;
      // spawns in flight have deadlines.
      bool background = !graveyard_.empty() || pool_short();
      int timeout = background ? 2 : claimed_in_flight() ? 20 : spare_netns_.empty() ? -1 : 5000;
      int rc = ::poll(fds.data(), fds.size(), timeout);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents & POLLIN) {
        if (!drain_signals()) return;
      }
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents != 0) on_init_report(owners[i]);
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        auto msg = wire::receive(sock_);
        if (!msg || !*msg) return;  // the daemon is gone
        if (!handle((*msg)->body)) return;
        // More requests queued: serve them before background work.
        pollfd more{sock_, POLLIN, 0};
        if (::poll(&more, 1, 0) > 0) continue;
      }
      check_deadlines();
      bury();
      refill();
      expire_spare_netns();
    }
  }

  // Oldest first: the daemon has most likely closed that sandbox's listener
  // and connections by now (a namespace still holding a socket is not reused).
  void keep_spare_netns(UniqueFd fd) {
    if (!fd) return;
    if (spare_netns_.size() >= kMaxSpareNetns && !spare_netns_.empty()) spare_netns_.pop_front();
    if (spare_netns_.size() < kMaxSpareNetns) spare_netns_.push_back({std::move(fd), now_us()});
  }

  void expire_spare_netns() {
    const std::int64_t oldest = now_us() - kSpareNetnsUs;
    while (!spare_netns_.empty() && spare_netns_.front().since_us < oldest) {
      spare_netns_.pop_front();
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
      if (it != envs_.end()) ::kill(-pid, SIGKILL);  // process mode: the rest of its group
      siginfo_t reaped{};
      ::waitid(P_PID, static_cast<id_t>(pid), &reaped, WEXITED);
      ExitStatus st = status_from_siginfo(info.si_code, info.si_status);
      if (it != envs_.end()) {
        LiveEnv env = std::move(it->second);
        envs_.erase(it);
        finish_process(std::move(env), st);
      } else if (auto ns = ns_.find(pid); ns != ns_.end()) {
        NsEnv env = std::move(ns->second);
        ns_.erase(ns);
        finish_ns(std::move(env), st);
      }  // else an orphaned grandchild
    }
  }

  void send_exited(const std::string& id, const ExitStatus& st, std::uint64_t peak) {
    (void)wire::send(sock_, json{{"op", "exited"},
                                 {"id", id},
                                 {"exit_code", st.exit_code},
                                 {"signal", st.signal},
                                 {"oom_killed", st.oom_killed},
                                 {"peak_memory_bytes", peak}});
  }

  void finish_process(LiveEnv env, ExitStatus st) {
    remove_dir(env.dir);
    send_exited(env.id, st, 0);
  }

  void finish_ns(NsEnv env, ExitStatus st) {
    if (env.req != 0 && env.stage != NsEnv::Stage::kLive && env.blank.control) {
      // What init said before it died (its death may be seen first): the
      // bootstrap's exec, or the error that ended the setup.
      pollfd p{env.blank.control.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) on_init_report(env);
    }
    if (env.req == 0 || env.stage != NsEnv::Stage::kLive) {
      // Died before it served anyone: a pool blank, or a spawn that failed.
      if (env.req != 0) {
        fail_claimed(env, make_error(Errc::kInternal, "init died during setup"));
      } else {
        note_blank_died(env.kind);
      }
    } else {
      if (env.blank.status) {
        // Init reports how the bootstrap ended; init itself only mirrors it.
        int wstatus = 0;
        if (::read(env.blank.status.get(), &wstatus, sizeof(wstatus)) == sizeof(wstatus)) {
          st = ExitStatus{};
          if (WIFEXITED(wstatus)) {
            st.exit_code = WEXITSTATUS(wstatus);
          } else if (WIFSIGNALED(wstatus)) {
            st.signal = WTERMSIG(wstatus);
          }
        }
      }
    }
    std::uint64_t peak = 0;
    if (auto& cg = env.blank.cgroup) {
      st.oom_killed = cg->oom_killed();
      if (auto fd = cg->open_peak()) peak = cgroup_read_peak(fd->get());
      if (!cg->try_remove()) graveyard_.push_back(std::move(cg));
    }
    // The pair died with the namespace (deleting one end deletes both).
    if (env.egress_slot < 0) keep_spare_netns(std::move(env.blank.netns));
    addresses_.release(env.egress_slot);
    remove_dir(env.dir);
    if (env.stage == NsEnv::Stage::kLive) send_exited(env.id, st, peak);
  }

  void remove_dir(const std::string& dir) {
    if (dir.empty()) return;
    auto r = remove_tree(dir);
    if (!r) helper_log("removing {}: {}", dir, r.error().message);
  }

  // Cgroups whose tasks were still leaving when their environment ended.
  void bury() {
    std::erase_if(graveyard_, [](const std::unique_ptr<Cgroup>& cg) { return cg->try_remove(); });
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
      if (pid > 0 && envs_.contains(pid)) ::kill(-pid, op == "freeze" ? SIGSTOP : SIGCONT);
    } else if (op == "shutdown") {
      return false;
    }
    return true;
  }

  pid_t pid_of(const std::string& id) const {
    for (const auto& [pid, env] : envs_) {
      if (env.id == id) return pid;
    }
    for (const auto& [pid, env] : ns_) {
      if (env.req != 0 && env.id == id) return pid;
    }
    return -1;
  }

  void kill_env(const std::string& id) {
    pid_t pid = pid_of(id);
    if (pid <= 0) return;
    if (envs_.contains(pid)) {
      ::kill(-pid, SIGKILL);
      ::kill(-pid, SIGCONT);  // a stopped (frozen) group must run to die
      return;
    }
    kill_ns(ns_.at(pid));
  }

  void kill_ns(const NsEnv& env) {
    // Killing a PID namespace's init kills every process in it.
    ::kill(env.blank.pid, SIGKILL);
    if (env.blank.cgroup) {
      // A frozen cgroup must thaw for its tasks to die.
      auto fz = env.blank.cgroup->open_freezer();
      if (fz) (void)cgroup_set_frozen(fz->get(), env.blank.cgroup->version(), false);
    }
  }

  void spawn_failed(std::uint64_t req, const Error& e) {
    (void)wire::send(sock_,
                     json{{"op", "spawn_failed"}, {"req", req}, {"error", wire::to_json(e)}});
  }

  void handle_spawn(const json& msg) {
    std::uint64_t req = msg.value("req", std::uint64_t{0});
    auto spec = wire::spec_from_json(msg.value("spec", json::object()));
    if (!spec) return spawn_failed(req, spec.error());
    if (auto ok = check_spec(*spec); !ok) return spawn_failed(req, ok.error());
    if (options_.isolation == Isolation::kNamespaces) return spawn_ns(req, std::move(*spec));

    std::string dir = options_.state_dir + "/" + spec->id;
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return spawn_failed(req, sys_error("creating environment folder " + dir, errno));
    }
    auto launched = launch_process(*spec, dir);
    if (!launched) {
      remove_dir(dir);
      return spawn_failed(req, launched.error());
    }
    Launch& l = *launched;
    std::vector<int> fds = {l.listener.get(), l.output.get()};
    json reply = {{"op", "spawned"},  {"req", req},           {"id", l.env.id},
                  {"pid", l.env.pid}, {"address", l.address}, {"info", json::object()}};
    auto sent = wire::send(sock_, reply, fds);
    pid_t pid = l.env.pid;
    envs_.emplace(pid, std::move(l.env));
    if (!sent) kill_env(envs_.at(pid).id);
  }

  Result<void> check_spec(const SandboxSpec& spec) const {
    if (!wire::valid_env_id(spec.id)) {
      return fail(Errc::kInvalidParameter, "invalid environment id '" + spec.id + "'");
    }
    if (spec.argv.empty()) return fail(Errc::kInvalidParameter, "empty argv for " + spec.id);
    if (pid_of(spec.id) > 0) {
      return fail(Errc::kConflict, "environment " + spec.id + " already exists");
    }
    return {};
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
    // Lambda's open-files limit, not the daemon's (which raises its own).
    const rlimit nofile{spec.max_fds, spec.max_fds};
    const cpu_set_t cpus = cpu_set_of(spec.cpus);  // the environment's placement

    pid_t pid = ::fork();
    if (pid < 0) return fail(sys_error("fork", errno));
    if (pid == 0) {
      // Only system calls from here to exec.
      ::setsid();
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      child_setup_stdio(null_.get(), out->write.get(), report->write.get());
      if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) child_fail(errno);
      if (CPU_COUNT(&cpus) > 0)
        ::sched_setaffinity(0, sizeof(cpus), &cpus);  // a placement: may fail
      if (::chdir(cwd.c_str()) != 0) child_fail(errno);
      ::execve(args.path().c_str(), args.argv(), args.envp());
      child_fail(errno);
    }
    report->write.reset();
    out->write.reset();
    LiveEnv env{spec.id, pid, dir};
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

  // ---- namespaces: blanks, the pool, assignment ----

  // Variables a runtime reads while it starts, before a zygote could learn
  // its function's values: a function that sets its own gets a fresh start.
  static bool startup_variable(std::string_view key) {
    return key.starts_with("PYTHON") || key.starts_with("LD_") || key.starts_with("LC_") ||
           key == "LANG" || key == "TZ" || key == "PATH" || key == "AWS_LAMBDA_EXEC_WRAPPER" ||
           key == "MALLOC_ARENA_MAX" || key == "GLIBC_TUNABLES";
  }

  // The pool an environment can come from: a Python zygote kind for Lambent's
  // Python runtime (keyed by interpreter and start-up variables), plain blanks
  // otherwise; nullopt when nothing pre-made fits (egress, no pool).
  std::optional<std::string> kind_for(const SandboxSpec& spec) {
    if (options_.pool_size <= 0 || spec.network_egress || !kinds_.contains("")) {
      return std::nullopt;
    }
    const bool python = options_.zygotes && !ctx_.user_namespace && spec.argv.size() == 2 &&
                        spec.argv[1].ends_with("/python/bootstrap.py");
    if (!python) return std::string();
    std::vector<std::string> startup;
    for (const auto& kv : spec.env) {
      if (startup_variable(std::string_view(kv).substr(0, kv.find('=')))) startup.push_back(kv);
    }
    std::string key = spec.argv[0] + '\n' + spec.argv[1];
    for (const auto& kv : startup) key += '\n' + kv;
    if (auto it = kinds_.find(key); it != kinds_.end()) {
      return it->second.failures >= 3 ? std::string() : key;
    }
    if (kinds_.size() > 4) return std::string();  // a handful of runtimes at most
    PoolKind k;
    k.zygote_argv = spec.argv;
    k.zygote_env = startup;
    k.zygote_env.push_back("LAMBENT_ZYGOTE_FD=4");
    k.zygote_env.push_back("LAMBDA_TASK_ROOT=/var/task");
    k.zygote_env.push_back("LAMBDA_RUNTIME_DIR=/var/runtime");
    kinds_.emplace(key, std::move(k));
    return key;
  }

  std::string new_blank_id() {
    return fmt::format("b{:08x}{:023x}", static_cast<std::uint32_t>(::getpid()), ++blank_seq_);
  }

  // Starts a blank of `kind` (for a spawn when `claim` is set) or, with no
  // kind, a one-off sandbox built for that spawn (egress).
  Result<pid_t> start(const std::optional<std::string>& kind, const SandboxSpec* claim,
                      std::uint64_t req) {
    NsEnv e;
    e.t0 = now_us();
    std::string blank_id = new_blank_id();
    e.id = claim != nullptr ? claim->id : blank_id;
    // A folder to mount the root on, unless every sandbox shares the template.
    if (ctx_.root_template.empty()) {
      e.dir = options_.state_dir + "/" + blank_id;
      if (::mkdir(e.dir.c_str(), 0700) != 0) {
        return fail(sys_error("creating environment folder " + e.dir, errno));
      }
    }
    BlankPlan plan;
    plan.id = blank_id;
    plan.dir = e.dir;
    plan.runtime_root = claim != nullptr ? claim->runtime_root : runtime_root_;
    // A pool blank guesses the limits of the latest spawn: usually the next
    // spawn's too, and then assignment writes nothing.
    plan.limits = claim != nullptr ? limits_of(*claim) : last_limits_;
    plan.tmp_bytes = claim != nullptr ? claim->tmp_bytes : last_tmp_bytes_;
    plan.max_fds = claim != nullptr ? claim->max_fds : 1024;
    EgressPlan egress;
    HostNetSockets host_sockets;
    if (claim != nullptr && claim->network_egress) {
      auto planned = plan_egress(*claim, egress, host_sockets);
      if (!planned) {
        remove_dir(e.dir);
        return fail(planned.error());
      }
      e.egress_slot = *planned;
      plan.egress = &egress;
    }
    UniqueFd spare_netns;  // the child keeps the namespace alive once cloned
    if (plan.egress == nullptr && !ctx_.user_namespace && !spare_netns_.empty()) {
      spare_netns = std::move(spare_netns_.front().fd);
      spare_netns_.pop_front();
      plan.netns = spare_netns.get();
    }
    if (kind) {
      e.kind = *kind;
      const PoolKind& k = kinds_.at(*kind);
      e.zygote = !k.zygote_argv.empty();
      plan.zygote_argv = k.zygote_argv;
      plan.zygote_env = k.zygote_env;
      plan.zygote_env.push_back("AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001");
    }
    auto blank = start_blank(plan, ctx_);
    if (!blank) {
      addresses_.release(e.egress_slot);
      remove_dir(e.dir);
      return fail(blank.error());
    }
    e.blank = std::move(*blank);
    e.timings["start_us"] = now_us() - e.t0;
    e.timings["clone_us"] = e.blank.clone_us;
    if (claim != nullptr) {
      e.req = req;
      e.spec = *claim;
      e.deadline_us = e.t0 + std::int64_t{options_.setup_timeout_ms} * 1000;
    }
    pid_t pid = e.blank.pid;
    ns_.emplace(pid, std::move(e));
    return pid;
  }

  static CgroupLimits limits_of(const SandboxSpec& spec) {
    return CgroupLimits{spec.memory_bytes, spec.max_pids, spec.cpu_weight};
  }

  // Returns the egress slot.
  Result<int> plan_egress(const SandboxSpec& spec, EgressPlan& egress, HostNetSockets& sockets) {
    if (!nat_tried_) {
      nat_tried_ = true;
      auto nat = enable_nat(nat_table());
      nat_ok_ = nat.has_value();
      if (!nat) helper_log("{}", nat.error().message);
    }
    auto opened = open_host_net_sockets();
    if (!opened) return fail(opened.error());
    sockets = std::move(*opened);
    int slot = addresses_.allocate();
    if (slot < 0)
      return fail(Errc::kUnavailable, "egress: every address of 10.201.0.0/16 is in use");
    // Unique per daemon by the slot, across daemons by the id.
    egress.host_if = fmt::format("lb{:04x}{}", slot, spec.id.substr(0, 8));
    egress.host_addr = EgressAddresses::host_address(slot);
    egress.env_addr = EgressAddresses::env_address(slot);
    egress.host_netlink = sockets.netlink.get();
    egress.host_inet = sockets.inet.get();
    return slot;
  }

  void spawn_ns(std::uint64_t req, SandboxSpec spec) {
    if (!ns_unavailable_.empty())
      return spawn_failed(req, make_error(Errc::kUnavailable, ns_unavailable_));
    if (ctx_.seccomp == nullptr) {
      return spawn_failed(req, make_error(Errc::kUnavailable, "no seccomp filter available"));
    }
    if (!pool_started_) {
      pool_started_ = true;
      runtime_root_ = spec.runtime_root;
    }
    last_limits_ = limits_of(spec);
    last_tmp_bytes_ = spec.tmp_bytes;
    auto kind = kind_for(spec);
    if (kind && spec.runtime_root == runtime_root_) {
      // A ready blank of its kind first; else one still booting.
      NsEnv* booting = nullptr;
      for (auto& [pid, e] : ns_) {
        if (e.req != 0 || e.kind != *kind) continue;
        if (e.stage == NsEnv::Stage::kReady) {
          claim(e, req, std::move(spec));
          e.timings["pooled"] = true;
          return assign(e);
        }
        if (booting == nullptr) booting = &e;
      }
      if (booting != nullptr) return claim(*booting, req, std::move(spec));
    } else {
      kind.reset();
    }
    auto started = start(kind, &spec, req);
    if (!started) spawn_failed(req, started.error());
  }

  void claim(NsEnv& e, std::uint64_t req, SandboxSpec spec) {
    e.req = req;
    e.id = spec.id;
    e.spec = std::move(spec);
    e.made_ahead = true;
    e.deadline_us = now_us() + std::int64_t{options_.setup_timeout_ms} * 1000;
  }

  // A claimed sandbox failed before its bootstrap ran. One made ahead may
  // have died while it waited (a crashed zygote, a kill): the spawn gets a
  // sandbox made for it instead. Otherwise the spawn fails with the error.
  void fail_claimed(NsEnv& e, Error err) {
    std::uint64_t req = e.req;
    e.req = 0;  // answered here; the reaper only cleans up
    e.kind = kFailedKind;
    if (e.made_ahead && e.spec) {
      SandboxSpec spec = std::move(*e.spec);
      e.spec.reset();
      helper_log("a pre-made sandbox failed ({}); starting {} in a new one", err.message, spec.id);
      auto started = start(std::nullopt, &spec, req);
      if (!started) spawn_failed(req, started.error());
      return;
    }
    spawn_failed(req, std::move(err).with_context("starting environment " + e.id));
  }

  // Claimed sandboxes that did not start in time.
  void check_deadlines() {
    const std::int64_t now = now_us();
    for (auto& [pid, e] : ns_) {
      if (e.req == 0 || e.stage == NsEnv::Stage::kLive || now < e.deadline_us) continue;
      fail_claimed(
          e, make_error(Errc::kTimeout, fmt::format("the environment did not start within {} ms",
                                                    options_.setup_timeout_ms)));
      e.blank.control.reset();
      kill_ns(e);
    }
  }

  void assign(NsEnv& e) {
    const SandboxSpec& spec = *e.spec;
    e.t_assigned = now_us();
    Result<void> r;
    if (e.blank.cgroup) r = e.blank.cgroup->set_limits(limits_of(spec));
    std::vector<std::string> extra;
    // The host side of the pair: how an egress function reaches services on the host.
    if (e.egress_slot >= 0)
      extra.push_back("LAMBENT_HOST_ADDRESS=" +
                      format_ipv4(EgressAddresses::host_address(e.egress_slot)));
    if (r) {
      r = assign_blank(e.blank.control.get(), spec, build_env(spec.env, "127.0.0.1:9001", extra),
                       e.zygote);
    }
    if (!r) {
      fail_claimed(e, std::move(r.error()));
      kill_ns(e);
      return;
    }
    e.stage = NsEnv::Stage::kAssigned;
  }

  void on_init_report(pid_t pid) {
    if (auto it = ns_.find(pid); it != ns_.end()) on_init_report(it->second);
  }

  void on_init_report(NsEnv& e) {
    InitReport r = read_init_report(e.blank.control.get());
    if (r.kind == InitReport::kNothing) return;  // a stale wake-up (e.g. a reused pid)
    if (r.kind == InitReport::kReady && e.stage == NsEnv::Stage::kBooting) {
      e.blank.listener = std::move(r.listener);
      e.blank.netns = std::move(r.netns);
      for (auto& [k, v] : r.timings.items()) e.timings[k] = v;
      e.timings["boot_us"] = now_us() - e.t0;
      e.stage = NsEnv::Stage::kReady;
      if (e.req != 0) assign(e);
      return;
    }
    if (r.kind == InitReport::kClosed && e.stage == NsEnv::Stage::kAssigned) {
      live(e);
      return;
    }
    // A failed step, or init gone before its function ran.
    Error err = r.kind == InitReport::kClosed
                    ? make_error(Errc::kInternal, "init died during setup")
                    : std::move(r.error);
    if (e.req != 0 && e.stage != NsEnv::Stage::kLive) {
      fail_claimed(e, std::move(err));
    } else if (e.req == 0) {
      helper_log("a pre-made sandbox failed: {}", err.message);
      note_blank_died(e.kind);
      e.kind = kFailedKind;
    }
    e.blank.control.reset();
    kill_ns(e);
  }

  void note_blank_died(const std::string& kind) {
    auto k = kinds_.find(kind);
    if (k != kinds_.end() && ++k->second.failures == 3) {
      helper_log("pre-made sandboxes of this kind keep failing; no longer making them");
    }
  }

  void live(NsEnv& e) {
    e.stage = NsEnv::Stage::kLive;
    e.spec.reset();
    e.blank.control.reset();
    if (auto k = kinds_.find(e.kind); k != kinds_.end()) k->second.failures = 0;
    e.timings["assign_us"] = now_us() - e.t_assigned;
    e.timings["total_us"] = now_us() - e.t0;
    json info = {{"timings", e.timings}};
    info["cgroup_version"] = e.blank.cgroup ? static_cast<int>(e.blank.cgroup->version()) : 0;
    // Each cgroup file goes along if it exists: the freezer only with
    // --freeze-idle on v1, while peak memory is always wanted.
    std::vector<UniqueFd> extra;
    json extra_names = json::array();
    if (e.blank.cgroup) {
      if (auto peak = e.blank.cgroup->open_peak()) {
        extra.push_back(std::move(*peak));
        extra_names.push_back("peak");
      }
      if (auto fz = e.blank.cgroup->open_freezer()) {
        extra.push_back(std::move(*fz));
        extra_names.push_back("freezer");
      }
    }
    info["fds"] = std::move(extra_names);
    if (e.egress_slot >= 0)
      info["egress_address"] = format_ipv4(EgressAddresses::env_address(e.egress_slot));
    if (options_.trace_timings) helper_log("spawned {}: {}", e.id, e.timings.dump());
    std::vector<int> fds = {e.blank.listener.get(), e.blank.output.get()};
    for (auto& f : extra) fds.push_back(f.get());
    json reply = {{"op", "spawned"},
                  {"req", e.req},
                  {"id", e.id},
                  {"pid", e.blank.pid},
                  {"address", "127.0.0.1:9001"},
                  {"info", info}};
    auto sent = wire::send(sock_, reply, fds);
    e.blank.listener.reset();
    e.blank.output.reset();
    if (!sent) kill_ns(e);
  }

  bool claimed_in_flight() const {
    for (const auto& [pid, e] : ns_) {
      if (e.req != 0 && e.stage != NsEnv::Stage::kLive) return true;
    }
    return false;
  }

  // Unclaimed blanks per kind (booting or ready).
  int unclaimed(const std::string& kind) const {
    int n = 0;
    for (const auto& [pid, e] : ns_) n += e.req == 0 && e.kind == kind ? 1 : 0;
    return n;
  }

  bool pool_short() const {
    if (!pool_started_) return false;
    for (const auto& [key, k] : kinds_) {
      if (k.failures < 3 && unclaimed(key) < options_.pool_size) return true;
    }
    return false;
  }

  // Tops up one blank per call, and only while no spawn is in flight: a
  // spawn's own steps (assignment, exec report) come first.
  void refill() {
    if (!pool_started_) return;  // the first spawn tells where the runtimes are
    if (claimed_in_flight()) return;
    for (const auto& [key, k] : kinds_) {
      if (k.failures >= 3 || unclaimed(key) >= options_.pool_size) continue;
      auto started = start(key, nullptr, 0);
      if (!started) {
        helper_log("making a pre-made sandbox: {}", started.error().message);
        note_blank_died(key);
      }
      return;
    }
  }

  // Kills every environment and reports each exit; bounded by the kernel's
  // teardown, not by the environments' cooperation.
  void stop_all() {
    for (auto& [pid, env] : envs_) {
      ::kill(-pid, SIGKILL);
      ::kill(-pid, SIGCONT);
    }
    for (auto& [pid, env] : ns_) kill_ns(env);
    while (!envs_.empty() || !ns_.empty()) {
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) break;
      reap();
    }
    // Orphans of process-mode environments may still be dying.
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    for (auto& cg : graveyard_) cg->kill_all();
    graveyard_.clear();
    // The shared root lives only in this process's mount namespace; detached
    // first so that the sweep cannot walk into its binds of host folders.
    if (!ctx_.root_template.empty()) ::umount2(ctx_.root_template.c_str(), MNT_DETACH);
    if (!options_.state_dir.empty()) sweep_state_dir();
    if (nat_ok_) disable_nat(nat_table());
    if (ctx_.cgroup_version != CgroupVersion::kNone && ctx_.cgroups) {
      Cgroup::sweep(ctx_.cgroup_version, options_.cgroup_name);
      Cgroup::remove_parent(ctx_.cgroup_version, options_.cgroup_name);
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
  NamespaceContext ctx_;
  std::string ns_unavailable_;  // why namespaces cannot work here, if they cannot
  std::optional<SeccompFilter> seccomp_;
  std::map<pid_t, LiveEnv> envs_;  // process mode
  std::map<pid_t, NsEnv> ns_;      // namespaces mode
  std::map<std::string, PoolKind> kinds_;
  // What blanks mount at /var/runtime: the first spawn's (the daemon has one).
  std::string runtime_root_;
  bool pool_started_ = false;
  CgroupLimits last_limits_{128ull << 20, 1024, 100};
  std::uint64_t last_tmp_bytes_ = 512ull << 20;
  std::vector<std::unique_ptr<Cgroup>> graveyard_;
  std::deque<SpareNetns> spare_netns_;
  std::uint64_t blank_seq_ = 0;
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
  // A closed stderr (the daemon's) must not kill the helper mid-cleanup on
  // its next log line. Environments get default dispositions before exec.
  ::signal(SIGPIPE, SIG_IGN);
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
