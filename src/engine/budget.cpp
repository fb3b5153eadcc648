#include "engine/budget.hpp"

#include <boost/asio/post.hpp>

namespace lambent::engine {

bool MemoryBudget::try_reserve(std::int64_t mb) {
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
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    waiters.swap(waiters_);
    has_waiters_.store(false, std::memory_order_relaxed);
  }
  for (auto& w : waiters) boost::asio::post(notify_, std::move(w));
}

void MemoryBudget::wait(std::int64_t mb, std::function<void()> retry) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (used_mb_.load(std::memory_order_relaxed) + mb > limit_mb_) {
      waiters_.push_back(std::move(retry));
      has_waiters_.store(true, std::memory_order_relaxed);
      return;
    }
  }
  boost::asio::post(notify_, std::move(retry));
}

void MemoryBudget::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  waiters_.clear();
  has_waiters_.store(false, std::memory_order_relaxed);
}

}  // namespace lambent::engine
