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
};

class Engine {
 public:
  Engine(http::Shards& shards, EngineDeps deps);
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

 private:
  struct Entry {
    FunctionSnapshot snap;
    std::shared_ptr<FunctionPool> latest_pool;
    std::map<std::string, std::shared_ptr<FunctionPool>> version_pools;
  };
  using Catalog = std::unordered_map<std::string, std::shared_ptr<const Entry>>;

  const Catalog& catalog();
  // Finds the pool for (name, qualifier); sets `version` to the executed version.
  Result<FunctionPool*> find_pool(std::string_view name, std::string_view qualifier,
                                  std::string& version);
  void publish(std::shared_ptr<const Catalog> next);
  void schedule_reap();

  http::Shards& shards_;
  EngineDeps deps_;
  std::mutex write_mu_;  // serializes control-plane writers only
  std::shared_ptr<const Catalog> current_;  // guarded by write_mu_ (the writers' view)
  std::atomic<std::shared_ptr<const Catalog>> published_;
  std::atomic<std::uint64_t> generation_{0};
  std::unique_ptr<boost::asio::steady_timer> reaper_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> in_flight_{0};
};

}  // namespace lambent::engine
