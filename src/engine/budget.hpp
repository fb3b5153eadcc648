// engine/budget.hpp — the host memory budget: the MemorySize of every live
// environment, summed, never exceeds the limit.
//
// Thread-safe. Reserving and releasing are single atomic operations; pools
// that could not reserve register and are told (on the notify context) when
// memory comes back, so nothing is ever called back under a pool's lock.
// Shared by the engine and every environment: an environment can outlive the
// engine at shutdown (a handler still queued on a stopped shard holds it) and
// releases its memory on destruction.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace lambent::engine {

class MemoryBudget {
 public:
  MemoryBudget(std::int64_t limit_mb, boost::asio::io_context& notify)
      : limit_mb_(limit_mb), notify_(notify) {}

  // `starving`: for a pool with invokes waiting and no environment at all. While such a pool
  // waits, nobody else reserves: the memory that comes back is its.
  bool try_reserve(std::int64_t mb, bool starving = false);
  void release(std::int64_t mb);
  // `retry` runs (on the notify context) after the next release, or at once
  // if `mb` fits again already (a release may have raced the failed reserve).
  // Starving waiters are told first, then the others, each in the order they came.
  // `owner` names who waits (a pool).
  void wait(std::int64_t mb, const void* owner, bool starving, std::function<void()> retry);
  // Whether a pool other than `owner` starves for memory. One relaxed load when none does.
  bool others_starving(const void* owner);
  // An environment went idle: the waiters are told, since a waiting pool can
  // now evict it to make room (nothing else would wake them while every
  // environment stays alive). One relaxed load when nobody waits.
  void on_idle();
  // At shutdown, before the notify context goes: no waiter is told any more.
  void close();

  std::int64_t used_mb() const { return used_mb_.load(std::memory_order_relaxed); }
  std::int64_t limit_mb() const { return limit_mb_; }

 private:
  const std::int64_t limit_mb_;
  boost::asio::io_context& notify_;
  void wake_waiters();

  std::atomic<std::int64_t> used_mb_{0};
  std::atomic<bool> has_waiters_{false};
  std::atomic<int> starving_{0};  // starving waiters registered (guarded by mu_ for writes)
  std::mutex mu_;
  bool closed_ = false;  // guarded by mu_
  struct Waiter {
    const void* owner;
    bool starving;
    std::function<void()> retry;
  };
  std::vector<Waiter> waiters_;
};

}  // namespace lambent::engine
