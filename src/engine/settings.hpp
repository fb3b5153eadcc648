// engine/settings.hpp — engine configuration, filled by the composition root.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace lambent::engine {

struct RuntimeCommand {
  std::string interpreter;  // absolute host path, visible inside sandboxes (/usr is mounted)
  std::string version;      // e.g. "3.11.2", probed at start; shown in INIT_START and GetFunction
};

struct Settings {
  std::string region = "us-east-1";
  std::string account = "000000000000";
  std::string runtime_root;  // host folder holding runtimes/python, runtimes/nodejs
  RuntimeCommand python;     // every python3.x runtime, unless overridden below
  RuntimeCommand node;       // every nodejs runtime, unless overridden below
  // Per runtime identifier (e.g. "python3.12" → /usr/bin/python3.12), from --runtime.
  std::map<std::string, RuntimeCommand> interpreters;

  const RuntimeCommand& command_for(const std::string& runtime) const {
    if (auto it = interpreters.find(runtime); it != interpreters.end()) return it->second;
    return runtime.starts_with("python") ? python : node;
  }
  std::chrono::milliseconds keep_warm{std::chrono::minutes(10)};
  std::chrono::milliseconds init_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds shutdown_grace{std::chrono::milliseconds(500)};
  bool default_egress = false;
  // Idle environments are frozen (cgroup freezer) and thawed on dispatch.
  bool freeze_idle = false;
  // Invokes waiting longer than this for an environment fail with 429.
  std::chrono::milliseconds queue_timeout{std::chrono::seconds(15)};
  std::uint64_t max_log_bytes_per_second = 1024 * 1024;  // per environment; excess is dropped
};

}  // namespace lambent::engine
