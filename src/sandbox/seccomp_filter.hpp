// sandbox/seccomp_filter.hpp — the system-call filter of every namespaced
// environment. The rules and the reason for each are in docs/sandbox.md.
// Internal to sandbox/.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "core/result.hpp"

namespace lambent::sandbox {

// Owns a libseccomp context. Built once in the helper; loaded in each
// environment's bootstrap between fork and exec.
class SeccompFilter {
 public:
  static Result<SeccompFilter> build();
  SeccompFilter(SeccompFilter&& o) noexcept;
  SeccompFilter& operator=(SeccompFilter&& o) noexcept;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;
  ~SeccompFilter();

  // Installs the filter on the calling thread (no_new_privs must be set).
  // Returns 0 or -errno. A single prctl on the BPF program compiled at
  // build(), so it is safe between fork and exec.
  int load() const;

 private:
  explicit SeccompFilter(void* ctx) : ctx_(ctx) {}
  void* ctx_ = nullptr;  // scmp_filter_ctx, kept opaque to keep <seccomp.h> out of headers
  std::vector<sock_filter> program_;
};

}  // namespace lambent::sandbox
