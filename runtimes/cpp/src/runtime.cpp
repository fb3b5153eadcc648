#include "lambent/runtime.hpp"

#include <cxxabi.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>

#include "http_client.hpp"
#include "json_escape.hpp"

namespace lambent::runtime {

std::int64_t Invocation::remaining_ms() const {
  if (deadline_ms <= 0) return 0;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);  // the deadline is wall-clock epoch ms
  const std::int64_t now_ms =
      static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
  return deadline_ms > now_ms ? deadline_ms - now_ms : 0;
}

namespace detail {
namespace {

constexpr std::string_view kApiPrefix = "/2018-06-01/runtime/";
constexpr std::string_view kNextTarget = "/2018-06-01/runtime/invocation/next";
constexpr std::string_view kErrorTypeHeader = "Lambda-Runtime-Function-Error-Type";
constexpr std::size_t kMaxRequestIdBytes = 256;
constexpr std::size_t kMaxHeaderValueBytes = 1024;

// The library's only output channel. stderr is what both Lambent and AWS capture as the
// function's log; these lines appear only when the loop is about to end.
void log_error(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  std::string line = "lambent-runtime: ";
  line.append(a).append(b).append(c).append("\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

// The id is pasted into the request path, so only URL-safe characters pass.
bool is_usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
    if (!ok) return false;
  }
  return true;
}

// A value we may put into a header line as is: visible ASCII and inner spaces, nothing that
// could end the line.
bool is_header_safe(std::string_view v) {
  if (v.empty() || v.size() > kMaxHeaderValueBytes || v.front() == ' ' || v.back() == ' ') {
    return false;
  }
  for (const char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void log_status_failure(std::string_view what, const Response& r) {
  log_error(what, " answered HTTP " + std::to_string(r.status) + ": ", r.body.substr(0, 512));
}

std::int64_t parse_deadline(std::string_view text) {
  if (text.empty() || text.size() > 18) return 0;
  std::int64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string demangled_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

// Thread-compatible: lives on run_handler's stack.
class Loop {
 public:
  explicit Loop(Endpoint endpoint) : http_(std::move(endpoint)) {
    target_.reserve(kApiPrefix.size() + 64);
    headers_.reserve(256);
    error_body_.reserve(512);
  }

  int run(void* handler, Trampoline call) {
    for (bool asked = false;; asked = true) {
      // After the first invoke, GET /next went out pipelined behind the POST (post()).
      if (!(asked ? http_.read_pipelined(next_, error_)
                  : http_.request("GET", kNextTarget, {}, {}, next_, error_))) {
        log_error("GET /runtime/invocation/next failed: ", error_.message);
        return 1;
      }
      if (next_.status != 200) {
        log_status_failure("GET /runtime/invocation/next", next_);
        return 1;
      }
      if (!is_usable_request_id(next_.request_id)) {
        log_error(next_.request_id.empty()
                      ? "/next reply has no Lambda-Runtime-Aws-Request-Id header"
                      : "/next reply has an unusable Lambda-Runtime-Aws-Request-Id");
        return 1;
      }
      const Invocation invocation{
          .payload = next_.body,
          .request_id = next_.request_id,
          .deadline_ms = parse_deadline(next_.deadline_ms),
          .function_arn = next_.function_arn,
          .client_context = next_.client_context,
          .cognito_identity = next_.cognito_identity,
          .trace_id = next_.trace_id,
          .content_type = next_.content_type,
          .tenant_id = next_.tenant_id,
      };
      if (!post_outcome(invocation.request_id, invoke(handler, call, invocation))) return 1;
    }
  }

 private:
  static Outcome invoke(void* handler, Trampoline call, const Invocation& invocation) {
    try {
      return call(handler, invocation);
    } catch (const std::exception& e) {
      return Outcome::failure(demangled_name(typeid(e)), e.what());
    } catch (...) {
      return Outcome::failure("Runtime.UnknownException",
                              "the handler threw an exception not derived from std::exception");
    }
  }

  bool post_outcome(std::string_view request_id, const Outcome& outcome) {
    target_.assign(kApiPrefix).append("invocation/").append(request_id);
    if (outcome.ok()) {
      if (!is_header_safe(outcome.content_type())) {
        return post_error(request_id, "Runtime.InvalidContentType",
                          "the handler's content type is not a valid header value");
      }
      target_.append("/response");
      headers_.assign("Content-Type: ").append(outcome.content_type()).append("\r\n");
      return post(outcome.payload());
    }
    return post_error(request_id, outcome.error_type(), outcome.error_message());
  }

  bool post_error(std::string_view request_id, std::string_view type, std::string_view message) {
    target_.assign(kApiPrefix).append("invocation/").append(request_id).append("/error");
    headers_.assign("Content-Type: application/json\r\n");
    if (is_header_safe(type)) {
      headers_.append(kErrorTypeHeader).append(": ").append(type).append("\r\n");
    }
    build_error_body(error_body_, type, message);
    return post(error_body_);
  }

  // Posts the outcome with GET /next pipelined behind it: the server answers both at once
  // when the next event is there, and the runtime is woken once per invoke.
  bool post(std::string_view body) {
    if (!http_.request_then_get("POST", target_, headers_, body, reply_, kNextTarget, error_)) {
      log_error("POST ", target_, std::string(" failed: ") + error_.message);
      return false;
    }
    if (reply_.status < 200 || reply_.status > 299) {
      log_status_failure("POST " + target_, reply_);
      return false;
    }
    return true;
  }

  HttpClient http_;
  Response next_{};
  Response reply_{};
  HttpError error_{};
  std::string target_{};
  std::string headers_{};
  std::string error_body_{};
};

bool endpoint_from(const RunOptions& options, Endpoint& endpoint) {
  std::string_view api = options.runtime_api;
  if (api.empty()) {
    const char* env = std::getenv("AWS_LAMBDA_RUNTIME_API");
    if (env == nullptr || *env == '\0') {
      log_error(
          "AWS_LAMBDA_RUNTIME_API is not set; this program is a Lambda custom runtime "
          "bootstrap and must be started by Lambent or AWS Lambda");
      return false;
    }
    api = env;
  }
  std::string error;
  if (!resolve_endpoint(api, endpoint, error)) {
    log_error("bad Runtime API address '", api, "': " + error);
    return false;
  }
  return true;
}

}  // namespace

int run_handler(void* handler, Trampoline call, const RunOptions& options) {
  Endpoint endpoint;
  if (!endpoint_from(options, endpoint)) return 1;
  Loop loop(std::move(endpoint));
  return loop.run(handler, call);
}

}  // namespace detail

bool post_init_error(std::string_view error_type, std::string_view error_message,
                     const RunOptions& options) {
  detail::Endpoint endpoint;
  if (!detail::endpoint_from(options, endpoint)) return false;
  detail::HttpClient http(std::move(endpoint));
  std::string headers = "Content-Type: application/json\r\n";
  if (detail::is_header_safe(error_type)) {
    headers.append(detail::kErrorTypeHeader).append(": ").append(error_type).append("\r\n");
  }
  std::string body;
  detail::build_error_body(body, error_type, error_message);
  detail::Response reply;
  detail::HttpError error;
  const std::string target = std::string(detail::kApiPrefix) + "init/error";
  if (!http.request("POST", target, headers, body, reply, error)) {
    detail::log_error("POST ", target, " failed: " + error.message);
    return false;
  }
  if (reply.status < 200 || reply.status > 299) {
    detail::log_status_failure("POST " + target, reply);
    return false;
  }
  return true;
}

}  // namespace lambent::runtime
