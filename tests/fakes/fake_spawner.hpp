// tests/fakes/fake_spawner.hpp — a Spawner that starts no process.
//
// Each spawn() hands back a FakeSandbox whose Runtime API listener is a real
// listening TCP socket on 127.0.0.1:<ephemeral> (so the real
// runtimeapi::Endpoint serves it) and whose output is the read end of a pipe
// the test writes to. The test plays the runtime over HTTP and decides how the
// "process" ends by calling FakeEnv::exit().
//
// Thread-safe (the engine calls spawn() on its shard; tests inspect records
// from their own thread).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::testing {

// A non-blocking listening TCP socket on 127.0.0.1 with an ephemeral port.
inline UniqueFd listen_loopback(std::uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  // sockaddr_in is the IPv4 form of the generic sockaddr the API takes.
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(fd.get(), sa, sizeof(addr)) != 0 || ::listen(fd.get(), 16) != 0)
    throw std::runtime_error("bind/listen failed");
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), sa, &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// What a test sees of one spawned sandbox.
struct FakeEnv {
  sandbox::SandboxSpec spec;
  std::uint16_t port = 0;  // the Runtime API listener's port on 127.0.0.1
  std::atomic<int> kills{0};
  std::atomic<std::uint64_t> peak_memory_bytes{0};

  // Writes bytes to the environment's stdout/stderr pipe (blocking; keep it
  // below the pipe's capacity, 64 KiB, unless the engine reads concurrently).
  void write_output(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(output_writer.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("write to output pipe: ") + strerror(errno));
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Ends the "process tree": reports the exit once, as the real spawner does.
  void exit(sandbox::ExitStatus st) {
    sandbox::ExitCallback cb;
    {
      std::lock_guard lock(mu);
      if (exited) return;
      exited = true;
      cb = std::move(on_exit);
    }
    output_writer.reset();  // the pipe reaches EOF when the tree is gone
    if (cb) cb(st);
  }
  void exit_code(int code) { exit({.exit_code = code}); }
  void exit_signal(int sig, bool oom = false) {
    exit({.exit_code = -1, .signal = sig, .oom_killed = oom});
  }

  std::mutex mu;
  sandbox::ExitCallback on_exit;
  bool exited = false;
  UniqueFd output_writer;
};

class FakeSandbox final : public sandbox::Sandbox {
 public:
  FakeSandbox(std::shared_ptr<FakeEnv> env, UniqueFd listener, UniqueFd output)
      : env_(std::move(env)), listener_(std::move(listener)), output_(std::move(output)) {}

  UniqueFd take_runtime_listener() override { return std::move(listener_); }
  UniqueFd take_output() override { return std::move(output_); }
  std::string runtime_api_address() const override {
    return "127.0.0.1:" + std::to_string(env_->port);
  }
  int pid() const override { return 0; }
  Result<void> freeze() override { return {}; }
  Result<void> thaw() override { return {}; }
  void kill() override { env_->kills.fetch_add(1); }
  std::uint64_t peak_memory_bytes() const override { return env_->peak_memory_bytes.load(); }

 private:
  std::shared_ptr<FakeEnv> env_;
  UniqueFd listener_, output_;
};

class FakeSpawner final : public sandbox::Spawner {
 public:
  void spawn(sandbox::SandboxSpec spec, sandbox::ExitCallback on_exit,
             sandbox::SpawnCallback done) override {
    std::optional<Error> failure;
    {
      std::lock_guard lock(mu_);
      ++attempts_;
      if (!failures_.empty()) {
        failure = std::move(failures_.front());
        failures_.pop_front();
      }
    }
    if (failure) {
      done(std::unexpected(std::move(*failure)));
      return;
    }
    auto env = std::make_shared<FakeEnv>();
    env->spec = std::move(spec);
    env->on_exit = std::move(on_exit);
    UniqueFd listener = listen_loopback(env->port);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    UniqueFd reader(p[0]);
    env->output_writer.reset(p[1]);
    // The engine reads the output without blocking (Sandbox contract).
    ::fcntl(reader.get(), F_SETFL, ::fcntl(reader.get(), F_GETFL) | O_NONBLOCK);
    {
      std::lock_guard lock(mu_);
      envs_.push_back(env);
    }
    done(std::unique_ptr<sandbox::Sandbox>(
        std::make_unique<FakeSandbox>(env, std::move(listener), std::move(reader))));
  }

  sandbox::EnvironmentLayout layout(const sandbox::SandboxSpec& spec) const override {
    return {spec.task_root, "/var/runtime", "/opt", "/tmp"};
  }
  sandbox::Isolation isolation() const override { return sandbox::Isolation::kProcess; }
  void shutdown() override {}

  // The next spawn() fails with `e` (queued: call repeatedly for several).
  void fail_next(Error e) {
    std::lock_guard lock(mu_);
    failures_.push_back(std::move(e));
  }
  // Sandboxes created so far (failed attempts excluded).
  int spawned() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(envs_.size());
  }
  int attempts() const {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  std::shared_ptr<FakeEnv> env(int i) const {
    std::lock_guard lock(mu_);
    return envs_.at(static_cast<std::size_t>(i));
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<FakeEnv>> envs_;
  std::deque<Error> failures_;
  int attempts_ = 0;
};

}  // namespace lambent::testing
