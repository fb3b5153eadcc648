#include "core/cpus.hpp"

#include <thread>

namespace lambent {

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  } else {  // more CPUs than a cpu_set_t holds: all of them, as the kernel counts them
    for (unsigned c = 0; c < std::thread::hardware_concurrency(); ++c)
      out.push_back(static_cast<int>(c));
  }
  return out;
}

}  // namespace lambent
