#include "engine/pool.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include <fmt/format.h>

#include "core/log.hpp"
#include "engine/placement.hpp"

namespace lambent::engine {

namespace asio = boost::asio;

FunctionPool::FunctionPool(VersionSpec spec, http::Shards& shards, EngineDeps deps)
    : shards_(shards), deps_(deps), spec_(std::move(spec)) {
  idle_.resize(static_cast<std::size_t>(shards_.size()));
}

FunctionPool::~FunctionPool() = default;

void FunctionPool::run_on(const std::shared_ptr<Environment>& env, std::function<void()> fn) {
  if (env->shard().get_executor().running_in_this_thread()) {
    fn();
  } else {
    asio::post(env->shard(), std::move(fn));
  }
}

std::shared_ptr<Environment> FunctionPool::pop_idle_locked(int shard) {
  auto take = [&](std::vector<Environment*>& v) -> std::shared_ptr<Environment> {
    if (v.empty()) return nullptr;
    Environment* e = v.back();
    v.pop_back();
    auto& t = envs_.at(e);
    t.slot = Slot::kBusy;
    return t.env;
  };
  const auto n = idle_.size();
  const auto working = [&](std::size_t s) { return deps_.placement->working(static_cast<int>(s)); };
  if (shard >= 0 && static_cast<std::size_t>(shard) < n) {
    const auto own = static_cast<std::size_t>(shard);
    // Placement: not beside a working environment while one idles where
    // nothing works (its CPU is likely free). Only checked when this shard
    // has some working: a sequential caller's warm path reads one counter.
    if (deps_.placement && !idle_[own].empty() && working(own) > 0) {
      for (std::size_t s = 0; s < n; ++s)
        if (s != own && !idle_[s].empty() && working(s) == 0) return take(idle_[s]);
    }
    if (auto e = take(idle_[own])) return e;
  }
  // Another shard's: with placement, the one with the fewest working.
  std::size_t pick = n;
  for (std::size_t s = 0; s < n; ++s) {
    if (idle_[s].empty()) continue;
    if (!deps_.placement) return take(idle_[s]);
    if (pick == n || working(s) < working(pick)) pick = s;
  }
  return pick == n ? nullptr : take(idle_[pick]);
}

bool FunctionPool::need_spawn_locked() const {
  return !stopped_ &&
         waiting_.size() + (retry_for_ ? 1 : 0) > static_cast<std::size_t>(starting_ + finishing_);
}

bool FunctionPool::starving_locked() const {
  return envs_.empty() && (!waiting_.empty() || retry_for_);
}

std::shared_ptr<Environment> FunctionPool::new_env_locked(int shard, bool provisioned,
                                                          InvocationPtr init_for) {
  const std::int64_t mb = spec_.config->memory_mb;
  if (!provisioned && !init_for && retry_for_) init_for = retry_for_;  // its retry goes first
  if (deps_.budget && !deps_.budget->try_reserve(mb, starving_locked())) {
    memory_blocked_ = true;
    return nullptr;
  }
  if (init_for && init_for == retry_for_) retry_for_.reset();
  if (deps_.placement) {
    shard = deps_.placement->choose(shard);
  } else if (shard < 0) {
    shard = static_cast<int>(next_shard_++ % static_cast<unsigned>(shards_.size()));
  }
  auto env = std::make_shared<Environment>(shards_.at(shard), shard, spec_,
                                           provisioned ? "provisioned-concurrency" : "on-demand",
                                           weak_from_this(), deps_);
  if (deps_.budget) env->hold_memory(mb);
  if (init_for) env->init_in_invoke_phase(std::move(init_for));
  envs_.emplace(env.get(), Tracked{env, Slot::kStarting, provisioned, false});
  if (provisioned) ++provisioned_live_;
  ++starting_;
  return env;
}

void FunctionPool::launch(const std::shared_ptr<Environment>& env) {
  asio::post(env->shard(), [env] { env->spawn(); });
}

void FunctionPool::hand_over(const std::shared_ptr<Environment>& env, const InvocationPtr& inv) {
  // The environment may have died since it was taken from the idle list.
  if (env->shard().get_executor().running_in_this_thread()) {
    // The warm path: no closure to allocate. The caller holds the pool alive.
    if (!env->start(inv)) submit(inv);
    return;
  }
  asio::post(env->shard(), [self = shared_from_this(), env, inv] {
    if (!env->start(inv)) self->submit(inv);
  });
}

void FunctionPool::submit(const InvocationPtr& inv) {
  std::shared_ptr<Environment> env, fresh;
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      inv->fail(stop_error_);
      return;
    }
    // A function larger than the whole budget could only wait (and evict everything) in vain.
    if (deps_.budget && spec_.config->memory_mb > deps_.budget->limit_mb()) {
      inv->fail(make_error(
          Errc::kInvalidParameter,
          fmt::format("The function's MemorySize ({} MB) is larger than this host's memory "
                      "budget for all environments ({} MB, lambent serve --memory-budget).",
                      spec_.config->memory_mb, deps_.budget->limit_mb())));
      return;
    }
    env = pop_idle_locked(http::Shards::current());
    if (!env) {
      waiting_.push_back(inv);
      if (need_spawn_locked()) fresh = new_env_locked(http::Shards::current());
    }
  }
  if (env) hand_over(env, inv);
  if (fresh) launch(fresh);
  on_memory_blocked();
}

void FunctionPool::on_ready(const std::shared_ptr<Environment>& env) {
  InvocationPtr inv;
  std::shared_ptr<Environment> fresh;
  bool retire = false;
  bool evictable = false;  // went idle, and another pool may evict it for memory
  bool yielded = false;    // stopped to give its memory to another function
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env.get());
    if (it == envs_.end()) {
      retire = true;
    } else {
      auto& t = it->second;
      const bool served = t.slot == Slot::kFinishing;
      if (t.slot == Slot::kStarting) --starting_;
      t.initialised = true;
      if (t.provisioned) provisioned_failures_ = 0;
      if (t.slot == Slot::kFinishing) --finishing_;
      // An environment that retried a failed init for an invoke serves that invoke.
      InvocationPtr bound = env->claim_init_invocation();
      if (stopped_ || env->generation() != spec_.generation) {
        retire = true;
        t.slot = Slot::kBusy;  // counted nowhere until on_dead removes it
        if (bound) waiting_.push_front(std::move(bound));
        if (need_spawn_locked()) fresh = new_env_locked(env->shard_index());
      } else if (bound) {
        inv = std::move(bound);
        t.slot = Slot::kBusy;
      } else if (!waiting_.empty() && served && !t.provisioned && deps_.budget &&
                 deps_.budget->others_starving(this)) {
        // Fairness under the memory budget: another function has invokes waiting and no
        // environment at all, so an environment that has served one of this function's
        // invokes stops instead of taking the next, and its memory goes to that function
        // (nobody else reserves while it starves). Otherwise a function that keeps all of its
        // environments busy would keep the memory for ever. This function's own invokes
        // wait for its other environments, or for memory like anyone's.
        retire = true;
        yielded = true;
        t.slot = Slot::kBusy;  // counted nowhere until on_dead removes it
      } else if (!waiting_.empty()) {
        inv = std::move(waiting_.front());
        waiting_.pop_front();
        t.slot = Slot::kBusy;
      } else {
        t.slot = Slot::kIdle;
        idle_[static_cast<std::size_t>(env->shard_index())].push_back(env.get());
        evictable = !t.provisioned;
      }
    }
  }
  if (evictable && deps_.budget) deps_.budget->on_idle();
  if (retire)
    env->shutdown(yielded ? "memory given to another function waiting for the host memory budget"
                          : "code or configuration changed");
  if (inv && !env->start(inv)) submit(inv);
  if (fresh) launch(fresh);
  on_memory_blocked();
}

void FunctionPool::on_finishing(const std::shared_ptr<Environment>& env) {
  std::lock_guard lock(mu_);
  auto it = envs_.find(env.get());
  if (it == envs_.end()) return;
  it->second.slot = Slot::kFinishing;
  ++finishing_;
}

void FunctionPool::on_dead(const std::shared_ptr<Environment>& env,
                           std::optional<EnvFailure> failure) {
  InvocationPtr failed;
  std::shared_ptr<Environment> fresh;
  std::vector<std::shared_ptr<Environment>> provisioned_fresh;
  bool provisioned = false;
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env.get());
    if (it != envs_.end()) {
      provisioned = it->second.provisioned;
      switch (it->second.slot) {
        case Slot::kStarting:
          --starting_;
          break;
        case Slot::kFinishing:
          --finishing_;
          break;
        case Slot::kIdle: {
          auto& v = idle_[static_cast<std::size_t>(env->shard_index())];
          std::erase(v, env.get());
          break;
        }
        case Slot::kBusy:
          break;
      }
      if (it->second.provisioned) {
        --provisioned_live_;
        if (!it->second.initialised && failure) ++provisioned_failures_;
      }
      envs_.erase(it);
    }
    for (auto& e : top_up_provisioned_locked()) provisioned_fresh.push_back(std::move(e));
    // An init that failed (or timed out) is tried once more for the first invoke waiting, as
    // part of that invoke (as on Lambda): it leaves the queue for the environment that
    // retries, or for retry_for_ until memory lets one start. A second failure is its answer;
    // others keep waiting for a fresh environment.
    if (failure && failure->invocation) {
      failed = std::move(failure->invocation);
    } else if (failure && !waiting_.empty()) {
      InvocationPtr next = std::move(waiting_.front());
      waiting_.pop_front();
      if (provisioned || next->init_retried || stopped_) {
        failed = std::move(next);
      } else {
        next->init_retried = true;
        fresh = new_env_locked(env->shard_index(), false, next);
        if (!fresh) retry_for_ = std::move(next);
      }
    }
    if (!fresh && need_spawn_locked()) fresh = new_env_locked(env->shard_index());
  }
  if (failed) {
    InvokeOutcome o;
    o.function_error = true;
    o.payload = std::move(failure->payload);
    o.log_tail = std::move(failure->log_tail);  // set for the invoke the init was for
    failed->complete(std::move(o));
  }
  if (fresh) launch(fresh);
  for (auto& e : provisioned_fresh) launch(e);
  on_memory_blocked();
}

std::vector<std::shared_ptr<Environment>> FunctionPool::top_up_provisioned_locked() {
  std::vector<std::shared_ptr<Environment>> out;
  if (stopped_ || provisioned_failures_ >= 3) return out;
  while (provisioned_live_ < provisioned_target_) {
    auto env = new_env_locked(-1, true);
    if (!env) break;  // memory budget: retried when memory comes back
    out.push_back(std::move(env));
  }
  return out;
}

void FunctionPool::set_provisioned(int n) {
  std::vector<std::shared_ptr<Environment>> fresh, surplus;
  {
    std::lock_guard lock(mu_);
    provisioned_target_ = n;
    provisioned_failures_ = 0;
    fresh = top_up_provisioned_locked();
    // Fewer wanted: idle provisioned environments beyond the target stop.
    int extra = provisioned_live_ - n;
    for (auto& v : idle_) {
      std::erase_if(v, [&](Environment* e) {
        auto& t = envs_.at(e);
        if (extra <= 0 || !t.provisioned) return false;
        --extra;
        t.slot = Slot::kBusy;
        surplus.push_back(t.env);
        return true;
      });
    }
    // Busy ones stay until they become ready again; they are then on-demand.
    for (auto& [p, t] : envs_) {
      if (extra <= 0) break;
      if (t.provisioned && t.slot != Slot::kIdle) {
        t.provisioned = false;
        --provisioned_live_;
        --extra;
      }
    }
    for (auto& e : surplus) {
      auto& t = envs_.at(e.get());
      t.provisioned = false;
      --provisioned_live_;
    }
  }
  for (auto& e : fresh) launch(e);
  for (auto& e : surplus) run_on(e, [e] { e->shutdown("provisioned concurrency lowered"); });
  on_memory_blocked();
}

ProvisionedStatus FunctionPool::provisioned_status() {
  std::lock_guard lock(mu_);
  ProvisionedStatus s;
  s.requested = provisioned_target_;
  for (auto& [p, t] : envs_) {
    if (!t.provisioned) continue;
    ++s.allocated;
    if (t.initialised) ++s.available;
  }
  if (provisioned_failures_ >= 3) {
    s.status = "FAILED";
    s.reason = "FUNCTION_ERROR_INIT_FAILURE: the function's initialization failed 3 times in a row";
  } else {
    s.status = s.available >= s.requested ? "READY" : "IN_PROGRESS";
  }
  return s;
}

void FunctionPool::on_memory_blocked() {
  // The warm path pays one relaxed load here.
  if (!memory_blocked_.load(std::memory_order_relaxed) || !memory_blocked_.exchange(false)) return;
  std::int64_t mb;
  bool starving;
  {
    std::lock_guard lock(mu_);
    mb = spec_.config->memory_mb;
    starving = starving_locked();
    LAMBENT_LOG_DEBUG("engine", "{} waits for {} MB of host memory ({} invokes waiting{})",
                      spec_.config->name, mb, waiting_.size() + (retry_for_ ? 1 : 0),
                      starving ? ", no environment" : "");
  }
  // Idle environments of other functions go first, least recently used; the
  // waiting invoke then retries when memory is back or another environment
  // goes idle (or times out with 429). Waiting starts before the eviction
  // looks for an idle environment, so one going idle in between is not missed.
  if (deps_.budget)
    deps_.budget->wait(mb, this, starving, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->retry_spawn();
    });
  if (deps_.evict_idle) deps_.evict_idle(this);
}

void FunctionPool::retry_spawn() {
  std::shared_ptr<Environment> fresh;
  std::vector<std::shared_ptr<Environment>> provisioned;
  {
    std::lock_guard lock(mu_);
    if (need_spawn_locked()) fresh = new_env_locked(-1);
    if (!memory_blocked_) provisioned = top_up_provisioned_locked();
  }
  if (fresh) launch(fresh);
  for (auto& e : provisioned) launch(e);
  on_memory_blocked();
}

std::optional<SteadyTime> FunctionPool::oldest_idle() {
  std::lock_guard lock(mu_);
  std::optional<SteadyTime> oldest;
  for (auto& v : idle_)
    for (auto* e : v)
      if (!envs_.at(e).provisioned && (!oldest || e->idle_since() < *oldest))
        oldest = e->idle_since();
  return oldest;
}

bool FunctionPool::evict_oldest_idle() {
  std::shared_ptr<Environment> victim;
  {
    std::lock_guard lock(mu_);
    std::vector<Environment*>* from = nullptr;
    std::size_t at = 0;
    for (auto& v : idle_)
      for (std::size_t i = 0; i < v.size(); ++i)
        if (!envs_.at(v[i]).provisioned &&
            (!from || v[i]->idle_since() < (*from)[at]->idle_since()))
          from = &v, at = i;
    if (!from) return false;
    auto& t = envs_.at((*from)[at]);
    t.slot = Slot::kBusy;
    victim = t.env;
    from->erase(from->begin() + static_cast<std::ptrdiff_t>(at));
  }
  run_on(victim, [victim] { victim->shutdown("evicted: host memory budget"); });
  return true;
}

void FunctionPool::reconfigure(VersionSpec spec) {
  std::vector<std::shared_ptr<Environment>> retired;
  {
    std::lock_guard lock(mu_);
    spec.generation = spec_.generation + 1;
    spec_ = std::move(spec);
    for (auto& v : idle_) {
      for (auto* e : v) {
        auto& t = envs_.at(e);
        t.slot = Slot::kBusy;
        retired.push_back(t.env);
      }
      v.clear();
    }
  }
  for (auto& e : retired) run_on(e, [e] { e->shutdown("code or configuration changed"); });
}

void FunctionPool::stop(const Error& why, bool finish_running) {
  std::vector<std::shared_ptr<Environment>> all;
  std::deque<InvocationPtr> waiting;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    stop_error_ = why;
    for (auto& [p, t] : envs_) {
      // A running one is retired by on_ready (stopped_) when its invocation ends.
      if (finish_running && (t.slot == Slot::kBusy || t.slot == Slot::kFinishing)) continue;
      all.push_back(t.env);
    }
    waiting.swap(waiting_);
    if (retry_for_) waiting.push_back(std::exchange(retry_for_, nullptr));
  }
  for (auto& inv : waiting) inv->fail(why);
  for (auto& e : all) run_on(e, [e, msg = why.message] { e->shutdown(msg); });
}

void FunctionPool::fail_waiting(const Error& why) {
  std::deque<InvocationPtr> waiting;
  {
    std::lock_guard lock(mu_);
    waiting.swap(waiting_);
    if (retry_for_) waiting.push_back(std::exchange(retry_for_, nullptr));
  }
  for (auto& inv : waiting) inv->fail(why);
}

void FunctionPool::reap(SteadyTime now, std::chrono::milliseconds keep_warm) {
  std::vector<std::shared_ptr<Environment>> expired;
  std::vector<InvocationPtr> timed_out;
  {
    std::lock_guard lock(mu_);
    // Waiting invokes are served in order; one that waited too long fails
    // clearly instead of hanging.
    while (!waiting_.empty() &&
           now - waiting_.front()->accepted_at > deps_.settings.queue_timeout) {
      timed_out.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    // An invoke whose init retry waits for memory waits like the others (its retry, once
    // started, is bounded by the function's timeout instead).
    if (retry_for_ && now - retry_for_->accepted_at > deps_.settings.queue_timeout)
      timed_out.push_back(std::exchange(retry_for_, nullptr));
    for (auto& v : idle_) {
      std::erase_if(v, [&](Environment* e) {
        if (now - e->idle_since() < keep_warm) return false;
        auto& t = envs_.at(e);
        if (t.provisioned) return false;  // kept warm ahead of traffic
        t.slot = Slot::kBusy;
        expired.push_back(t.env);
        return true;
      });
    }
  }
  for (auto& e : expired) run_on(e, [e] { e->shutdown("idle past the keep-warm period"); });
  for (auto& inv : timed_out)
    inv->fail(make_error(
        Errc::kThrottled,
        fmt::format("Timed out after {} ms waiting for an execution environment (host memory "
                    "budget or environment start-up backlog).",
                    deps_.settings.queue_timeout.count()),
        "ConcurrentInvocationLimitExceeded"));
}

PoolStats FunctionPool::stats() {
  std::lock_guard lock(mu_);
  PoolStats s;
  for (auto& [p, t] : envs_) {
    switch (t.slot) {
      case Slot::kStarting:
        ++s.starting;
        break;
      case Slot::kIdle:
        ++s.idle;
        break;
      case Slot::kBusy:
        ++s.busy;
        break;
      case Slot::kFinishing:
        ++s.finishing;
        break;
    }
  }
  s.waiting = static_cast<int>(waiting_.size()) + (retry_for_ ? 1 : 0);
  return s;
}

}  // namespace lambent::engine
