// poll_window.hpp — how long an idle shard busy-polls its event loop before it blocks.
//
// A shard that blocks in epoll_wait halts its vCPU when nothing else runs there, and the next
// event then waits for the vCPU to be woken (an inter-processor interrupt and, in a VM, the host
// scheduling the vCPU again). Polling for a short while first keeps the shard awake across the
// gaps of a busy client: warm-p50 61–79 µs against 99–106 µs without (bench/RESULTS.md). The window
// adapts like the kernel's halt polling (KVM's halt_poll_ns): a wait that polling would have
// covered grows it, a wait longer than the most the shard may poll shrinks it, so a shard whose
// clients pause longer than that stops polling instead of burning the CPU. docs/design.md, "Polling
// before sleeping".
#pragma once

#include <algorithm>
#include <chrono>

namespace lambent::http {

class PollWindow {
 public:
  using Duration = std::chrono::nanoseconds;

  // `max` 0: never poll.
  explicit PollWindow(Duration max) : max_(max), start_(std::min(max, kStart)) {}

  Duration window() const { return window_; }
  Duration max() const { return max_; }

  // The loop was idle for `idle`, from its last handler to the next event (found by polling or
  // after blocking).
  void waited(Duration idle) {
    if (idle <= window_) return;  // polling covered it
    if (idle <= max_) {
      window_ = std::min(max_, std::max(window_ * 2, start_));
    } else {
      window_ /= 2;
      if (window_ < start_) window_ = Duration::zero();
    }
  }

 private:
  static constexpr Duration kStart = std::chrono::microseconds(10);
  Duration max_;
  Duration start_;
  Duration window_{0};
};

}  // namespace lambent::http
