// engine/engine.hpp — the Invoker: the in-memory catalog of deployed
// functions and their pools.
// Owns: environments' lifecycle, scheduling, the idle reaper.
// Never: HTTP routing, the store, payload parsing.
//
// Thread-safe. The catalog is an immutable map replaced on every control-plane
// change; each shard thread caches the current one and revalidates it with a
// single relaxed atomic load, so the invoke path takes no shared lock.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "engine/invocation.hpp"
#include "engine/pool.hpp"

namespace lambent::engine {

struct FunctionSnapshot {
  std::string name;
  VersionSpec latest;
  std::map<std::string, VersionSpec> versions;  // published versions by number
  std::map<std::string, registry::Alias> aliases;
  std::optional<int> reserved_concurrency;
  std::map<std::string, int> provisioned;  // version → environments kept initialised
};

class Engine {
 public:
  // account_concurrency: Lambda's account limit; functions without reserved
  // concurrency share what the reservations leave.
  // memory_budget_mb: the host memory budget (0: none).
  Engine(http::Shards& shards, EngineDeps deps, int account_concurrency = 1000,
         std::int64_t memory_budget_mb = 0);
  ~Engine();

  // Control plane. Publishes the function's current state; $LATEST's pool is
  // reconfigured when its code or configuration changed.
  void put_function(FunctionSnapshot snap);
  // Stops the function's environments and fails its waiting invokes.
  void remove_function(const std::string& name);

  // Invoke path, any thread. `qualifier` may be empty. Completes `inv` exactly once.
  void invoke(std::string_view name, std::string_view qualifier, const InvocationPtr& inv);
  // The concrete version an invoke with this qualifier would run (DryRun).
  Result<std::string> resolve(std::string_view name, std::string_view qualifier);

  void start();  // starts the idle reaper
  void stop();   // stops every environment

  // Invokes accepted and not yet completed.
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  std::string function_arn(std::string_view name, std::string_view qualifier = {}) const;
  std::optional<PoolStats> stats(std::string_view name, std::string_view version);
  std::optional<ProvisionedStatus> provisioned_status(std::string_view name,
                                                      std::string_view version);
  std::int64_t memory_used_mb() const { return budget_ ? budget_->used_mb() : 0; }
  // The host memory budget (0: none).
  std::int64_t memory_budget_mb() const { return budget_ ? budget_->limit_mb() : 0; }

 private:
  struct Entry {
    FunctionSnapshot snap;
    std::string arn;  // unqualified; formatted once instead of on every invoke
    // In-flight invokes of the function (all versions, whichever limit admitted them: a
    // reservation set while invokes run counts them); survives updates.
    std::shared_ptr<std::atomic<int>> in_flight;
    // Of a function without reserved concurrency: the invokes each version's provisioned
    // environments cover (snap.provisioned of them at a time; the rest are on-demand, from
    // the unreserved pool). Survive updates.
    std::map<std::string, std::shared_ptr<std::atomic<int>>, std::less<>> provisioned_in_flight;
    std::shared_ptr<FunctionPool> latest_pool;
    std::map<std::string, std::shared_ptr<FunctionPool>> version_pools;
  };
  // Looked up by string_view (heterogeneous lookup): a function name longer than the
  // small-string buffer would otherwise be copied to the heap on every invoke.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Catalog =
      std::unordered_map<std::string, std::shared_ptr<const Entry>, NameHash, std::equal_to<>>;

  const Catalog& catalog();
  // Takes a concurrency slot for the invoke or explains the throttle.
  Result<void> acquire(const Entry& e, Invocation& inv);
  // Finds the pool for (name, qualifier); sets `version` to the executed version.
  Result<FunctionPool*> find_pool(std::string_view name, std::string_view qualifier,
                                  std::string& version, const Entry** entry);
  void publish(std::shared_ptr<const Catalog> next);
  // The account limit less what reservations, and provisioned concurrency of functions
  // without one, set aside; under write_mu_.
  void update_unreserved_limit(const Catalog& cat);
  void schedule_reap();
  // Stops the least recently used idle environment outside `requester`, or else one of the
  // requester's own (which it can only have when it waits to make a provisioned one).
  bool evict_lru(const FunctionPool* requester);
  std::vector<std::shared_ptr<FunctionPool>> all_pools();

  http::Shards& shards_;
  std::shared_ptr<MemoryBudget> budget_;
  EngineDeps deps_;
  const std::uint64_t id_;                  // keys the per-thread catalog cache
  std::mutex write_mu_;                     // serializes control-plane writers only
  std::shared_ptr<const Catalog> current_;  // guarded by write_mu_ (the writers' view)
  std::atomic<std::shared_ptr<const Catalog>> published_;
  std::atomic<std::uint64_t> generation_{0};
  std::unique_ptr<boost::asio::steady_timer> reaper_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> in_flight_{0};
  const int account_concurrency_;
  std::atomic<int> unreserved_limit_;
  std::atomic<int> unreserved_in_flight_{0};
};

}  // namespace lambent::engine
