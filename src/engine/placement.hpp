// engine/placement.hpp — which shard, and so which CPUs, an environment gets.
//
// A warm invoke is two exchanges between a shard thread and a runtime process.
// When both run on the same CPU, each hand-off is a wake-up on that CPU; when
// they are apart, an inter-processor wake-up (~70–130 µs of latency on VMs)
// and cache traffic (docs/design.md, "CPU placement"). So an environment runs
// on its shard's CPUs, and new environments go where CPUs are free.
//
// Only environments that Lambda gives at most the shard's CPU count in vCPUs
// (one vCPU per 1,769 MB) are placed; larger ones may use every CPU. The
// affinity is a placement, not a limit: a function may widen it again, and
// its CPU share is still set by its cgroup weight.
//
// Thread-safe: counts are atomics; environments count themselves in and out.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

namespace lambent::engine {

class Placement {
 public:
  // shard_cpus[i]: the CPUs of shard i (http::Shards::cpus).
  explicit Placement(std::vector<std::vector<int>> shard_cpus);

  // The shard a new environment goes to. First the shards with the fewest
  // working environments (starting, or running an invocation):
  // a new one must not share a busy CPU while another is free — two
  // CPU-bound invocations on one CPU take twice as long. Among those,
  // `preferred` (the shard of the invoke that needs it: a cold start there
  // crosses no threads, ~0.8 ms less here) unless it has more than a quarter
  // (and one) more environments than the one with the fewest, which then
  // gets it (the lowest index on a tie). -1: no preference.
  int choose(int preferred) const;
  // Environments count themselves in and out, and say when they work.
  void add(int shard);
  void remove(int shard);
  void working(int shard, int delta);
  int environments(int shard) const;
  int working(int shard) const;
  // The CPUs an environment of `memory_mb` on `shard` is placed on; empty: anywhere.
  std::vector<int> cpus_for(int shard, int memory_mb) const;

 private:
  struct alignas(64) Counts {  // one cache line per shard: each is its own shard's to change
    std::atomic<int> live{0};
    std::atomic<int> working{0};
  };
  std::vector<std::vector<int>> cpus_;
  std::unique_ptr<Counts[]> counts_;
};

}  // namespace lambent::engine
