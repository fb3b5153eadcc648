#include "serve.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "api/service.hpp"
#include "artifacts/artifacts.hpp"
#include "core/cpus.hpp"
#include "core/credentials.hpp"
#include "core/files.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "engine/engine.hpp"
#include "engine/placement.hpp"
#include "http/server.hpp"
#include "logs/log_store.hpp"
#include "registry/store.hpp"
#include "sandbox/spawner.hpp"

namespace lambent {

namespace fs = std::filesystem;

namespace {

// Asks an interpreter for its version (before any thread exists).
std::string probe_version(const std::string& interpreter, const char* arg) {
  const std::string cmd = fmt::format("'{}' {} 2>/dev/null", interpreter, arg);
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "unknown";
  char buf[128] = {};
  const auto n = std::fread(buf, 1, sizeof(buf) - 1, p);
  ::pclose(p);
  std::string v(buf, n);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.starts_with("Python ")) v = v.substr(7);
  if (v.starts_with("v")) v = v.substr(1);
  return v.empty() ? "unknown" : v;
}

std::string default_runtime_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      if (fs::exists(dir / "runtimes/python/bootstrap.py", ec)) return (dir / "runtimes").string();
      if (fs::exists(dir / "share/lambent/runtimes", ec))
        return (dir / "share/lambent/runtimes").string();
    }
  }
  return "/usr/share/lambent/runtimes";
}

Result<api::Credentials> load_or_create_credentials(const std::string& data_dir) {
  const std::string path = data_dir + "/credentials";
  auto key = read_credentials_file(path);
  if (!key && key.error().code == Errc::kNotFound) {
    key = create_credentials_file(path);
    if (key) LAMBENT_LOG_INFO("serve", "created an access key pair in {}", path);
  }
  if (!key) return fail(std::move(key.error()));
  return api::Credentials{key->access_key_id, key->secret_access_key};
}

}  // namespace

int serve(const ServeOptions& o) {
  log::init(o.log_level);
  const std::string data =
      o.data_dir.empty()
          ? std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/.lambent"
          : o.data_dir;
  if (auto r = make_dirs(data, 0700); !r) {
    LAMBENT_LOG_ERROR("serve", "{}", r.error().message);
    return 1;
  }
  const auto colon = o.listen.rfind(':');
  if (colon == std::string::npos) {
    LAMBENT_LOG_ERROR("serve", "--listen expects HOST:PORT, got '{}'", o.listen);
    return 2;
  }
  const std::string host = o.listen.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::stoi(o.listen.substr(colon + 1)));

  // Signals are handled by sigwait on this thread; every thread started
  // later inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // Every environment and connection holds descriptors in the daemon: take all
  // the hard limit allows (a shell's soft limit is often 1024, which 1,000 idle
  // environments exceed). Functions get Lambda's own limit in their sandbox.
  if (rlimit nofile{};
      ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0)
      LAMBENT_LOG_WARN("serve", "cannot raise the open-files limit: {}", std::strerror(errno));
  }

  engine::Settings es;
  es.region = o.region;
  es.account = o.account;
  es.runtime_root = o.runtime_dir.empty() ? default_runtime_dir() : o.runtime_dir;
  es.python = {o.python, probe_version(o.python, "--version")};
  es.node = {o.node, probe_version(o.node, "--version")};
  for (const auto& spec : o.runtime_interpreters) {
    const auto eq = spec.find('=');
    const std::string id = eq == std::string::npos ? "" : spec.substr(0, eq);
    if (id.empty() || !(id.starts_with("python3.") || id.starts_with("nodejs"))) {
      LAMBENT_LOG_ERROR(
          "serve",
          "--runtime expects RUNTIME=INTERPRETER (e.g. python3.12=/usr/bin/python3.12), got '{}'",
          spec);
      return 2;
    }
    const std::string path = spec.substr(eq + 1);
    es.interpreters[id] = {path, probe_version(path, "--version")};
  }
  es.keep_warm = std::chrono::seconds(o.keep_warm_s);
  es.init_timeout = std::chrono::seconds(o.init_timeout_s);
  es.default_egress = o.egress == "egress";
  es.freeze_idle = o.freeze_idle;
  es.queue_timeout = std::chrono::seconds(o.queue_timeout_s);

  // The spawner is forked first, while this process has a single thread.
  sandbox::SpawnerOptions so;
  if (o.isolation == "process") {
    so.isolation = sandbox::Isolation::kProcess;
  } else if (o.isolation == "namespaces") {
    so.isolation = sandbox::Isolation::kNamespaces;
  } else {
    LAMBENT_LOG_ERROR("serve", "--isolation must be namespaces or process");
    return 2;
  }
  so.state_dir = data + "/envs";
  so.default_egress = es.default_egress;
  so.pool_size = std::max(0, o.sandbox_pool);
  so.zygotes = o.zygotes;
  so.freezer = o.freeze_idle;
  so.trace_timings = o.log_level == "trace";
  auto spawner = sandbox::start_spawner(so);
  if (!spawner) {
    LAMBENT_LOG_ERROR("serve", "cannot start the sandbox spawner: {}", spawner.error().message);
    return 1;
  }
  if (so.isolation == sandbox::Isolation::kProcess)
    LAMBENT_LOG_WARN("serve",
                     "*** --isolation process: functions run as plain processes with the daemon's "
                     "privileges and can read its data folder. Use only for trusted code. ***");

  auto creds = load_or_create_credentials(data);
  if (!creds) {
    LAMBENT_LOG_ERROR("serve", "{}", creds.error().message);
    return 1;
  }
  auto store = registry::open_sqlite_store(data + "/lambent.db");
  if (!store) {
    LAMBENT_LOG_ERROR("serve", "{}", store.error().message);
    return 1;
  }
  artifacts::ArtifactStore artifacts(data, artifacts::Limits{});
  if (auto r = artifacts.remove_stale_temporaries(); !r)
    LAMBENT_LOG_WARN("serve", "{}", r.error().message);
  logs::LogStore log_store(data + "/logs", logs::Retention{});

  const int ncpus = static_cast<int>(allowed_cpus().size());
  const int nthreads = o.threads > 0 ? o.threads : std::max(1, ncpus);
  http::Shards shards(nthreads);
  // Shards sharing a CPU would count their environments apart: no placement then.
  const bool place = o.cpu_placement == "shard" && nthreads <= ncpus;
  if (o.cpu_placement == "shard" && !place)
    LAMBENT_LOG_INFO("serve", "CPU placement off: {} event loops for {} CPUs", nthreads, ncpus);
  boost::asio::thread_pool blocking(2);
  // MemorySize is a limit, not usage: by default the budget lets environments'
  // limits add up to 8x the host's memory (--memory-budget to change).
  const std::int64_t host_mb = static_cast<std::int64_t>(::sysconf(_SC_PHYS_PAGES)) *
                               ::sysconf(_SC_PAGESIZE) / (1024 * 1024);
  const std::int64_t budget_mb = o.memory_budget_mb > 0 ? o.memory_budget_mb : host_mb * 8;
  engine::EngineDeps deps{**spawner, log_store, es};
  if (place) {
    std::vector<std::vector<int>> cpus;
    for (int i = 0; i < shards.size(); ++i) cpus.push_back(shards.cpus(i));
    deps.placement = std::make_shared<engine::Placement>(std::move(cpus));
  }
  engine::Engine engine(shards, std::move(deps), o.account_concurrency, budget_mb);

  api::ApiSettings as;
  as.region = o.region;
  as.account = o.account;
  as.auth = o.auth != "none";
  as.credentials = *creds;
  as.account_concurrency = o.account_concurrency;
  as.python_version = es.python.version;
  as.node_version = es.node.version;
  for (const auto& [id, rc] : es.interpreters) as.runtime_versions[id] = rc.version;
  api::ApiService service(api::ApiDeps{**store, artifacts, engine, log_store, blocking}, as);
  if (auto r = service.load(); !r) {
    LAMBENT_LOG_ERROR("serve", "loading functions: {}", r.error().message);
    return 1;
  }

  http::Server server(
      shards,
      // Idle keep-alive connections close after 60 s (like nginx's 75 s, Node's 5 s); a
      // request head must arrive within 30 s of its first byte, and a body must not stall
      // for 30 s (nginx's client_body_timeout is 60 s); a client that stops reading its
      // response for 60 s is cut off (nginx's send_timeout is 60 s).
      http::ConnectionOptions{.header_bytes = 64 * 1024,
                              .body_bytes = 100ull * 1024 * 1024,
                              .follow_responder = true,
                              .idle_ms = 60'000,
                              .head_ms = 30'000,
                              .body_ms = 30'000,
                              .send_stall_ms = 60'000,
                              .body_budget = std::make_shared<http::BodyBudget>(
                                  static_cast<std::uint64_t>(o.body_budget_mb) << 20)},
      [&service](http::Request&& req, http::Responder res) {
        service.handle(std::move(req), std::move(res));
      },
      [&service](const http::Request& partial, std::string_view what, http::ParseFailure why) {
        return service.parse_error(partial, what, why);
      },
      [&service](const http::Request& head, std::uint64_t& body_limit) {
        return service.check_head(head, body_limit);
      });
  shards.start(/*pin_threads=*/place, std::chrono::microseconds(o.poll_us));
  engine.start();
  if (auto r = server.listen(host, port); !r) {
    LAMBENT_LOG_ERROR("serve", "{}", r.error().message);
    shards.stop();
    (*spawner)->shutdown();
    return 1;
  }
  const std::string endpoint = fmt::format("http://{}:{}", host, server.port());
  if (!as.auth)
    LAMBENT_LOG_WARN(
        "serve",
        "*** --auth none: the API accepts unsigned requests from anyone who can reach {} ***",
        endpoint);
  std::printf(
      "Lambent is serving the Lambda API on %s (data: %s, isolation: %s)\n"
      "Use it with the AWS CLI and SDKs:\n"
      "  export AWS_ENDPOINT_URL=%s AWS_DEFAULT_REGION=%s\n"
      "  export AWS_ACCESS_KEY_ID=%s\n"
      "  export AWS_SECRET_ACCESS_KEY=$(sed -n 's/^aws_secret_access_key = //p' %s/credentials)\n"
      "or simply: eval \"$(lambent env --data-dir %s)\"\n",
      endpoint.c_str(), data.c_str(), o.isolation.c_str(), endpoint.c_str(), o.region.c_str(),
      creds->access_key_id.c_str(), data.c_str(), data.c_str());
  std::fflush(stdout);
  if (!o.ready_file.empty())
    (void)write_file_atomic(o.ready_file, std::to_string(server.port()) + "\n");

  int sig = 0;
  sigwait(&sigs, &sig);
  service.drain();  // before the log line: nothing is served once it is written
  LAMBENT_LOG_INFO("serve", "signal {}: shutting down", sig);
  server.close();
  // In-flight invokes get the grace period to finish; the rest fail clearly.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.shutdown_grace_s);
  while (engine.in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  engine.stop();
  // The stopped invokes are answered (503) before the spawner kills the
  // environments, so no caller mistakes the shutdown for a function crash.
  const auto answered = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (engine.in_flight() > 0 && std::chrono::steady_clock::now() < answered)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the answers be written
  (*spawner)->shutdown();
  shards.stop();
  blocking.join();
  log_store.flush();
  LAMBENT_LOG_INFO("serve", "stopped");
  return 0;
}

}  // namespace lambent
