#include "engine/engine.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>

#include <random>

#include "core/log.hpp"

namespace lambent::engine {

namespace {

std::atomic<std::uint64_t> g_next_engine_id{1};

struct CatalogCache {
  std::uint64_t owner = 0;  // engine id, never reused (an address could be)
  std::uint64_t generation = ~0ull;
  std::shared_ptr<const void> catalog;
};
thread_local CatalogCache t_cache;

double random_unit() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

Engine::Engine(http::Shards& shards, EngineDeps deps, int account_concurrency,
               std::int64_t memory_budget_mb)
    : shards_(shards),
      budget_(memory_budget_mb > 0 ? std::make_shared<MemoryBudget>(memory_budget_mb, shards.at(0))
                                   : nullptr),
      deps_(deps),
      id_(g_next_engine_id.fetch_add(1)),
      current_(std::make_shared<const Catalog>()),
      account_concurrency_(account_concurrency),
      unreserved_limit_(account_concurrency) {
  published_.store(current_);
  deps_.budget = budget_;
  deps_.evict_idle = [this](const FunctionPool* requester) { return evict_lru(requester); };
}

std::vector<std::shared_ptr<FunctionPool>> Engine::all_pools() {
  std::vector<std::shared_ptr<FunctionPool>> out;
  const auto cat = published_.load();
  for (const auto& [name, e] : *cat) {
    out.push_back(e->latest_pool);
    for (const auto& [v, p] : e->version_pools) out.push_back(p);
  }
  return out;
}

bool Engine::evict_lru(const FunctionPool* requester) {
  std::shared_ptr<FunctionPool> victim, own;
  std::optional<SteadyTime> oldest;
  for (auto& pool : all_pools()) {
    if (pool.get() == requester) {
      own = pool;
      continue;
    }
    const auto t = pool->oldest_idle();
    if (t && (!oldest || *t < *oldest)) oldest = t, victim = pool;
  }
  if (victim && victim->evict_oldest_idle()) return true;
  // Only the requester's own idle (on-demand) environments are left: it needs the memory for
  // a provisioned one (its waiting invokes would have taken them), e.g. provisioned
  // concurrency moved onto the version of an environment that became on-demand.
  return own && own->evict_oldest_idle();
}

Engine::~Engine() {
  stop();
}

const Engine::Catalog& Engine::catalog() {
  const auto gen = generation_.load(std::memory_order_acquire);
  if (t_cache.owner != id_ || t_cache.generation != gen) {
    t_cache.owner = id_;
    t_cache.catalog = published_.load();
    t_cache.generation = gen;
  }
  return *static_cast<const Catalog*>(t_cache.catalog.get());
}

void Engine::publish(std::shared_ptr<const Catalog> next) {
  current_ = next;
  published_.store(std::move(next));
  generation_.fetch_add(1, std::memory_order_release);
}

std::string Engine::function_arn(std::string_view name, std::string_view qualifier) const {
  std::string arn = fmt::format("arn:aws:lambda:{}:{}:function:{}", deps_.settings.region,
                                deps_.settings.account, name);
  if (!qualifier.empty()) {
    arn += ':';
    arn += qualifier;
  }
  return arn;
}

void Engine::put_function(FunctionSnapshot snap) {
  std::unique_lock lock(write_mu_);
  auto next = std::make_shared<Catalog>(*current_);
  auto entry = std::make_shared<Entry>();
  auto it = next->find(snap.name);
  if (it != next->end()) {
    const auto& old = *it->second;
    entry->in_flight = old.in_flight;
    entry->provisioned_in_flight = old.provisioned_in_flight;
    entry->latest_pool = old.latest_pool;
    const auto& a = *old.snap.latest.config;
    const auto& b = *snap.latest.config;
    // Any change of code or configuration means no invoke may reach an
    // environment of the old one.
    if (a.revision_id != b.revision_id || a.network_egress != b.network_egress ||
        old.snap.latest.task_root != snap.latest.task_root)
      entry->latest_pool->reconfigure(snap.latest);
    for (const auto& [v, spec] : snap.versions) {
      auto p = old.version_pools.find(v);
      if (p != old.version_pools.end()) entry->version_pools[v] = p->second;
    }
    // Versions that disappeared stop.
    for (const auto& [v, pool] : old.version_pools)
      if (!snap.versions.contains(v))
        pool->stop(make_error(Errc::kNotFound, "Function not found: " + function_arn(snap.name, v)),
                   /*finish_running=*/true);
  } else {
    entry->in_flight = std::make_shared<std::atomic<int>>(0);
    entry->latest_pool = std::make_shared<FunctionPool>(snap.latest, shards_, deps_);
  }
  for (const auto& [v, spec] : snap.versions)
    if (!entry->version_pools.contains(v))
      entry->version_pools[v] = std::make_shared<FunctionPool>(spec, shards_, deps_);
  const auto* old_provisioned = it != next->end() ? &it->second->snap.provisioned : nullptr;
  for (const auto& [v, pool] : entry->version_pools) {
    const auto want = snap.provisioned.contains(v) ? snap.provisioned.at(v) : 0;
    const auto had = old_provisioned && old_provisioned->contains(v) ? old_provisioned->at(v) : 0;
    if (want != had) pool->set_provisioned(want);
  }
  for (const auto& [v, n] : snap.provisioned)
    if (!entry->provisioned_in_flight.contains(v))
      entry->provisioned_in_flight[v] = std::make_shared<std::atomic<int>>(0);
  entry->arn = function_arn(snap.name);
  entry->snap = std::move(snap);
  (*next)[entry->snap.name] = entry;
  update_unreserved_limit(*next);
  publish(std::move(next));
  lock.unlock();  // what follows completes invokes: their callbacks must not run under it
  // Reserved concurrency 0 stops the function: invokes still waiting for an environment are
  // throttled as new ones are (those running finish).
  if (entry->snap.reserved_concurrency == 0) {
    const auto throttled = make_error(Errc::kThrottled, "Rate Exceeded.",
                                      "ReservedFunctionConcurrentInvocationLimitExceeded");
    entry->latest_pool->fail_waiting(throttled);
    for (const auto& [v, pool] : entry->version_pools) pool->fail_waiting(throttled);
  }
}

void Engine::remove_function(const std::string& name) {
  std::shared_ptr<const Entry> old;
  {
    std::lock_guard lock(write_mu_);
    auto it = current_->find(name);
    if (it == current_->end()) return;
    old = it->second;
    auto next = std::make_shared<Catalog>(*current_);
    next->erase(name);
    update_unreserved_limit(*next);
    publish(std::move(next));
  }
  const auto gone = make_error(Errc::kNotFound, "Function not found: " + function_arn(name));
  // As on AWS, invocations already running finish; waiting ones fail.
  old->latest_pool->stop(gone, /*finish_running=*/true);
  for (const auto& [v, pool] : old->version_pools) pool->stop(gone, /*finish_running=*/true);
}

void Engine::update_unreserved_limit(const Catalog& cat) {
  std::int64_t limit = account_concurrency_;
  for (const auto& [n, e] : cat) {
    if (e->snap.reserved_concurrency) {
      limit -= *e->snap.reserved_concurrency;
    } else {
      for (const auto& [v, count] : e->snap.provisioned) limit -= count;
    }
  }
  unreserved_limit_.store(static_cast<int>(std::max<std::int64_t>(limit, 0)),
                          std::memory_order_relaxed);
}

Result<FunctionPool*> Engine::find_pool(std::string_view name, std::string_view qualifier,
                                        std::string& version, const Entry** entry) {
  const auto& cat = catalog();
  const auto it = cat.find(name);
  auto not_found = [&] {
    return fail(Errc::kNotFound, "Function not found: " + function_arn(name, qualifier));
  };
  if (it == cat.end()) return not_found();
  const Entry& e = *it->second;
  if (entry) *entry = &e;
  std::string_view v = qualifier;
  if (!qualifier.empty() && qualifier != registry::kLatest) {
    const bool numeric = std::all_of(qualifier.begin(), qualifier.end(),
                                     [](char c) { return c >= '0' && c <= '9'; });
    if (!numeric) {
      const auto a = e.snap.aliases.find(std::string(qualifier));
      if (a == e.snap.aliases.end()) return not_found();
      v = a->second.function_version;
      if (a->second.routing && random_unit() < a->second.routing->weight)
        v = a->second.routing->version;
    }
  }
  if (v.empty() || v == registry::kLatest) {
    version.assign(registry::kLatest);
    return e.latest_pool.get();
  }
  const auto p = e.version_pools.find(std::string(v));
  if (p == e.version_pools.end()) return not_found();
  version.assign(v);
  return p->second.get();
}

Result<void> Engine::acquire(const Entry& e, Invocation& inv) {
  // Lambda's concurrency model: a function with reserved concurrency R runs at
  // most R invokes and never touches the shared pool; the others share the
  // account limit minus all reservations. Over a limit: 429 at once, never a
  // queue (clients retry, as they do on AWS).
  // Provisioned concurrency comes out of the reservation, or else is set aside from the
  // unreserved pool: the invokes it covers take none of that pool, and those beyond it spill
  // over to on-demand. Every invoke counts in the function's in_flight, so a reservation set
  // while invokes run counts them.
  const int running = e.in_flight->fetch_add(1, std::memory_order_relaxed);
  inv.function_slot = e.in_flight;
  if (e.snap.reserved_concurrency) {
    if (running >= *e.snap.reserved_concurrency) {
      inv.release_slots();
      return fail(Errc::kThrottled, "Rate Exceeded.",
                  "ReservedFunctionConcurrentInvocationLimitExceeded");
    }
  } else {
    if (!e.snap.provisioned.empty()) {
      const auto p = e.snap.provisioned.find(inv.executed_version);
      if (p != e.snap.provisioned.end()) {
        const auto& slots = e.provisioned_in_flight.find(inv.executed_version)->second;
        inv.provisioned_slot = slots;
        if (slots->fetch_add(1, std::memory_order_relaxed) < p->second) {
          in_flight_.fetch_add(1, std::memory_order_relaxed);
          inv.in_flight = &in_flight_;
          return {};
        }
        slots->fetch_sub(1, std::memory_order_relaxed);
        inv.provisioned_slot.reset();
      }
    }
    const int limit = unreserved_limit_.load(std::memory_order_relaxed);
    if (unreserved_in_flight_.fetch_add(1, std::memory_order_relaxed) >= limit) {
      unreserved_in_flight_.fetch_sub(1, std::memory_order_relaxed);
      inv.release_slots();
      return fail(Errc::kThrottled, "Rate Exceeded.", "ConcurrentInvocationLimitExceeded");
    }
    inv.pool_slot = &unreserved_in_flight_;
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  inv.in_flight = &in_flight_;
  return {};
}

void Engine::invoke(std::string_view name, std::string_view qualifier, const InvocationPtr& inv) {
  const Entry* entry = nullptr;
  auto pool = find_pool(name, qualifier, inv->executed_version, &entry);
  if (!pool) return inv->fail(std::move(pool.error()));
  if (inv->invoked_arn.empty()) inv->invoked_arn = entry->arn;
  if (auto ok = acquire(*entry, *inv); !ok) return inv->fail(std::move(ok.error()));
  // The catalog entry (and so the pool) stays alive in this thread's cached catalog.
  (*pool)->submit(inv);
}

Result<std::string> Engine::resolve(std::string_view name, std::string_view qualifier) {
  std::string version;
  auto pool = find_pool(name, qualifier, version, nullptr);
  if (!pool) return fail(std::move(pool.error()));
  return version;
}

std::optional<PoolStats> Engine::stats(std::string_view name, std::string_view version) {
  const auto& cat = catalog();
  const auto it = cat.find(name);
  if (it == cat.end()) return std::nullopt;
  if (version.empty() || version == registry::kLatest) return it->second->latest_pool->stats();
  const auto p = it->second->version_pools.find(std::string(version));
  if (p == it->second->version_pools.end()) return std::nullopt;
  return p->second->stats();
}

std::optional<ProvisionedStatus> Engine::provisioned_status(std::string_view name,
                                                            std::string_view version) {
  const auto& cat = catalog();
  const auto it = cat.find(name);
  if (it == cat.end()) return std::nullopt;
  const auto p = it->second->version_pools.find(std::string(version));
  if (p == it->second->version_pools.end()) return std::nullopt;
  return p->second->provisioned_status();
}

void Engine::start() {
  reaper_ = std::make_unique<boost::asio::steady_timer>(shards_.at(0));
  schedule_reap();
}

void Engine::schedule_reap() {
  reaper_->expires_after(std::chrono::seconds(1));
  reaper_->async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    std::shared_ptr<const Catalog> cat;
    {
      std::lock_guard lock(write_mu_);
      cat = current_;
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [name, e] : *cat) {
      e->latest_pool->reap(now, deps_.settings.keep_warm);
      for (const auto& [v, p] : e->version_pools) p->reap(now, deps_.settings.keep_warm);
    }
    schedule_reap();
  });
}

void Engine::stop() {
  if (stopped_.exchange(true)) return;
  if (budget_) budget_->close();
  if (reaper_) {
    boost::asio::post(reaper_->get_executor(), [t = reaper_.get()] { t->cancel(); });
  }
  std::shared_ptr<const Catalog> cat;
  {
    std::lock_guard lock(write_mu_);
    cat = current_;
  }
  const auto why = make_error(Errc::kUnavailable, "Lambent is shutting down");
  for (const auto& [name, e] : *cat) {
    e->latest_pool->stop(why);
    for (const auto& [v, p] : e->version_pools) p->stop(why);
  }
}

}  // namespace lambent::engine
