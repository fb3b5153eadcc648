// serve.hpp — `lambent serve`: the composition root. The only place that reads
// flags and the environment and constructs components.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lambent {

struct ServeOptions {
  std::string listen = "127.0.0.1:9000";
  std::string data_dir;                  // default ~/.lambent
  std::string auth = "sigv4";            // sigv4 | none
  std::string isolation = "namespaces";  // namespaces | process
  std::string region = "us-east-1";
  std::string account = "000000000000";
  int threads = 0;                      // 0: one per CPU
  std::string cpu_placement = "shard";  // shard | off (docs/design.md, "CPU placement")
  // The most an idle shard busy-polls, 0: never (docs/design.md, "Polling before sleeping").
  int poll_us = 100;
  int keep_warm_s = 600;
  int init_timeout_s = 10;
  int shutdown_grace_s = 10;
  int account_concurrency = 1000;
  std::int64_t memory_budget_mb = 0;  // 0: 8x the host's memory
  int queue_timeout_s = 15;
  std::int64_t body_budget_mb = 512;  // Lambda API request bodies being received, in all
  std::string python = "/usr/bin/python3";
  std::string node = "/usr/bin/node";
  std::vector<std::string> runtime_interpreters;  // RUNTIME=PATH overrides (--runtime)
  std::string runtime_dir;      // default: next to the binary, or /usr/share/lambent/runtimes
  std::string egress = "none";  // none | egress (the default for functions)
  bool freeze_idle = false;     // freeze idle environments (cgroup freezer)
  int sandbox_pool = 2;         // pre-made sandboxes per kind (namespaces)
  bool zygotes = true;          // pre-started Python runtimes in the pool
  std::string public_url;       // default http://<listen>
  std::string log_level = "info";
  std::string ready_file;  // written with the port once serving (tests, scripts)
};

int serve(const ServeOptions& opts);

}  // namespace lambent
