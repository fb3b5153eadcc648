#include "engine/pool.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"

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
  if (shard >= 0 && static_cast<std::size_t>(shard) < idle_.size())
    if (auto e = take(idle_[static_cast<std::size_t>(shard)])) return e;
  for (auto& v : idle_)
    if (auto e = take(v)) return e;
  return nullptr;
}

bool FunctionPool::need_spawn_locked() const {
  return !stopped_ && waiting_.size() > static_cast<std::size_t>(starting_ + finishing_);
}

std::shared_ptr<Environment> FunctionPool::new_env_locked(int shard) {
  if (shard < 0) shard = static_cast<int>(next_shard_++ % static_cast<unsigned>(shards_.size()));
  auto env = std::make_shared<Environment>(shards_.at(shard), shard, spec_, "on-demand",
                                           weak_from_this(), deps_);
  envs_.emplace(env.get(), Tracked{env, Slot::kStarting});
  ++starting_;
  return env;
}

void FunctionPool::launch(const std::shared_ptr<Environment>& env) {
  asio::post(env->shard(), [env] { env->spawn(); });
}

void FunctionPool::hand_over(const std::shared_ptr<Environment>& env, const InvocationPtr& inv) {
  run_on(env, [self = shared_from_this(), env, inv] {
    // The environment may have died since it was taken from the idle list.
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
    env = pop_idle_locked(http::Shards::current());
    if (!env) {
      waiting_.push_back(inv);
      if (need_spawn_locked()) fresh = new_env_locked(http::Shards::current());
    }
  }
  if (env) hand_over(env, inv);
  if (fresh) launch(fresh);
}

void FunctionPool::on_ready(const std::shared_ptr<Environment>& env) {
  InvocationPtr inv;
  std::shared_ptr<Environment> fresh;
  bool retire = false;
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env.get());
    if (it == envs_.end()) {
      retire = true;
    } else {
      auto& t = it->second;
      if (t.slot == Slot::kStarting) --starting_;
      if (t.slot == Slot::kFinishing) --finishing_;
      if (stopped_ || env->generation() != spec_.generation) {
        retire = true;
        t.slot = Slot::kBusy;  // counted nowhere until on_dead removes it
        if (need_spawn_locked()) fresh = new_env_locked(env->shard_index());
      } else if (!waiting_.empty()) {
        inv = std::move(waiting_.front());
        waiting_.pop_front();
        t.slot = Slot::kBusy;
      } else {
        t.slot = Slot::kIdle;
        idle_[static_cast<std::size_t>(env->shard_index())].push_back(env.get());
      }
    }
  }
  if (retire) env->shutdown("code or configuration changed");
  if (inv && !env->start(inv)) submit(inv);
  if (fresh) launch(fresh);
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
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env.get());
    if (it != envs_.end()) {
      switch (it->second.slot) {
        case Slot::kStarting: --starting_; break;
        case Slot::kFinishing: --finishing_; break;
        case Slot::kIdle: {
          auto& v = idle_[static_cast<std::size_t>(env->shard_index())];
          std::erase(v, env.get());
          break;
        }
        case Slot::kBusy: break;
      }
      envs_.erase(it);
    }
    // The invoke that waited for this environment's init gets its error,
    // as on Lambda; others keep waiting for a fresh environment.
    if (failure && !waiting_.empty()) {
      failed = std::move(waiting_.front());
      waiting_.pop_front();
    }
    if (need_spawn_locked()) fresh = new_env_locked(env->shard_index());
  }
  if (failed) {
    InvokeOutcome o;
    o.function_error = true;
    o.payload = std::move(failure->payload);
    failed->complete(std::move(o));
  }
  if (fresh) launch(fresh);
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

void FunctionPool::stop(const Error& why) {
  std::vector<std::shared_ptr<Environment>> all;
  std::deque<InvocationPtr> waiting;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    stop_error_ = why;
    for (auto& [p, t] : envs_) all.push_back(t.env);
    waiting.swap(waiting_);
  }
  for (auto& inv : waiting) inv->fail(why);
  for (auto& e : all) run_on(e, [e, msg = why.message] { e->shutdown(msg); });
}

void FunctionPool::reap(SteadyTime now, std::chrono::milliseconds keep_warm) {
  std::vector<std::shared_ptr<Environment>> expired;
  {
    std::lock_guard lock(mu_);
    for (auto& v : idle_) {
      std::erase_if(v, [&](Environment* e) {
        if (now - e->idle_since() < keep_warm) return false;
        auto& t = envs_.at(e);
        t.slot = Slot::kBusy;
        expired.push_back(t.env);
        return true;
      });
    }
  }
  for (auto& e : expired) run_on(e, [e] { e->shutdown("idle past the keep-warm period"); });
}

PoolStats FunctionPool::stats() {
  std::lock_guard lock(mu_);
  PoolStats s;
  for (auto& [p, t] : envs_) {
    switch (t.slot) {
      case Slot::kStarting: ++s.starting; break;
      case Slot::kIdle: ++s.idle; break;
      case Slot::kBusy: ++s.busy; break;
      case Slot::kFinishing: ++s.finishing; break;
    }
  }
  s.waiting = static_cast<int>(waiting_.size());
  return s;
}

}  // namespace lambent::engine
