// engine/pool.hpp — the environments of one function version, and the
// invokes waiting for one.
//
// Thread-safe: submit() runs on API shards, listener callbacks on environment
// shards. The pool's own mutex guards only its lists; it is never shared with
// another function, never held while calling into an environment, and held
// for a handful of pointer moves on the warm path.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/environment.hpp"
#include "http/server.hpp"

namespace lambent::engine {

struct PoolStats {
  int idle = 0, busy = 0, starting = 0, finishing = 0, waiting = 0;
};

// Provisioned concurrency of one version, as ListProvisionedConcurrencyConfigs reports it.
struct ProvisionedStatus {
  int requested = 0;
  int allocated = 0;   // environments created for it and alive
  int available = 0;   // of those, initialised
  std::string status;  // READY | IN_PROGRESS | FAILED
  std::string reason;
};

class FunctionPool final : public EnvironmentListener,
                           public std::enable_shared_from_this<FunctionPool> {
 public:
  FunctionPool(VersionSpec spec, http::Shards& shards, EngineDeps deps);
  ~FunctionPool() override;

  // Hands the invocation to an idle environment (preferring the caller's
  // shard), or queues it and starts a new environment when no environment
  // that is starting or finishing will be free for it.
  void submit(const InvocationPtr& inv);
  // A new code or configuration: idle environments stop now, busy ones when
  // their invocation ends; no later invoke reaches an old one.
  void reconfigure(VersionSpec spec);
  // Fails the waiting invokes and stops every environment — or, with
  // finish_running (a function or version deleted, as on AWS), every one but
  // those running an invocation, which stop once it has ended.
  void stop(const Error& why, bool finish_running = false);
  // Fails the invokes waiting for an environment (reserved concurrency set to 0: nothing of
  // the function may run any more).
  void fail_waiting(const Error& why);
  // Stops idle environments idle for longer than keep_warm.
  void reap(SteadyTime now, std::chrono::milliseconds keep_warm);
  PoolStats stats();
  // Keeps `n` environments initialised ahead of traffic
  // (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), replaced when they die.
  void set_provisioned(int n);
  ProvisionedStatus provisioned_status();
  // When the oldest idle environment became idle (for LRU eviction).
  std::optional<SteadyTime> oldest_idle();
  // Stops the least recently idle environment; false if none is idle.
  bool evict_oldest_idle();

  // EnvironmentListener
  void on_ready(const std::shared_ptr<Environment>& env) override;
  void on_finishing(const std::shared_ptr<Environment>& env) override;
  void on_dead(const std::shared_ptr<Environment>& env, std::optional<EnvFailure> failure) override;

 private:
  enum class Slot { kStarting, kIdle, kBusy, kFinishing };
  struct Tracked {
    std::shared_ptr<Environment> env;
    Slot slot;
    bool provisioned = false;
    bool initialised = false;
  };

  std::shared_ptr<Environment> pop_idle_locked(int shard);
  // `init_for`: an on-demand environment that retries a failed init for this waiting invoke.
  std::shared_ptr<Environment> new_env_locked(int shard, bool provisioned = false,
                                              InvocationPtr init_for = nullptr);
  // Creates the provisioned environments missing; returns them to launch.
  std::vector<std::shared_ptr<Environment>> top_up_provisioned_locked();
  bool need_spawn_locked() const;
  // Invokes wait and no environment of this pool is alive or starting (MemoryBudget).
  bool starving_locked() const;
  static void run_on(const std::shared_ptr<Environment>& env, std::function<void()> fn);
  void launch(const std::shared_ptr<Environment>& env);
  void hand_over(const std::shared_ptr<Environment>& env, const InvocationPtr& inv);
  // After a spawn was refused by the memory budget: evict elsewhere, then retry.
  void on_memory_blocked();
  void retry_spawn();

  http::Shards& shards_;
  EngineDeps deps_;
  std::mutex mu_;
  VersionSpec spec_;
  std::vector<std::vector<Environment*>> idle_;  // per shard, most recently idle last
  std::unordered_map<Environment*, Tracked> envs_;
  std::deque<InvocationPtr> waiting_;
  // An invoke whose init is to be retried (it failed once) by the next environment this pool
  // starts, which could not start yet for memory. Not in waiting_: no other environment
  // serves it first.
  InvocationPtr retry_for_;
  int starting_ = 0, finishing_ = 0;
  bool stopped_ = false;
  std::atomic<bool> memory_blocked_{false};
  int provisioned_target_ = 0;
  int provisioned_live_ = 0;
  int provisioned_failures_ = 0;  // consecutive; at 3 the config is FAILED until changed  // set
                                  // under mu_, tested without it
  Error stop_error_;
  unsigned next_shard_ = 0;
};

}  // namespace lambent::engine
