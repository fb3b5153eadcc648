// sandbox/cgroup.hpp — one environment's cgroup, on cgroup v1 (one folder per
// controller hierarchy: memory, pids, cpu, freezer) or v2 (one folder).
// Internal to sandbox/; owned by the helper process. The daemon only receives
// fds of the peak-memory and freezer files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace lambent::sandbox {

enum class CgroupVersion { kNone, kV1, kV2 };

// v2 when /sys/fs/cgroup is a pure cgroup2 mount; v1 when the memory
// hierarchy is mounted there (hybrid hosts use v1 for the controllers).
CgroupVersion detect_cgroup_version(const std::string& root = "/sys/fs/cgroup");

struct CgroupLimits {
  std::uint64_t memory_bytes = 0;
  std::uint32_t max_pids = 0;
  std::uint32_t cpu_weight = 100;  // 1..10000, 100 = normal
  bool operator==(const CgroupLimits&) const = default;
};

// Owns the cgroup folder(s): the destructor kills every task still inside and
// removes them.
class Cgroup {
 public:
  static Result<std::unique_ptr<Cgroup>> create(CgroupVersion version, const std::string& parent,
                                                const std::string& id, const CgroupLimits& limits,
                                                const std::string& root = "/sys/fs/cgroup");
  // The object for a cgroup that make() — possibly in another process, such
  // as an environment's init — creates with `limits`. Nothing is created here.
  // `freezer` false: v1 skips the freezer hierarchy (open_freezer() fails).
  static std::unique_ptr<Cgroup> adopt(CgroupVersion version, const std::string& parent,
                                       const std::string& id, const CgroupLimits& limits,
                                       const std::string& root = "/sys/fs/cgroup",
                                       bool freezer = true);
  // Creates the folders, writes the limits, opens cgroup.procs.
  Result<void> make(const CgroupLimits& limits);
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  CgroupVersion version() const { return version_; }
  // Sets memory (and no swap), pids and CPU weight; a pre-made sandbox gets
  // its function's limits when it is assigned (nothing is written when they
  // are the ones it already has).
  Result<void> set_limits(const CgroupLimits& limits);
  // Open cgroup.procs files; a child joins by writing "0" to each (only
  // system calls, so it is safe between clone and exec).
  const std::vector<UniqueFd>& procs_fds() const { return procs_; }
  // True when the kernel OOM-killed a task of this cgroup.
  bool oom_killed() const;
  // Fds for the daemon: peak memory (read with pread) and the freezer control.
  Result<UniqueFd> open_peak() const;
  Result<UniqueFd> open_freezer() const;
  // SIGKILLs every task and waits (bounded) until the cgroup is empty.
  void kill_all();
  // One non-blocking round of kill_all(): SIGKILLs what is left and removes
  // the folders that are empty. True when every folder is gone; the helper
  // retries later instead of waiting for the kernel to empty the cgroup.
  bool try_remove();
  // Removes leftovers of a previous daemon under `parent` in every hierarchy.
  static void sweep(CgroupVersion version, const std::string& parent,
                    const std::string& root = "/sys/fs/cgroup");
  // Removes the (empty) parent folders themselves; a no-op where other tasks remain.
  static void remove_parent(CgroupVersion version, const std::string& parent,
                            const std::string& root = "/sys/fs/cgroup");

 private:
  Cgroup(CgroupVersion version, std::vector<std::string> dirs)
      : version_(version), dirs_(std::move(dirs)) {}
  std::string dir_of(std::string_view controller) const;

  CgroupVersion version_;
  std::vector<std::string> dirs_;       // v1: memory, pids, cpu, freezer; v2: one
  std::optional<CgroupLimits> limits_;  // as last written
  std::string root_ = "/sys/fs/cgroup";
  std::vector<UniqueFd> procs_;
};

// Freezer helpers used by the daemon on the fd from open_freezer().
Result<void> cgroup_set_frozen(int freezer_fd, CgroupVersion version, bool frozen);
// Reads the peak-memory file; 0 when unreadable.
std::uint64_t cgroup_read_peak(int peak_fd);

}  // namespace lambent::sandbox
