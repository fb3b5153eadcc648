// The daemon side of the Linux Spawner: sends requests to the helper and runs
// callbacks on one reader thread.
#include "sandbox/spawner.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/log.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/helper.hpp"
#include "sandbox/wire.hpp"

namespace lambent::sandbox {
namespace {

using nlohmann::json;

// What the reader thread learns about one sandbox after handing it out.
struct SharedState {
  std::atomic<bool> exited{false};
  std::atomic<std::uint64_t> final_peak{0};  // the cgroup's peak, read before removal
};

// The daemon's end of the socket, shared by the spawner and its sandboxes so
// that a sandbox outliving shutdown() still has something harmless to write to.
struct Channel {
  UniqueFd sock;
  Result<void> send(const json& msg) const { return wire::send(sock.get(), msg); }
};

class LinuxSandbox final : public Sandbox {
 public:
  LinuxSandbox(std::shared_ptr<Channel> channel, std::shared_ptr<SharedState> state, std::string id,
               pid_t pid, std::string address, Isolation isolation, CgroupVersion cg,
               UniqueFd listener, UniqueFd output, UniqueFd peak, UniqueFd freezer)
      : channel_(std::move(channel)),
        state_(std::move(state)),
        id_(std::move(id)),
        pid_(pid),
        address_(std::move(address)),
        isolation_(isolation),
        cgroup_version_(cg),
        listener_(std::move(listener)),
        output_(std::move(output)),
        peak_(std::move(peak)),
        freezer_(std::move(freezer)) {}

  ~LinuxSandbox() override { kill(); }

  UniqueFd take_runtime_listener() override { return std::move(listener_); }
  UniqueFd take_output() override { return std::move(output_); }
  std::string runtime_api_address() const override { return address_; }
  int pid() const override { return pid_; }

  Result<void> freeze() override { return set_frozen(true); }
  Result<void> thaw() override { return set_frozen(false); }

  void kill() override {
    if (state_->exited.load()) return;
    (void)channel_->send(json{{"op", "kill"}, {"id", id_}});
  }

  std::uint64_t peak_memory_bytes() const override {
    if (std::uint64_t final_peak = state_->final_peak.load(); final_peak > 0) return final_peak;
    if (peak_) {
      std::uint64_t v = cgroup_read_peak(peak_.get());
      if (v > 0) last_peak_ = v;
      return last_peak_;
    }
    if (!state_->exited.load()) {
      // Process mode: the kernel's high-water mark of the main process, from
      // a status file kept open (REPORT reads it on every invoke).
      if (!status_)
        status_.reset(::open(fmt::format("/proc/{}/status", pid_).c_str(), O_RDONLY | O_CLOEXEC));
      char buf[4096];
      ssize_t n = status_ ? ::pread(status_.get(), buf, sizeof(buf) - 1, 0) : -1;
      if (n > 0) {
        buf[n] = '\0';
        if (const char* hwm = std::strstr(buf, "\nVmHWM:")) {
          last_peak_ = std::strtoull(hwm + 7, nullptr, 10) * 1024;
        }
      }
    }
    return last_peak_;
  }

 private:
  Result<void> set_frozen(bool frozen) {
    if (state_->exited.load())
      return fail(Errc::kUnavailable, "environment " + id_ + " has exited");
    if (freezer_) return cgroup_set_frozen(freezer_.get(), cgroup_version_, frozen);
    // Process mode: the helper signals the group, because only it knows
    // whether the group id is still this environment's.
    return channel_->send(json{{"op", frozen ? "freeze" : "thaw"}, {"id", id_}});
  }

  std::shared_ptr<Channel> channel_;
  std::shared_ptr<SharedState> state_;
  std::string id_;
  pid_t pid_;
  std::string address_;
  Isolation isolation_;
  CgroupVersion cgroup_version_;
  UniqueFd listener_, output_, peak_, freezer_;
  mutable std::uint64_t last_peak_ = 0;
  mutable UniqueFd status_;  // process mode: /proc/<pid>/status
};

class LinuxSpawnerImpl final : public LinuxSpawner {
 public:
  LinuxSpawnerImpl(SpawnerOptions options, pid_t helper, UniqueFd sock)
      : options_(std::move(options)), helper_(helper) {
    channel_ = std::make_shared<Channel>();
    channel_->sock = std::move(sock);
    reader_ = std::thread([this] { read_loop(); });
  }

  ~LinuxSpawnerImpl() override { shutdown(); }

  void spawn(SandboxSpec spec, ExitCallback on_exit, SpawnCallback done) override {
    if (!wire::valid_env_id(spec.id)) {
      done(fail(Errc::kInvalidParameter, "invalid environment id '" + spec.id + "'"));
      return;
    }
    std::uint64_t req;
    {
      std::lock_guard lock(mu_);
      if (gone_) {
        // Documented: with the helper gone, done runs on the caller's thread.
        done(fail(Errc::kUnavailable, "the sandbox helper process is not running"));
        return;
      }
      req = ++next_req_;
      pending_.emplace(req, Pending{std::move(on_exit), std::move(done)});
    }
    auto sent = channel_->send(json{{"op", "spawn"}, {"req", req}, {"spec", wire::to_json(spec)}});
    if (!sent) {
      Pending p;
      {
        std::lock_guard lock(mu_);
        auto it = pending_.find(req);
        if (it == pending_.end()) return;  // the reader already failed it
        p = std::move(it->second);
        pending_.erase(it);
      }
      Error e = std::move(sent.error());
      if (e.sys_errno == EPIPE || e.sys_errno == ECONNRESET) e.code = Errc::kUnavailable;
      p.done(fail(std::move(e)));
    }
  }

  EnvironmentLayout layout(const SandboxSpec& spec) const override {
    if (options_.isolation == Isolation::kNamespaces) {
      return {"/var/task", "/var/runtime", "/opt", "/tmp"};
    }
    return {spec.task_root, spec.runtime_root,
            spec.layer_roots.empty() ? std::string() : spec.layer_roots.front(),
            options_.state_dir + "/" + spec.id + "/tmp"};
  }

  Isolation isolation() const override { return options_.isolation; }
  pid_t helper_pid() const override { return helper_; }

  void shutdown() override {
    std::call_once(shutdown_once_, [this] {
      (void)channel_->send(json{{"op", "shutdown"}});
      if (reader_.joinable()) reader_.join();
      ::waitpid(helper_, nullptr, 0);
    });
  }

 private:
  struct Pending {
    ExitCallback on_exit;
    SpawnCallback done;
  };
  struct Live {
    ExitCallback on_exit;
    std::shared_ptr<SharedState> exited;
  };

  void read_loop() {
    for (;;) {
      auto msg = wire::receive(channel_->sock.get());
      if (!msg) {
        LAMBENT_LOG_ERROR("sandbox", "{}", msg.error().message);
        break;
      }
      if (!*msg) break;
      dispatch(**msg);
    }
    helper_gone();
  }

  void dispatch(wire::Message& m) {
    const json& b = m.body;
    std::string op = b.value("op", "");
    if (op == "spawned" || op == "spawn_failed") {
      Pending p;
      {
        std::lock_guard lock(mu_);
        auto it = pending_.find(b.value("req", std::uint64_t{0}));
        if (it == pending_.end()) return;
        p = std::move(it->second);
        pending_.erase(it);
      }
      if (op == "spawn_failed") {
        p.done(fail(wire::error_from_json(b.value("error", json::object()))));
        return;
      }
      if (m.fds.size() < 2) {
        p.done(fail(Errc::kInternal, "sandbox helper sent a spawn reply without fds"));
        return;
      }
      auto exited = std::make_shared<SharedState>();
      std::string id = b.value("id", "");
      const json& info = b.value("info", json::object());
      auto cg = static_cast<CgroupVersion>(info.value("cgroup_version", 0));
      // fds 2.. are the cgroup files the helper could open, named in order.
      UniqueFd peak, freezer;
      std::size_t next_fd = 2;
      for (const auto& name : info.value("fds", json::array())) {
        if (next_fd >= m.fds.size()) break;
        if (name == "peak") peak = std::move(m.fds[next_fd]);
        if (name == "freezer") freezer = std::move(m.fds[next_fd]);
        ++next_fd;
      }
      {
        std::lock_guard lock(mu_);
        live_.emplace(id, Live{std::move(p.on_exit), exited});
      }
      if (info.contains("timings")) {
        LAMBENT_LOG_DEBUG("sandbox", "spawned {} in {}", id, info["timings"].dump());
      }
      p.done(std::make_unique<LinuxSandbox>(
          channel_, exited, id, b.value("pid", -1), b.value("address", ""), options_.isolation, cg,
          std::move(m.fds[0]), std::move(m.fds[1]), std::move(peak), std::move(freezer)));
    } else if (op == "exited") {
      Live l;
      {
        std::lock_guard lock(mu_);
        auto it = live_.find(b.value("id", ""));
        if (it == live_.end()) return;
        l = std::move(it->second);
        live_.erase(it);
      }
      l.exited->final_peak.store(b.value("peak_memory_bytes", std::uint64_t{0}));
      l.exited->exited.store(true);
      l.on_exit(
          ExitStatus{b.value("exit_code", -1), b.value("signal", 0), b.value("oom_killed", false)});
    }
  }

  // Whatever the cause, the helper is gone: its environments are dead (it
  // kills them on the way out, and their inits die with it).
  void helper_gone() {
    std::map<std::uint64_t, Pending> pending;
    std::map<std::string, Live> live;
    {
      std::lock_guard lock(mu_);
      gone_ = true;
      pending.swap(pending_);
      live.swap(live_);
    }
    if (!pending.empty() || !live.empty()) {
      LAMBENT_LOG_ERROR("sandbox", "the sandbox helper process exited; {} environments lost",
                        live.size());
    }
    for (auto& [req, p] : pending) {
      p.done(fail(Errc::kUnavailable, "the sandbox helper process is not running"));
    }
    for (auto& [id, l] : live) {
      l.exited->exited.store(true);
      l.on_exit(ExitStatus{-1, SIGKILL, false});
    }
  }

  SpawnerOptions options_;
  pid_t helper_;
  std::shared_ptr<Channel> channel_;
  std::thread reader_;
  std::once_flag shutdown_once_;
  std::mutex mu_;
  bool gone_ = false;
  std::uint64_t next_req_ = 0;
  std::map<std::uint64_t, Pending> pending_;
  std::map<std::string, Live> live_;
};

}  // namespace

std::string default_cgroup_name(const std::string& state_dir) {
  // FNV-1a: stable across builds and runs, unlike std::hash.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : state_dir) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("lambent-{:012x}", h & 0xffffffffffffull);
}

Result<std::unique_ptr<LinuxSpawner>> start_spawner(const SpawnerOptions& options) {
  if (options.state_dir.empty()) {
    return fail(Errc::kInvalidParameter, "the sandbox spawner needs a state folder");
  }
  SpawnerOptions opts = options;
  if (opts.cgroup_name.empty()) opts.cgroup_name = default_cgroup_name(opts.state_dir);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return fail(sys_error("socketpair for the sandbox helper", errno));
  }
  UniqueFd ours(sv[0]), theirs(sv[1]);
  pid_t daemon = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail(sys_error("forking the sandbox helper", errno));
  if (pid == 0) {
    ours.reset();
    run_helper(theirs.release(), daemon, opts);
  }
  theirs.reset();
  if (options.isolation == Isolation::kProcess) {
    LAMBENT_LOG_WARN("sandbox",
                     "--isolation process: functions run as plain processes of this user with "
                     "NO isolation from each other or from the host. Use only for trusted code.");
  }
  return std::make_unique<LinuxSpawnerImpl>(std::move(opts), pid, std::move(ours));
}

}  // namespace lambent::sandbox
