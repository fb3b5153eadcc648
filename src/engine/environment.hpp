// engine/environment.hpp — one execution environment: a sandboxed runtime
// serving one function version, one invocation at a time.
//
//   Spawning → Initializing → Idle ⇄ Busy → Finishing → Idle … → Dead
//
// Thread-compatible: every method runs on the environment's shard (the
// io_context its Runtime API connections, output pipe and timers live on).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "engine/budget.hpp"
#include "engine/invocation.hpp"
#include "engine/settings.hpp"
#include "http/server.hpp"
#include "logs/log_store.hpp"
#include "registry/model.hpp"
#include "runtimeapi/endpoint.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::engine {

// What an environment runs: one version's configuration and its code.
struct VersionSpec {
  std::shared_ptr<const registry::FunctionConfig> config;
  std::string task_root;
  std::uint64_t generation = 0;  // bumped by the pool on every code/config change
};

class MemoryBudget;
class FunctionPool;
class Placement;

struct EngineDeps {
  sandbox::Spawner& spawner;
  logs::LogStore& logs;
  const Settings& settings;
  std::shared_ptr<MemoryBudget> budget;  // null: no host memory budget
  std::shared_ptr<Placement> placement;  // null: the kernel places environments on CPUs
  // Stops the least recently used idle environment of another pool; false
  // when there is none. Called without any pool lock held.
  std::function<bool(const FunctionPool* requester)> evict_idle;
};

class Environment;

// Why an environment could not be used, as the invoke that waited for it sees it.
struct EnvFailure {
  std::string payload;  // Lambda error document
  // Set by an environment that retried the init for this invoke (and logged START, END and
  // REPORT for it): the invoke to answer, and its log tail.
  InvocationPtr invocation;
  std::string log_tail;
};

// Implemented by the pool. Called on the environment's shard.
class EnvironmentListener {
 public:
  virtual ~EnvironmentListener() = default;
  // The environment is idle with a parked GET /next.
  virtual void on_ready(const std::shared_ptr<Environment>& env) = 0;
  // The environment answered its invocation and will call /next again.
  virtual void on_finishing(const std::shared_ptr<Environment>& env) = 0;
  // The environment is gone. `failure` is set when it died before serving
  // anything (spawn or init failure); the pool hands it to a waiting invoke.
  virtual void on_dead(const std::shared_ptr<Environment>& env,
                       std::optional<EnvFailure> failure) = 0;
};

class Environment final : public runtimeapi::RuntimeHooks,
                          public std::enable_shared_from_this<Environment> {
 public:
  enum class State { kSpawning, kInitializing, kIdle, kBusy, kFinishing, kDead };

  Environment(boost::asio::io_context& shard, int shard_index, VersionSpec spec,
              std::string initialization_type, std::weak_ptr<EnvironmentListener> listener,
              EngineDeps deps);
  ~Environment() override;
  // Memory this environment holds in the host budget, released on destruction.
  void hold_memory(std::int64_t mb) { reserved_mb_ = mb; }

  // Starts the sandbox. Call once, on the shard.
  void spawn();
  // Before spawn(): this environment retries, for the invoke waiting for it, an init that
  // failed or timed out in an environment before it. As on Lambda, its init is part of the
  // invoke ("Phase: invoke"): it is bounded by the function's timeout instead of the init
  // timeout, and the invoke's handler gets what is left of that timeout.
  // `for_invoke`: the invoke it is for, whose log tail has the init's output, and which gets
  // START, END and REPORT lines if the init fails again.
  void init_in_invoke_phase(InvocationPtr for_invoke) {
    invoke_phase_init_ = true;
    init_for_ = std::move(for_invoke);
  }
  // When ready (the pool's on_ready): the invoke an invoke-phase init was for, now the
  // pool's to hand over (to this environment, normally). Null if none.
  InvocationPtr claim_init_invocation() { return std::exchange(init_for_, nullptr); }
  // Serves an invocation. Precondition: handed out by the pool as idle. If the
  // environment died in between, the invocation is returned to the listener's
  // pool through `on_dead` handling (see FunctionPool::requeue).
  bool start(const InvocationPtr& inv);
  // Stops the environment (reaped, retired, function deleted). Idempotent.
  void shutdown(std::string_view why);

  State state() const { return state_; }
  int shard_index() const { return shard_index_; }
  boost::asio::io_context& shard() { return shard_; }
  std::uint64_t generation() const { return spec_.generation; }
  const std::string& id() const { return id_; }
  SteadyTime idle_since() const { return idle_since_; }
  std::uint64_t memory_mb() const { return static_cast<std::uint64_t>(spec_.config->memory_mb); }

  // RuntimeHooks
  void on_next(http::Responder res) override;
  void on_response(std::string_view request_id, std::string&& body, http::Responder res) override;
  void on_error(std::string_view request_id, std::string_view error_type, std::string&& body,
                http::Responder res) override;
  void on_init_error(std::string_view error_type, std::string&& body, http::Responder res) override;
  void on_response_too_large(std::string_view request_id, std::uint64_t size) override;

 private:
  void on_spawned(Result<std::unique_ptr<sandbox::Sandbox>> sb);
  void on_exit(sandbox::ExitStatus st);
  void on_deadline();
  // INIT_REPORT with this status ("timeout", "error\tError Type: …").
  void init_report(std::string_view status);
  // An init failed: the failure for the pool. After an invoke-phase init, the invoke it was
  // for gets its START, END and REPORT (with this status) and its log tail.
  EnvFailure init_failure(std::string_view status);
  // init_error_ = the platform's error document for an init that failed ("Error: <detail>").
  void platform_init_error(std::string_view type, std::string detail);
  // The init or invoke deadline: one at a time; arming replaces, disarming ends it.
  void arm_deadline(std::chrono::milliseconds after);
  void disarm_deadline();
  void read_output();
  void drain_output();
  void consume_output(std::string_view data);
  void emit_line(std::string_view line);
  void platform_line(std::string_view line);
  // Ends the current invocation with the given outcome and writes END/REPORT.
  void finish(InvokeOutcome&& outcome, std::string_view status);
  // Ends the current invoke: the environment is finishing, the caller gets `outcome`.
  void complete_current(InvokeOutcome&& outcome);
  void die(std::optional<EnvFailure> failure);
  std::string error_doc(std::string_view type, std::string_view message) const;
  std::string exit_reason(const sandbox::ExitStatus& st) const;
  sandbox::SandboxSpec build_spec() const;

  boost::asio::io_context& shard_;
  const int shard_index_;
  VersionSpec spec_;
  const std::string initialization_type_;
  std::weak_ptr<EnvironmentListener> listener_;
  EngineDeps deps_;

  const std::string id_;
  std::string log_group_, log_stream_;
  logs::LogStore::StreamHandle log_handle_;
  std::string platform_buf_;  // START/END/REPORT lines are built here (no allocation when warm)
  State state_ = State::kSpawning;  // changed only through enter()
  // Starting, or running an invocation: what Placement counts as a shard's
  // working environments (its CPU is likely in use). Not once the invocation
  // is answered (kFinishing): the caller's next invoke may come before the
  // runtime's next /next, and must not be sent away from a CPU about to be free.
  static bool working(State s) {
    return s == State::kSpawning || s == State::kInitializing || s == State::kBusy;
  }
  void enter(State next);
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::unique_ptr<runtimeapi::Endpoint> endpoint_;
  boost::asio::posix::stream_descriptor output_;
  std::array<char, 16384> out_buf_{};
  std::string line_buf_;
  boost::asio::steady_timer timer_;
  std::uint64_t deadline_seq_ = 0;  // which arming of timer_ may still fire

  http::Responder pending_next_;
  InvocationPtr current_;
  std::string tail_;
  std::string init_error_;  // body posted to /runtime/init/error
  bool init_reported_ = false;
  std::string init_error_type_;  // Lambda-Runtime-Function-Error-Type of /init/error
  // An init error of the platform's own (not the runtime's document): its type and what
  // follows "Error: " in its message, for the "RequestId: … Error: …" of a retried init's.
  std::string platform_error_type_, platform_error_detail_;
  bool invoke_phase_init_ = false;
  InvocationPtr init_for_;  // of an invoke-phase init, until it ends
  bool first_invoke_ = true;
  bool response_too_large_ = false;
  bool dead_reported_ = false;
  bool frozen_ = false;
  std::int64_t reserved_mb_ = 0;
  SteadyTime spawn_started_{}, invoke_started_{}, idle_since_{};
  double init_duration_ms_ = 0;
  std::int64_t out_window_s_ = 0;
  std::uint64_t out_window_bytes_ = 0, out_dropped_ = 0;
};

}  // namespace lambent::engine
