#include "engine/budget.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace lambent::engine {

bool MemoryBudget::try_reserve(std::int64_t mb, bool starving) {
  if (!starving && starving_.load(std::memory_order_relaxed) > 0) return false;
  auto used = used_mb_.load(std::memory_order_relaxed);
  do {
    if (used + mb > limit_mb_) return false;
  } while (!used_mb_.compare_exchange_weak(used, used + mb, std::memory_order_relaxed));
  return true;
}

void MemoryBudget::release(std::int64_t mb) {
  used_mb_.fetch_sub(mb, std::memory_order_relaxed);
  wake_waiters();
}

void MemoryBudget::on_idle() {
  if (has_waiters_.load(std::memory_order_relaxed)) wake_waiters();
}

void MemoryBudget::wake_waiters() {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    waiters.swap(waiters_);
    has_waiters_.store(false, std::memory_order_relaxed);
    starving_.store(0, std::memory_order_relaxed);
  }
  std::stable_partition(waiters.begin(), waiters.end(), [](const Waiter& w) { return w.starving; });
  for (auto& w : waiters) boost::asio::post(notify_, std::move(w.retry));
}

void MemoryBudget::wait(std::int64_t mb, const void* owner, bool starving,
                        std::function<void()> retry) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (used_mb_.load(std::memory_order_relaxed) + mb > limit_mb_ ||
        (!starving && starving_.load(std::memory_order_relaxed) > 0)) {
      waiters_.push_back({owner, starving, std::move(retry)});
      has_waiters_.store(true, std::memory_order_relaxed);
      if (starving) starving_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  boost::asio::post(notify_, std::move(retry));
}

bool MemoryBudget::others_starving(const void* owner) {
  if (starving_.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard lock(mu_);
  return std::any_of(waiters_.begin(), waiters_.end(),
                     [owner](const Waiter& w) { return w.starving && w.owner != owner; });
}

void MemoryBudget::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  waiters_.clear();
  has_waiters_.store(false, std::memory_order_relaxed);
  starving_.store(0, std::memory_order_relaxed);
}

}  // namespace lambent::engine
