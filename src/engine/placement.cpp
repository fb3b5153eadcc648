#include "engine/placement.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace lambent::engine {

namespace {
constexpr int kMbPerVcpu = 1769;  // Lambda: one vCPU at 1,769 MB
}

Placement::Placement(std::vector<std::vector<int>> shard_cpus)
    : cpus_(std::move(shard_cpus)), counts_(new Counts[cpus_.size()]) {}

int Placement::choose(int preferred) const {
  // One reading of the counts (other shards change them meanwhile).
  std::vector<std::pair<int, int>> load;  // (working, live) per shard
  if (cpus_.empty()) return 0;
  load.reserve(cpus_.size());
  for (std::size_t i = 0; i < cpus_.size(); ++i) {
    load.emplace_back(working(static_cast<int>(i)), environments(static_cast<int>(i)));
  }
  // Fewest working first, then fewest environments, then the lowest index.
  const auto best = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
  const auto [best_working, best_live] = load[static_cast<std::size_t>(best)];
  if (preferred >= 0 && static_cast<std::size_t>(preferred) < load.size()) {
    const auto [working_there, live_there] = load[static_cast<std::size_t>(preferred)];
    if (working_there == best_working && live_there <= best_live + 1 + best_live / 4) {
      return preferred;
    }
  }
  return best;
}

void Placement::add(int shard) {
  counts_[static_cast<std::size_t>(shard)].live.fetch_add(1, std::memory_order_relaxed);
}

void Placement::remove(int shard) {
  counts_[static_cast<std::size_t>(shard)].live.fetch_sub(1, std::memory_order_relaxed);
}

void Placement::working(int shard, int delta) {
  counts_[static_cast<std::size_t>(shard)].working.fetch_add(delta, std::memory_order_relaxed);
}

int Placement::environments(int shard) const {
  return counts_[static_cast<std::size_t>(shard)].live.load(std::memory_order_relaxed);
}

int Placement::working(int shard) const {
  return counts_[static_cast<std::size_t>(shard)].working.load(std::memory_order_relaxed);
}

std::vector<int> Placement::cpus_for(int shard, int memory_mb) const {
  const auto& cpus = cpus_[static_cast<std::size_t>(shard)];
  const int vcpus = (std::max(memory_mb, 1) + kMbPerVcpu - 1) / kMbPerVcpu;
  if (cpus.empty() || static_cast<std::size_t>(vcpus) > cpus.size()) return {};
  return cpus;
}

}  // namespace lambent::engine
