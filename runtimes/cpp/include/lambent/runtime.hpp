// lambent/runtime.hpp — a native C++ client of the Lambda Runtime API (2018-06-01).
//
// Owns: the loop of a custom-runtime `bootstrap` — GET /runtime/invocation/next, call the
// handler, POST .../response or .../error — over one keep-alive HTTP/1.1 connection.
// Never: anything but the Runtime API. It depends on libc and libstdc++ only, so it can be
// vendored (copy runtimes/cpp) and it runs unchanged on Lambent and on AWS Lambda
// (`provided.al2023`).
//
//   #include <lambent/runtime.hpp>
//   using namespace lambent::runtime;
//   int main() {
//     return run_handler([](const Invocation& inv) {
//       return Outcome::success(std::string(inv.payload));
//     });
//   }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace lambent::runtime {

// One invocation, as read from the /next reply. Every view points into the runtime's receive
// buffer and is valid only until the handler returns (copy what must outlive the invoke).
// A header the platform did not send is an empty view.
struct Invocation {
  std::string_view payload{};
  std::string_view request_id{};        // Lambda-Runtime-Aws-Request-Id
  std::int64_t deadline_ms = 0;         // Lambda-Runtime-Deadline-Ms, Unix epoch ms; 0 if absent
  std::string_view function_arn{};      // Lambda-Runtime-Invoked-Function-Arn
  std::string_view client_context{};    // Lambda-Runtime-Client-Context (JSON)
  std::string_view cognito_identity{};  // Lambda-Runtime-Cognito-Identity (JSON)
  std::string_view trace_id{};          // Lambda-Runtime-Trace-Id (X-Ray header value)
  std::string_view content_type{};      // Content-Type of the event
  std::string_view tenant_id{};         // Lambda-Runtime-Aws-Tenant-Id

  // Milliseconds until the deadline, clamped at 0 (as Python's get_remaining_time_in_millis);
  // 0 also when the deadline header was absent or malformed.
  std::int64_t remaining_ms() const;
};

// What a handler returns: a response body, or an error that is posted to .../error as
// {"errorMessage":…,"errorType":…,"stackTrace":[]}. Thread-compatible value type.
class Outcome {
 public:
  static constexpr std::string_view kJsonContentType = "application/json";

  // Owns the body (moved in, never copied). An empty content_type means application/json,
  // which is also what the overload without one sends.
  static Outcome success(std::string payload) { return Outcome(std::move(payload), {}); }
  static Outcome success(std::string payload, std::string content_type) {
    return Outcome(std::move(payload), std::move(content_type));
  }
  // Borrows the body: zero copies. Precondition: `payload` and `content_type` stay valid until
  // the Outcome has been posted — true for views into the Invocation (e.g. an echo) and for
  // string literals; false for a local std::string of the handler.
  static Outcome success_view(std::string_view payload,
                              std::string_view content_type = kJsonContentType) {
    Outcome o;
    o.borrowed_ = payload;
    o.is_borrowed_ = true;
    o.borrowed_content_type_ = content_type;
    return o;
  }
  static Outcome failure(std::string error_type, std::string error_message) {
    Outcome o;
    o.ok_ = false;
    o.error_type_ = std::move(error_type);
    o.payload_ = std::move(error_message);
    return o;
  }

  bool ok() const { return ok_; }
  // The response body (ok()); the error message otherwise.
  std::string_view payload() const { return is_borrowed_ ? borrowed_ : payload_; }
  std::string_view content_type() const {
    if (is_borrowed_) return borrowed_content_type_;
    return content_type_.empty() ? kJsonContentType : std::string_view(content_type_);
  }
  std::string_view error_type() const { return error_type_; }
  std::string_view error_message() const { return payload_; }

 private:
  Outcome() = default;
  Outcome(std::string payload, std::string content_type)
      : payload_(std::move(payload)), content_type_(std::move(content_type)) {}

  bool ok_ = true;
  bool is_borrowed_ = false;
  std::string payload_{};  // owned body, or the error message
  std::string content_type_{};
  std::string error_type_{};
  std::string_view borrowed_{};
  std::string_view borrowed_content_type_{};
};

struct RunOptions {
  // host:port (or [v6]:port) of the Runtime API; empty ⇒ $AWS_LAMBDA_RUNTIME_API.
  std::string_view runtime_api{};
};

namespace detail {
using Trampoline = Outcome (*)(void* handler, const Invocation&);
int run_handler(void* handler, Trampoline call, const RunOptions& options);
}  // namespace detail

// Serves invocations until the Runtime API ends the loop, then returns the process exit code,
// always 1 (on AWS a healthy runtime is stopped by SIGTERM/SIGKILL and never returns):
// $AWS_LAMBDA_RUNTIME_API missing or unparsable; the connection failed and one reconnect failed
// too; /next answered anything but 200 (Lambda: "Runtime should exit promptly"; tests stop the
// loop this way); a /next reply without a URL-safe request id (the handler is not called); a
// /response or /error post answered non-2xx (aws-lambda-cpp stops its loop there too).
// Each case writes one "lambent-runtime: …" line to stderr.
// A C++ exception escaping the handler is caught and posted as an error whose errorType is the
// exception's demangled dynamic type (e.g. "std::runtime_error", as the Python and Node
// clients use the exception class name) and errorMessage its what(); anything not derived
// from std::exception is reported as errorType "Runtime.UnknownException".
// No per-invoke allocation by the runtime itself once its buffers have grown to the largest
// payload seen. No global state: each call owns its connection and buffers.
template <class Handler>
requires std::is_invocable_r_v<Outcome, Handler&, const Invocation&>
int run_handler(Handler&& handler, const RunOptions& options = {}) {
  auto call = [&handler](const Invocation& inv) -> Outcome { return handler(inv); };
  return detail::run_handler(
      &call,
      [](void* h, const Invocation& inv) -> Outcome {
        return (*static_cast<decltype(call)*>(h))(inv);
      },
      options);
}

// Reports a failed initialisation (POST /runtime/init/error with header
// Lambda-Runtime-Function-Error-Type) on a connection of its own. Returns true if the platform
// answered 2xx. The caller should then exit non-zero. Call it before run_handler, never after.
bool post_init_error(std::string_view error_type, std::string_view error_message,
                     const RunOptions& options = {});

}  // namespace lambent::runtime
