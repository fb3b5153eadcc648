#include "engine/placement.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace lambent::engine {

namespace {
constexpr int kMbPerVcpu = 1769;  // Lambda: one vCPU at 1,769 MB
}

Placement::Placement(std::vector<std::vector<int>> shard_cpus)
    : cpus_(std::move(shard_cpus)), counts_(new std::atomic<int>[cpus_.size()]) {
  for (std::size_t i = 0; i < cpus_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

int Placement::choose(int preferred) const {
  int best = 0;
  int best_count = 0;
  for (std::size_t i = 0; i < cpus_.size(); ++i) {
    const int c = counts_[i].load(std::memory_order_relaxed);
    if (i == 0 || c < best_count) {
      best = static_cast<int>(i);
      best_count = c;
    }
  }
  if (preferred >= 0 && static_cast<std::size_t>(preferred) < cpus_.size() &&
      environments(preferred) <= best_count + 1 + best_count / 4) {
    return preferred;
  }
  return best;
}

void Placement::add(int shard) {
  counts_[static_cast<std::size_t>(shard)].fetch_add(1, std::memory_order_relaxed);
}

void Placement::remove(int shard) {
  counts_[static_cast<std::size_t>(shard)].fetch_sub(1, std::memory_order_relaxed);
}

int Placement::environments(int shard) const {
  return counts_[static_cast<std::size_t>(shard)].load(std::memory_order_relaxed);
}

std::vector<int> Placement::cpus_for(int shard, int memory_mb) const {
  const auto& cpus = cpus_[static_cast<std::size_t>(shard)];
  const int vcpus = (std::max(memory_mb, 1) + kMbPerVcpu - 1) / kMbPerVcpu;
  if (cpus.empty() || static_cast<std::size_t>(vcpus) > cpus.size()) return {};
  return cpus;
}

}  // namespace lambent::engine
