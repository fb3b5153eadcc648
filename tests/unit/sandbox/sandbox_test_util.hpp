// Shared helpers of the sandbox tests: a temp folder, a spawner per test and
// blocking wrappers around the asynchronous Spawner.
#pragma once

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/cpus.hpp"
#include "core/files.hpp"
#include "sandbox/spawner.hpp"

namespace lambent::sandbox::testing {

// A CPU list as /proc/<pid>/status prints it (Cpus_allowed_list): "0-2,5".
inline std::string cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

struct Spawned {
  Result<std::unique_ptr<Sandbox>> sandbox = fail(Errc::kInternal, "not spawned");
  std::shared_future<ExitStatus> exit;
};

inline Spawned spawn_sync(Spawner& spawner, SandboxSpec spec) {
  auto exit_promise = std::make_shared<std::promise<ExitStatus>>();
  std::promise<Result<std::unique_ptr<Sandbox>>> done;
  auto done_future = done.get_future();
  spawner.spawn(
      std::move(spec), [exit_promise](ExitStatus st) { exit_promise->set_value(st); },
      [&done](Result<std::unique_ptr<Sandbox>> r) { done.set_value(std::move(r)); });
  Spawned s;
  s.sandbox = done_future.get();
  s.exit = exit_promise->get_future().share();
  return s;
}

// Reads the output pipe until end of file (every writer gone) or `limit` bytes.
inline std::string read_all(int fd, std::size_t limit = 1 << 20, int timeout_ms = 10000) {
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Reads one line (without the newline).
inline std::string read_line(int fd, int timeout_ms = 10000) {
  std::string out;
  char c;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0 || c == '\n') break;
    out += c;
  }
  return out;
}

inline bool wait_exit(const Spawned& s, ExitStatus* st, int seconds = 10) {
  if (s.exit.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) return false;
  *st = s.exit.get();
  return true;
}

// Runs a spec to completion; returns its output, and its exit in *st.
inline std::string run_to_exit(Spawner& spawner, const SandboxSpec& spec, ExitStatus* st) {
  auto s = spawn_sync(spawner, spec);
  EXPECT_TRUE(s.sandbox) << s.sandbox.error().message;
  if (!s.sandbox) return {};
  UniqueFd out = (*s.sandbox)->take_output();
  std::string text = read_all(out.get());
  EXPECT_TRUE(wait_exit(s, st));
  return text;
}

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Polls a condition the kernel settles asynchronously (a killed process
// disappearing); bounded, and returns as soon as it holds.
template <class F>
bool eventually(F f, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return f();
}

// Dead = gone, or a zombie about to be reaped.
inline bool process_gone(pid_t pid) {
  std::string stat;
  auto r = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!r) return true;
  auto close = r->rfind(')');
  return close != std::string::npos && close + 2 < r->size() && (*r)[close + 2] == 'Z';
}

inline std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "lambent-sbx-XXXXXX").string();
  char* p = ::mkdtemp(tmpl.data());
  return p ? std::string(p) : std::string();
}

inline std::string test_id(int n) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%016x", static_cast<unsigned>(::getpid()), 0u, n);
  return buf;
}

}  // namespace lambent::sandbox::testing
