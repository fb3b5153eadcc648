#include "sandbox/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include <fmt/format.h>

namespace lambent::sandbox {
namespace {

constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu", "freezer"};

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<void> write_text(const std::string& path, std::string_view text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail(sys_error("opening " + path, errno));
  if (::write(fd.get(), text.data(), text.size()) < 0) {
    return fail(sys_error(fmt::format("writing '{}' to {}", text, path), errno));
  }
  return {};
}

std::string read_text(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::vector<pid_t> read_pids(const std::string& dir) {
  std::vector<pid_t> pids;
  std::string text = read_text(dir + "/cgroup.procs");
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) pids.push_back(static_cast<pid_t>(std::stol(text.substr(pos, end - pos))));
    pos = end + 1;
  }
  return pids;
}

// Value of "key N" in a flat-keyed cgroup file (memory.events, memory.oom_control).
std::uint64_t keyed_value(const std::string& text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return std::stoull(std::string(line.substr(key.size() + 1)));
    }
    pos = end + 1;
  }
  return 0;
}

// Kills every task of one cgroup folder and removes it. v1 freezes first so
// that a forking task cannot outrun the kill loop.
void kill_and_remove(CgroupVersion version, const std::string& dir,
                     const std::string& freezer_dir) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(5);
  bool v2_kill = version == CgroupVersion::kV2 && exists(dir + "/cgroup.kill");
  while (steady_clock::now() < deadline) {
    auto pids = read_pids(dir);
    if (pids.empty()) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
      if (errno != EBUSY) return;
    } else if (v2_kill) {
      (void)write_text(dir + "/cgroup.kill", "1");
    } else {
      if (!freezer_dir.empty()) (void)write_text(freezer_dir + "/freezer.state", "FROZEN");
      for (pid_t p : pids) ::kill(p, SIGKILL);
      if (!freezer_dir.empty()) (void)write_text(freezer_dir + "/freezer.state", "THAWED");
    }
    // The dying tasks leave the cgroup asynchronously; nothing to wait on but time.
    std::this_thread::sleep_for(milliseconds(1));
  }
}

}  // namespace

CgroupVersion detect_cgroup_version(const std::string& root) {
  if (exists(root + "/cgroup.controllers")) return CgroupVersion::kV2;
  if (exists(root + "/memory/memory.limit_in_bytes") && exists(root + "/pids") &&
      exists(root + "/freezer")) {
    return CgroupVersion::kV1;
  }
  return CgroupVersion::kNone;
}

std::unique_ptr<Cgroup> Cgroup::adopt(CgroupVersion version, const std::string& parent,
                                      const std::string& id, const CgroupLimits& limits,
                                      const std::string& root, bool freezer) {
  std::vector<std::string> dirs;
  if (version == CgroupVersion::kV1) {
    for (const char* c : kV1Controllers) {
      // Each v1 hierarchy joined is one more task migration, and migrations
      // serialize host-wide: no freezer folder unless something freezes.
      if (!freezer && std::string_view(c) == "freezer") continue;
      dirs.push_back(fmt::format("{}/{}/{}/{}", root, c, parent, id));
    }
  } else if (version == CgroupVersion::kV2) {
    dirs.push_back(fmt::format("{}/{}/{}", root, parent, id));
  }
  std::unique_ptr<Cgroup> cg(new Cgroup(version, std::move(dirs)));
  cg->root_ = root;
  cg->limits_ = limits;
  return cg;
}

Result<std::unique_ptr<Cgroup>> Cgroup::create(CgroupVersion version, const std::string& parent,
                                               const std::string& id, const CgroupLimits& limits,
                                               const std::string& root) {
  if (version == CgroupVersion::kNone) {
    return fail(Errc::kUnavailable, "no usable cgroup hierarchy under " + root);
  }
  // The object owns whatever folders exist from here on, so an early return cleans up.
  auto cg = adopt(version, parent, id, limits, root);
  LAMBENT_TRY(cg->make(limits));
  return cg;
}

Result<void> Cgroup::make(const CgroupLimits& limits) {
  for (const auto& d : dirs_) {
    std::string parent_dir = d.substr(0, d.rfind('/'));
    if (::mkdir(parent_dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail(sys_error("creating cgroup " + parent_dir, errno));
    }
    if (version_ == CgroupVersion::kV2) {
      // Controllers must be enabled top-down for the leaf to have them.
      LAMBENT_TRY(write_text(root_ + "/cgroup.subtree_control", "+memory +pids +cpu"));
      LAMBENT_TRY(write_text(parent_dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
    }
    if (::mkdir(d.c_str(), 0755) != 0) return fail(sys_error("creating cgroup " + d, errno));
  }
  limits_.reset();
  LAMBENT_TRY(set_limits(limits));
  for (const auto& d : dirs_) {
    UniqueFd fd(::open((d + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return fail(sys_error("opening " + d + "/cgroup.procs", errno));
    procs_.push_back(std::move(fd));
  }
  return {};
}

Result<void> Cgroup::set_limits(const CgroupLimits& limits) {
  if (limits_ == limits) return {};
  limits_.reset();  // unknown until every write succeeded
  std::uint64_t weight = std::clamp<std::uint64_t>(limits.cpu_weight, 1, 10000);
  if (version_ == CgroupVersion::kV1) {
    std::string mem = dir_of("memory");
    const std::string bytes = std::to_string(limits.memory_bytes);
    // Without swap accounting there is no swap limit to set; with it, memsw
    // equal to the limit means the environment never swaps. The kernel keeps
    // limit <= memsw at every step: raising goes memsw first, lowering limit first.
    const std::string memsw = mem + "/memory.memsw.limit_in_bytes";
    const bool has_memsw = exists(memsw);
    if (has_memsw && write_text(memsw, bytes)) {
      LAMBENT_TRY(write_text(mem + "/memory.limit_in_bytes", bytes));
    } else {
      LAMBENT_TRY(write_text(mem + "/memory.limit_in_bytes", bytes));
      if (has_memsw) LAMBENT_TRY(write_text(memsw, bytes));
    }
    (void)write_text(mem + "/memory.swappiness", "0");
    LAMBENT_TRY(write_text(dir_of("pids") + "/pids.max", std::to_string(limits.max_pids)));
    std::uint64_t shares = std::clamp<std::uint64_t>(weight * 1024 / 100, 2, 262144);
    LAMBENT_TRY(write_text(dir_of("cpu") + "/cpu.shares", std::to_string(shares)));
  } else {
    const std::string& d = dirs_.front();
    LAMBENT_TRY(write_text(d + "/memory.max", std::to_string(limits.memory_bytes)));
    if (exists(d + "/memory.swap.max")) LAMBENT_TRY(write_text(d + "/memory.swap.max", "0"));
    LAMBENT_TRY(write_text(d + "/pids.max", std::to_string(limits.max_pids)));
    LAMBENT_TRY(write_text(d + "/cpu.weight", std::to_string(weight)));
  }
  limits_ = limits;
  return {};
}

Cgroup::~Cgroup() {
  kill_all();
}

std::string Cgroup::dir_of(std::string_view controller) const {
  if (version_ == CgroupVersion::kV2) return dirs_.empty() ? std::string() : dirs_.front();
  // By path, not position: try_remove() drops folders as they go.
  const std::string part = "/" + std::string(controller) + "/";
  for (const auto& d : dirs_) {
    if (d.find(part) != std::string::npos) return d;
  }
  return {};
}

bool Cgroup::oom_killed() const {
  std::string mem = dir_of("memory");
  if (mem.empty()) return false;
  if (version_ == CgroupVersion::kV2)
    return keyed_value(read_text(mem + "/memory.events"), "oom_kill") > 0;
  return keyed_value(read_text(mem + "/memory.oom_control"), "oom_kill") > 0;
}

Result<UniqueFd> Cgroup::open_peak() const {
  std::string path =
      dir_of("memory") +
      (version_ == CgroupVersion::kV2 ? "/memory.peak" : "/memory.max_usage_in_bytes");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail(sys_error("opening " + path, errno));
  return fd;
}

Result<UniqueFd> Cgroup::open_freezer() const {
  std::string dir = dir_of(version_ == CgroupVersion::kV2 ? "memory" : "freezer");
  if (dir.empty()) return fail(Errc::kUnavailable, "no freezer cgroup for this sandbox");
  std::string path = dir + (version_ == CgroupVersion::kV2 ? "/cgroup.freeze" : "/freezer.state");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return fail(sys_error("opening " + path, errno));
  return fd;
}

void Cgroup::kill_all() {
  std::string freezer = version_ == CgroupVersion::kV1 ? dir_of("freezer") : std::string();
  // The freezer folder goes last: the others' kill loops use it.
  for (const auto& d : dirs_) {
    if (d != freezer) kill_and_remove(version_, d, freezer);
  }
  if (!freezer.empty()) kill_and_remove(version_, freezer, freezer);
  procs_.clear();
  dirs_.clear();
}

bool Cgroup::try_remove() {
  std::string freezer = version_ == CgroupVersion::kV1 ? dir_of("freezer") : std::string();
  bool v2_kill = version_ == CgroupVersion::kV2;
  std::vector<std::string> left;
  for (const auto& d : dirs_) {
    auto pids = read_pids(d);
    if (pids.empty() && (::rmdir(d.c_str()) == 0 || errno == ENOENT)) continue;
    left.push_back(d);
    if (pids.empty()) continue;
    if (v2_kill) {
      (void)write_text(d + "/cgroup.kill", "1");
    } else {
      for (pid_t p : pids) ::kill(p, SIGKILL);
    }
  }
  // The freezer folder is the kill loop's tool in v1: it must go last.
  if (!freezer.empty() && left.size() > 1 && left.back() != freezer) {
    auto it = std::find(left.begin(), left.end(), freezer);
    if (it != left.end()) std::rotate(it, it + 1, left.end());
  }
  dirs_ = std::move(left);
  if (dirs_.empty()) procs_.clear();
  return dirs_.empty();
}

void Cgroup::sweep(CgroupVersion version, const std::string& parent, const std::string& root) {
  std::vector<std::string> parents;
  if (version == CgroupVersion::kV1) {
    for (const char* c : kV1Controllers)
      parents.push_back(fmt::format("{}/{}/{}", root, c, parent));
  } else if (version == CgroupVersion::kV2) {
    parents.push_back(root + "/" + parent);
  }
  std::string freezer_parent = version == CgroupVersion::kV1 ? parents.back() : std::string();
  for (const auto& p : parents) {
    DIR* dir = ::opendir(p.c_str());
    if (dir == nullptr) continue;
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') names.emplace_back(e->d_name);
    }
    ::closedir(dir);
    for (const auto& n : names) {
      std::string fz = freezer_parent.empty() ? std::string() : freezer_parent + "/" + n;
      if (!fz.empty() && !exists(fz)) fz.clear();
      kill_and_remove(version, p + "/" + n, p == freezer_parent ? p + "/" + n : fz);
    }
  }
}

void Cgroup::remove_parent(CgroupVersion version, const std::string& parent,
                           const std::string& root) {
  if (version == CgroupVersion::kV1) {
    for (const char* c : kV1Controllers) ::rmdir(fmt::format("{}/{}/{}", root, c, parent).c_str());
  } else if (version == CgroupVersion::kV2) {
    ::rmdir((root + "/" + parent).c_str());
  }
}

Result<void> cgroup_set_frozen(int fd, CgroupVersion version, bool frozen) {
  std::string_view want =
      version == CgroupVersion::kV2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
  if (::pwrite(fd, want.data(), want.size(), 0) < 0) {
    return fail(sys_error(frozen ? "freezing the environment" : "thawing the environment", errno));
  }
  if (version != CgroupVersion::kV1 || !frozen) return {};
  // v1 freezing is asynchronous (FREEZING → FROZEN); the caller expects the
  // environment to have stopped when freeze() returns.
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(2);
  char buf[32];
  while (steady_clock::now() < deadline) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), 0);
    if (n > 0 && std::string_view(buf, static_cast<size_t>(n)).starts_with("FROZEN")) return {};
    (void)::pwrite(fd, want.data(), want.size(), 0);
    std::this_thread::sleep_for(microseconds(200));
  }
  return fail(Errc::kTimeout, "the environment did not freeze within 2 s");
}

std::uint64_t cgroup_read_peak(int fd) {
  char buf[64];
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return std::strtoull(buf, nullptr, 10);
}

}  // namespace lambent::sandbox
