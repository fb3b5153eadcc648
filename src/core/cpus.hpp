// core/cpus.hpp — CPU sets: which CPUs this process may use, and a list of
// CPUs as the cpu_set_t that sched_setaffinity takes.
#pragma once

#include <sched.h>

#include <vector>

namespace lambent {

// The CPUs this process may run on (its affinity mask), ascending; every CPU
// the kernel counts if the mask is too large for a cpu_set_t.
std::vector<int> allowed_cpus();

// `cpus` as a cpu_set_t; ids outside it (negative, >= CPU_SETSIZE) are left out.
// Allocation-free: usable between fork and exec.
inline cpu_set_t cpu_set_of(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  return set;
}

}  // namespace lambent
