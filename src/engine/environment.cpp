#include "engine/environment.hpp"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/encoding.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "engine/placement.hpp"

namespace lambent::engine {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kTailBytes = 4096;
constexpr std::size_t kMaxEventBytes = 256 * 1024;  // CloudWatch's event size limit

double ms_since(SteadyTime t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGKILL:
      return "killed";
    case SIGSEGV:
      return "segmentation fault";
    case SIGABRT:
      return "aborted";
    case SIGTERM:
      return "terminated";
    case SIGBUS:
      return "bus error";
    case SIGILL:
      return "illegal instruction";
    case SIGFPE:
      return "floating point exception";
    case SIGPIPE:
      return "broken pipe";
    default:
      return fmt::format("signal {}", sig);
  }
}

}  // namespace

Environment::Environment(asio::io_context& shard, int shard_index, VersionSpec spec,
                         std::string initialization_type,
                         std::weak_ptr<EnvironmentListener> listener, EngineDeps deps)
    : shard_(shard),
      shard_index_(shard_index),
      spec_(std::move(spec)),
      initialization_type_(std::move(initialization_type)),
      listener_(std::move(listener)),
      deps_(deps),
      id_(random_hex(32)),
      output_(shard),
      timer_(shard) {
  const auto& cfg = *spec_.config;
  log_group_ = cfg.effective_log_group();
  log_stream_ = date_path(unix_ms_now()) + "/[" + cfg.version + "]" + id_;
  log_handle_ = deps_.logs.stream_handle(log_group_, log_stream_);
  if (deps_.placement) {
    deps_.placement->add(shard_index_);
    deps_.placement->working(shard_index_, +1);  // kSpawning
  }
}

Environment::~Environment() {
  if (deps_.placement) {
    deps_.placement->remove(shard_index_);
    if (working(state_)) deps_.placement->working(shard_index_, -1);
  }
  if (sandbox_) sandbox_->kill();
  if (reserved_mb_ > 0 && deps_.budget) deps_.budget->release(reserved_mb_);
}

void Environment::enter(State next) {
  if (deps_.placement && working(next) != working(state_))
    deps_.placement->working(shard_index_, working(next) ? +1 : -1);
  state_ = next;
}

sandbox::SandboxSpec Environment::build_spec() const {
  const auto& cfg = *spec_.config;
  const auto& s = deps_.settings;
  sandbox::SandboxSpec sp;
  sp.id = id_;
  sp.function_name = cfg.name;
  sp.task_root = spec_.task_root;
  sp.runtime_root = s.runtime_root;
  sp.memory_bytes = static_cast<std::uint64_t>(cfg.memory_mb) << 20;
  sp.tmp_bytes = static_cast<std::uint64_t>(cfg.ephemeral_mb) << 20;
  // Lambda gives one vCPU at 1,769 MB; weight is proportional to memory.
  sp.cpu_weight = static_cast<std::uint32_t>(std::max(1, cfg.memory_mb * 100 / 1769));
  sp.network_egress = cfg.network_egress.value_or(s.default_egress);
  const bool python = cfg.runtime.starts_with("python");
  const bool node = cfg.runtime.starts_with("nodejs");
  // Node.js is not placed: V8 collects garbage on helper threads alongside the
  // handler, and on one CPU with its shard they wait for each other (warm p99
  // 2.6-3.1 ms placed against 0.8-1.6 ms not; docs/design.md, "CPU placement").
  if (deps_.placement && !node) sp.cpus = deps_.placement->cpus_for(shard_index_, cfg.memory_mb);
  const auto layout = deps_.spawner.layout(sp);

  if (python) {
    sp.argv = {s.command_for(cfg.runtime).interpreter,
               layout.runtime_root + "/python/bootstrap.py"};
  } else if (node) {
    // As Lambda's Node.js bootstrap starts node: global.gc(), 80 KiB of HTTP headers, and a
    // V8 heap sized to the function's memory (a tenth for the young generation, half of that
    // per semi-space), so that V8 collects garbage before the cgroup's limit kills it.
    // Heap sizes a function sets itself in NODE_OPTIONS win (flags would override them).
    const int new_space_mb = cfg.memory_mb / 10;
    const auto user_options = cfg.environment.find("NODE_OPTIONS");
    const auto user_sets = [&](std::string_view flag) {
      return user_options != cfg.environment.end() &&
             user_options->second.find(flag) != std::string::npos;
    };
    sp.argv = {s.command_for(cfg.runtime).interpreter, "--expose-gc", "--max-http-header-size",
               "81920"};
    if (!user_sets("--max-semi-space-size"))
      sp.argv.push_back(fmt::format("--max-semi-space-size={}", new_space_mb / 2));
    if (!user_sets("--max-old-space-size"))
      sp.argv.push_back(fmt::format("--max-old-space-size={}", cfg.memory_mb - new_space_mb));
    sp.argv.push_back(layout.runtime_root + "/nodejs/index.mjs");
  } else {
    sp.argv = {layout.task_root + "/bootstrap"};
  }

  // Later entries win: unreserved defaults < user variables < platform
  // variables (reserved keys are rejected at configuration time). TZ is an
  // unreserved default: Lambda lists it among the variables a function may
  // set (LANG, PATH, LD_LIBRARY_PATH, NODE_PATH, PYTHONPATH, TZ).
  std::map<std::string, std::string> env = {
      {"TZ", ":UTC"},
      {"LANG", "en_US.UTF-8"},
      {"PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"},
      {"LD_LIBRARY_PATH", fmt::format("/lib64:/usr/lib64:{0}:{0}/lib:{1}:{1}/lib:/opt/lib",
                                      layout.runtime_root, layout.task_root)},
      {"TMPDIR", layout.tmp},
      {"HOME", layout.tmp},
  };
  if (node)
    env["NODE_PATH"] = "/opt/nodejs/node_modules:" + layout.runtime_root + "/nodejs/node_modules";
  for (const auto& [k, v] : cfg.environment) env[k] = v;
  env["_HANDLER"] = cfg.handler;
  env["AWS_REGION"] = s.region;
  env["AWS_DEFAULT_REGION"] = s.region;
  env["AWS_LAMBDA_FUNCTION_NAME"] = cfg.name;
  env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = std::to_string(cfg.memory_mb);
  env["AWS_LAMBDA_FUNCTION_VERSION"] = cfg.version;
  env["AWS_LAMBDA_INITIALIZATION_TYPE"] = initialization_type_;
  env["AWS_LAMBDA_LOG_GROUP_NAME"] = log_group_;
  env["AWS_LAMBDA_LOG_STREAM_NAME"] = log_stream_;
  env["LAMBDA_TASK_ROOT"] = layout.task_root;
  env["LAMBDA_RUNTIME_DIR"] = layout.runtime_root;
  if (python || node) env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + cfg.runtime;
  if (cfg.log_format == "JSON") {
    env["AWS_LAMBDA_LOG_FORMAT"] = "JSON";
    if (!cfg.application_log_level.empty()) env["AWS_LAMBDA_LOG_LEVEL"] = cfg.application_log_level;
  }
  for (auto& [k, v] : env) sp.env.push_back(k + "=" + v);
  return sp;
}

void Environment::spawn() {
  spawn_started_ = std::chrono::steady_clock::now();
  const auto& cfg = *spec_.config;
  const bool managed = cfg.runtime.starts_with("python") || cfg.runtime.starts_with("nodejs");
  if (managed) {
    const auto& rc = deps_.settings.command_for(cfg.runtime);
    platform_line(
        fmt::format("INIT_START Runtime Version: {}:{}\tRuntime Version ARN: "
                    "arn:aws:lambda:{}::runtime:lambent-{}-{}",
                    cfg.runtime.starts_with("python") ? "python" : "nodejs", rc.version,
                    deps_.settings.region, cfg.runtime, rc.version));
  } else {
    // Lambda runs /var/task/bootstrap for custom runtimes; fail early and
    // clearly when the package has none.
    const std::string bootstrap = spec_.task_root + "/bootstrap";
    if (::access(bootstrap.c_str(), X_OK) != 0) {
      const bool exists = ::access(bootstrap.c_str(), F_OK) == 0;
      enter(State::kInitializing);
      platform_init_error(
          "Runtime.InvalidEntrypoint",
          exists ? "fork/exec /var/task/bootstrap: permission denied (the file is not "
                   "executable; zip it with mode 0755)"
                 : "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]");
      asio::post(shard_, [self = shared_from_this()] {
        const std::string status = "error\tError Type: Runtime.InvalidEntrypoint";
        self->init_report(status);
        self->die(self->init_failure(status));
      });
      return;
    }
  }
  std::weak_ptr<Environment> weak = shared_from_this();
  auto& ioc = shard_;
  deps_.spawner.spawn(
      build_spec(),
      [weak, &ioc](sandbox::ExitStatus st) {
        asio::post(ioc, [weak, st] {
          if (auto self = weak.lock()) self->on_exit(st);
        });
      },
      // The environment stays alive until its sandbox is created (or not):
      // the spawn result must find it to hand over (and kill) the process.
      [self = shared_from_this(), &ioc](Result<std::unique_ptr<sandbox::Sandbox>> r) mutable {
        asio::post(ioc, [self, r = std::make_shared<decltype(r)>(std::move(r))]() mutable {
          self->on_spawned(std::move(*r));
        });
      });
}

void Environment::on_spawned(Result<std::unique_ptr<sandbox::Sandbox>> sb) {
  if (!sb) {
    LAMBENT_LOG_WARN("engine", "cannot start environment for {}: {}", spec_.config->name,
                     sb.error().message);
    platform_init_error("Sandbox.Failure", sb.error().message);
    die(init_failure("error\tError Type: Sandbox.Failure"));
    return;
  }
  sandbox_ = std::move(*sb);
  if (state_ == State::kDead) {  // shut down while spawning
    sandbox_->kill();
    return;
  }
  enter(State::kInitializing);
  auto out = sandbox_->take_output();
  if (out) {
    boost::system::error_code ec;
    output_.assign(out.release(), ec);
    if (!ec) read_output();
  }
  endpoint_ = std::make_unique<runtimeapi::Endpoint>(shard_, sandbox_->take_runtime_listener(),
                                                     weak_from_this());
  endpoint_->start();
  arm_deadline(invoke_phase_init_
                   ? std::chrono::milliseconds(std::chrono::seconds(spec_.config->timeout_s))
                   : deps_.settings.init_timeout);
}

void Environment::platform_init_error(std::string_view type, std::string detail) {
  init_error_ = error_doc(type, "Error: " + detail);
  platform_error_type_ = type;
  platform_error_detail_ = std::move(detail);
}

EnvFailure Environment::init_failure(std::string_view status) {
  EnvFailure f{init_error_, nullptr, {}};
  auto inv = std::exchange(init_for_, nullptr);
  if (!invoke_phase_init_ || !inv || !inv->done) return f;  // not for an invoke still waiting
  // The platform's own errors name the invoke, as every invoke-phase error does on Lambda.
  if (!init_reported_ && !platform_error_type_.empty())
    f.payload =
        error_doc(platform_error_type_,
                  fmt::format("RequestId: {} Error: {}", inv->request_id, platform_error_detail_));
  const double ms = ms_since(spawn_started_);
  current_ = inv;  // so that these lines reach its tail
  platform_line(
      fmt::format("START RequestId: {} Version: {}", inv->request_id, spec_.config->version));
  platform_line(fmt::format("END RequestId: {}", inv->request_id));
  platform_line(fmt::format(
      "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} "
      "MB\tMax Memory Used: {} MB\tStatus: {}\t",
      inv->request_id, ms, static_cast<std::int64_t>(std::ceil(ms)), spec_.config->memory_mb,
      sandbox_ ? (sandbox_->peak_memory_bytes() + (1 << 20) - 1) >> 20 : 0, status));
  current_.reset();
  f.invocation = std::move(inv);
  if (f.invocation->want_tail)
    f.log_tail = tail_.size() > kTailBytes ? tail_.substr(tail_.size() - kTailBytes) : tail_;
  tail_.clear();
  return f;
}

void Environment::init_report(std::string_view status) {
  platform_line(fmt::format("INIT_REPORT Init Duration: {:.2f} ms\tPhase: {}\tStatus: {}",
                            ms_since(spawn_started_), invoke_phase_init_ ? "invoke" : "init",
                            status));
}

void Environment::arm_deadline(std::chrono::milliseconds after) {
  const std::uint64_t armed = ++deadline_seq_;
  timer_.expires_after(after);
  timer_.async_wait([weak = weak_from_this(), armed](boost::system::error_code ec) {
    if (ec) return;
    auto self = weak.lock();
    // A deadline that expired as it was disarmed (its completion already queued) is stale.
    if (self && armed == self->deadline_seq_) self->on_deadline();
  });
}

void Environment::disarm_deadline() {
  ++deadline_seq_;
  timer_.cancel();
}

std::string Environment::error_doc(std::string_view type, std::string_view message) const {
  nlohmann::json j = {{"errorType", type}, {"errorMessage", message}};
  return json_text(j);  // the type may be a runtime's bytes
}

std::string Environment::exit_reason(const sandbox::ExitStatus& st) const {
  if (st.signal > 0) return "Runtime exited with error: signal: " + signal_name(st.signal);
  if (st.exit_code == 0) return "Runtime exited without providing a reason";
  return fmt::format("Runtime exited with error: exit status {}", st.exit_code);
}

// ---- Runtime API ----

void Environment::on_next(http::Responder res) {
  switch (state_) {
    case State::kInitializing:
      init_duration_ms_ = ms_since(spawn_started_);
      [[fallthrough]];
    case State::kFinishing: {
      // The init deadline, or the invoke's: work after the response counts against the
      // function's timeout, up to this /next.
      disarm_deadline();
      enter(State::kIdle);
      pending_next_ = std::move(res);
      idle_since_ = std::chrono::steady_clock::now();
      if (auto l = listener_.lock()) {
        l->on_ready(shared_from_this());
      } else {
        shutdown("function removed");
        return;
      }
      // on_ready may have handed out a waiting invocation already.
      if (state_ == State::kIdle && deps_.settings.freeze_idle && sandbox_) {
        if (auto r = sandbox_->freeze(); r) {
          frozen_ = true;
        } else {
          LAMBENT_LOG_WARN("engine", "freezing environment {}: {}", id_, r.error().message);
        }
      }
      return;
    }
    case State::kIdle:
      // A second concurrent /next: the first one stays parked.
      res.send(runtimeapi::error_response(403, "InvalidStateTransition",
                                          "State transition from Ready to Ready failed for "
                                          "runtime. Error: a /next request is already pending"));
      return;
    case State::kBusy:
      res.send(runtimeapi::error_response(
          403, "InvalidStateTransition",
          "State transition from Running to Ready failed for runtime. Error: the current "
          "invocation has not been answered (post /response or /error first)"));
      return;
    case State::kSpawning:
    case State::kDead:
      res.send(runtimeapi::error_response(500, "InternalServerError", "Internal Server Error"));
      return;
  }
}

bool Environment::start(const InvocationPtr& inv) {
  if (state_ != State::kIdle || !pending_next_.valid()) return false;
  if (frozen_) {
    frozen_ = false;
    if (auto r = sandbox_->thaw(); !r) {
      LAMBENT_LOG_WARN("engine", "thawing environment {}: {}", id_, r.error().message);
      shutdown("could not be thawed");  // the pool requeues the invocation
      return false;
    }
  }
  enter(State::kBusy);
  current_ = inv;
  tail_.clear();
  invoke_started_ = std::chrono::steady_clock::now();
  const auto& cfg = *spec_.config;
  std::chrono::milliseconds timeout = std::chrono::seconds(cfg.timeout_s);
  if (invoke_phase_init_ && first_invoke_) {
    // The init was part of this invoke: the handler has what is left of the timeout.
    const auto spent =
        std::chrono::duration_cast<std::chrono::milliseconds>(invoke_started_ - spawn_started_);
    timeout = std::max(timeout - spent, std::chrono::milliseconds(1));
  }
  const std::int64_t deadline_ms = unix_ms_now() + timeout.count();
  platform_buf_.assign("START RequestId: ");
  platform_buf_.append(inv->request_id);
  platform_buf_.append(" Version: ");
  platform_buf_.append(cfg.version);
  platform_line(platform_buf_);
  runtimeapi::NextHeaders h{inv->request_id, deadline_ms,         inv->invoked_arn,
                            inv->trace_id,   inv->client_context, inv->cognito_identity};
  // The event bytes move from the caller's request into the /next response.
  pending_next_.send(runtimeapi::next_response(h, std::move(inv->payload)));
  arm_deadline(timeout);
  return true;
}

void Environment::on_response(std::string_view request_id, std::string&& body,
                              http::Responder res) {
  if (state_ != State::kBusy || !current_ || request_id != current_->request_id) {
    res.send(runtimeapi::error_response(400, "InvalidRequestID", "Invalid request ID"));
    return;
  }
  InvokeOutcome o;
  o.payload = std::move(body);
  finish(std::move(o), {});
  // The caller's answer goes out first: it is on the invoke's critical path, the runtime's
  // 202 is not (its next GET /next is served on this shard after this handler anyway).
  res.send(runtimeapi::accepted());
}

void Environment::on_error(std::string_view request_id, std::string_view, std::string&& body,
                           http::Responder res) {
  if (state_ != State::kBusy || !current_ || request_id != current_->request_id) {
    res.send(runtimeapi::error_response(400, "InvalidRequestID", "Invalid request ID"));
    return;
  }
  InvokeOutcome o;
  // The runtime's error document goes to the caller verbatim (its keys vary by runtime).
  o.payload = body.empty() ? error_doc("Runtime.Unknown", "Unknown application error occurred")
                           : std::move(body);
  o.function_error = true;
  finish(std::move(o), {});
  res.send(runtimeapi::accepted());  // after the caller's answer, as in on_response
}

void Environment::on_init_error(std::string_view error_type, std::string&& body,
                                http::Responder res) {
  if (state_ != State::kInitializing) {
    res.send(runtimeapi::error_response(403, "InvalidStateTransition",
                                        "State transition to InitError failed: not initializing"));
    return;
  }
  res.send(runtimeapi::accepted());
  init_reported_ = true;
  init_error_type_ = error_type.empty() ? "Runtime.Unknown" : std::string(error_type);
  init_error_ = body.empty() ? error_doc(error_type.empty() ? "Runtime.Unknown" : error_type,
                                         "Unknown init error")
                             : std::move(body);
  // The runtime exits next; the exit (or the init timeout) ends the environment.
}

void Environment::on_response_too_large(std::string_view request_id, std::uint64_t size) {
  if (state_ != State::kBusy || !current_ || request_id != current_->request_id) return;
  response_too_large_ = true;
  InvokeOutcome o;
  o.function_error = true;
  o.payload = error_doc("Function.ResponseSizeTooLarge",
                        fmt::format("Response payload size ({} bytes) exceeded maximum allowed "
                                    "payload size ({} bytes).",
                                    size, runtimeapi::kMaxResponseBytes));
  finish(std::move(o), {});
}

// ---- endings ----

void Environment::finish(InvokeOutcome&& outcome, std::string_view status) {
  // The deadline keeps running until the runtime's next /next (on_next): a runtime that
  // answers and then never asks again is stopped at it, not kept Finishing for ever.
  const auto duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now() - invoke_started_)
                               .count();
  // Without a log tail to return, the caller is answered before the output is drained and
  // END/REPORT are written: those reads and lines are off the invoke's critical path. They
  // are still written before this shard serves anything else, so before the next START.
  InvocationPtr inv = current_;
  const bool answer_first = !inv->want_tail;
  if (answer_first) complete_current(std::move(outcome));
  drain_output();
  if (!line_buf_.empty()) {  // output without a final newline still belongs to this invoke
    emit_line(line_buf_);
    line_buf_.clear();
  }
  const auto& cfg = *spec_.config;
  const std::uint64_t peak_mb =
      sandbox_ ? (sandbox_->peak_memory_bytes() + (1 << 20) - 1) >> 20 : 0;
  platform_buf_.assign("END RequestId: ");
  platform_buf_.append(inv->request_id);
  platform_line(platform_buf_);
  // Written by hand (was fmt with {:.2f}): these lines are on every invoke's path.
  const auto append_int = [this](std::int64_t v) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof(digits), v);
    platform_buf_.append(digits, r.ptr);
  };
  const std::int64_t hundredths = (duration_ns + 5'000) / 10'000;  // ms, rounded to 0.01
  platform_buf_.assign("REPORT RequestId: ");
  platform_buf_.append(inv->request_id);
  platform_buf_.append("\tDuration: ");
  append_int(hundredths / 100);
  platform_buf_ += '.';
  platform_buf_ += static_cast<char>('0' + hundredths % 100 / 10);
  platform_buf_ += static_cast<char>('0' + hundredths % 10);
  platform_buf_.append(" ms\tBilled Duration: ");
  std::int64_t billed_ms = (duration_ns + 999'999) / 1'000'000;  // whole ms, rounded up
  // Lambda bills a timed-out invoke its timeout, not the time the platform took to notice.
  if (status == "timeout") billed_ms = std::min<std::int64_t>(billed_ms, cfg.timeout_s * 1000ll);
  append_int(billed_ms);
  platform_buf_.append(" ms\tMemory Size: ");
  append_int(cfg.memory_mb);
  platform_buf_.append(" MB\tMax Memory Used: ");
  append_int(static_cast<std::int64_t>(peak_mb));
  platform_buf_.append(" MB\t");
  if (first_invoke_ && initialization_type_ == "on-demand")
    fmt::format_to(std::back_inserter(platform_buf_), "Init Duration: {:.2f} ms\t",
                   init_duration_ms_);
  if (!status.empty()) {
    platform_buf_.append("Status: ");
    platform_buf_.append(status);
    platform_buf_ += '\t';
  }
  first_invoke_ = false;
  platform_line(platform_buf_);
  if (answer_first) return;
  outcome.log_tail = tail_.size() > kTailBytes ? tail_.substr(tail_.size() - kTailBytes) : tail_;
  tail_.clear();
  complete_current(std::move(outcome));
}

void Environment::complete_current(InvokeOutcome&& outcome) {
  auto done = std::move(current_);
  current_.reset();
  if (state_ == State::kBusy) {
    enter(State::kFinishing);
    if (auto l = listener_.lock()) l->on_finishing(shared_from_this());
  }
  done->complete(std::move(outcome));
}

void Environment::on_deadline() {
  if (state_ == State::kInitializing) {
    init_report("timeout");
    if (invoke_phase_init_) {
      platform_init_error("Sandbox.Timedout",
                          fmt::format("Task timed out after {:.2f} seconds",
                                      static_cast<double>(spec_.config->timeout_s)));
    } else {
      init_error_ = error_doc(
          "Sandbox.Timedout",
          fmt::format("Init timed out after {:.2f} seconds",
                      std::chrono::duration<double>(deps_.settings.init_timeout).count()));
    }
    die(init_failure("timeout"));
    return;
  }
  if (state_ == State::kFinishing) {
    // The invoke was answered; its environment is not reused (as on Lambda, where it is
    // reset at the timeout).
    shutdown("no /next within the function's timeout after its response");
    return;
  }
  if (state_ != State::kBusy || !current_) return;
  const double secs = spec_.config->timeout_s;
  platform_line(fmt::format("{} {} Task timed out after {:.2f} seconds", iso8601_ms(unix_ms_now()),
                            current_->request_id, secs));
  InvokeOutcome o;
  o.function_error = true;
  o.payload = error_doc("Sandbox.Timedout",
                        fmt::format("RequestId: {} Error: Task timed out after {:.2f} seconds",
                                    current_->request_id, secs));
  enter(State::kDead);  // never reused: finish() must not return it to the pool
  finish(std::move(o), "timeout");
  die(std::nullopt);
}

void Environment::on_exit(sandbox::ExitStatus st) {
  drain_output();
  if (state_ == State::kDead) {
    sandbox_.reset();
    return;
  }
  if (state_ == State::kBusy && current_) {
    InvokeOutcome o;
    o.function_error = true;
    if (st.oom_killed) {
      o.payload = error_doc("Runtime.OutOfMemory",
                            fmt::format("RequestId: {} Error: Runtime exited with error: signal: "
                                        "killed (out of memory: the function used more than its "
                                        "{} MB)",
                                        current_->request_id, spec_.config->memory_mb));
    } else {
      o.payload =
          error_doc("Runtime.ExitError",
                    fmt::format("RequestId: {} Error: {}", current_->request_id, exit_reason(st)));
    }
    platform_line(fmt::format("RequestId: {} Error: {}", current_->request_id, exit_reason(st)));
    enter(State::kDead);
    finish(std::move(o), st.oom_killed ? "error\tError Type: Runtime.OutOfMemory"
                                       : "error\tError Type: Runtime.ExitError");
    die(std::nullopt);
    return;
  }
  std::optional<EnvFailure> failure;
  if (state_ == State::kInitializing || state_ == State::kSpawning) {
    if (init_error_.empty()) platform_init_error("Runtime.ExitError", exit_reason(st));
    const auto status = fmt::format("error\tError Type: {}",
                                    init_reported_ ? init_error_type_ : "Runtime.ExitError");
    init_report(status);
    failure = init_failure(status);
  }
  die(std::move(failure));
}

void Environment::shutdown(std::string_view why) {
  if (state_ == State::kDead) return;
  LAMBENT_LOG_DEBUG("engine", "environment {} of {} stopping: {}", id_, spec_.config->name, why);
  for (auto* inv : {&current_, &init_for_}) {
    if (!*inv) continue;
    (*inv)->fail(
        make_error(Errc::kUnavailable,
                   "The function's execution environment was stopped: " + std::string(why)));
    inv->reset();
  }
  die(std::nullopt);
}

void Environment::die(std::optional<EnvFailure> failure) {
  enter(State::kDead);
  disarm_deadline();
  if (endpoint_) endpoint_->close();
  endpoint_.reset();
  pending_next_ = http::Responder();
  for (auto* inv : {&current_, &init_for_}) {
    if (!*inv) continue;
    (*inv)->fail(make_error(Errc::kInternal, "execution environment failed"));
    inv->reset();
  }
  if (sandbox_) sandbox_->kill();
  if (dead_reported_) return;
  dead_reported_ = true;
  if (auto l = listener_.lock()) l->on_dead(shared_from_this(), std::move(failure));
  listener_.reset();
}

// ---- output ----

void Environment::read_output() {
  output_.async_read_some(asio::buffer(out_buf_),
                          [weak = weak_from_this()](boost::system::error_code ec, std::size_t n) {
                            auto self = weak.lock();
                            if (!self) return;
                            if (n > 0) self->consume_output({self->out_buf_.data(), n});
                            if (!ec) self->read_output();
                          });
}

void Environment::drain_output() {
  // Everything the runtime wrote before its POST is already in the pipe:
  // take it now so it lands before END (non-blocking fd).
  if (!output_.is_open()) return;
  char buf[16384];
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = ::read(output_.native_handle(), buf, sizeof(buf));
    if (n <= 0) break;
    consume_output({buf, static_cast<std::size_t>(n)});
  }
}

void Environment::consume_output(std::string_view data) {
  // Rate limit: a function cannot flood the log store.
  const auto now_s = unix_ms_now() / 1000;
  if (now_s != out_window_s_) {
    if (out_dropped_ > 0) {
      const auto dropped = out_dropped_;
      out_dropped_ = 0;
      platform_line(fmt::format("[lambent] {} bytes of function output dropped: over {} bytes/s",
                                dropped, deps_.settings.max_log_bytes_per_second));
    }
    out_window_s_ = now_s;
    out_window_bytes_ = 0;
  }
  if (out_window_bytes_ + data.size() > deps_.settings.max_log_bytes_per_second) {
    out_dropped_ += data.size();
    return;
  }
  out_window_bytes_ += data.size();
  std::size_t start = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\n') continue;
    if (line_buf_.empty()) {
      emit_line(data.substr(start, i - start));
    } else {
      line_buf_.append(data.substr(start, i - start));
      emit_line(line_buf_);
      line_buf_.clear();
    }
    start = i + 1;
  }
  line_buf_.append(data.substr(start));
  if (line_buf_.size() >= kMaxEventBytes) {
    emit_line(line_buf_);
    line_buf_.clear();
  }
}

void Environment::emit_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  deps_.logs.append(log_handle_, unix_ms_now(), line);
  // During an invoke-phase init, the output is the invoke's too.
  const Invocation* inv = current_ ? current_.get() : init_for_.get();
  if (inv && inv->want_tail) {
    tail_.append(line);
    tail_ += '\n';
    if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }
}

void Environment::platform_line(std::string_view line) {
  emit_line(line);
}

}  // namespace lambent::engine
