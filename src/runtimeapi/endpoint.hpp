// runtimeapi/endpoint.hpp — one environment's Runtime API 2018-06-01 endpoint.
// Owns: routing and wire shapes of /runtime/invocation/next, …/response,
// …/error and /runtime/init/error (LAMBDA-COMPAT.md §3, §10).
// Never: scheduling, timeouts, logs — those belong to the environment (engine/),
// reached through RuntimeHooks. Never parses payloads.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/fd.hpp"
#include "http/server.hpp"

namespace lambent::runtimeapi {

// RIE's MaxPayloadSize: 6 MiB + 100 bytes.
inline constexpr std::uint64_t kMaxResponseBytes = 6 * 1024 * 1024 + 100;
// Open Runtime API connections per environment. Runtime clients use one or
// two; each may buffer up to ~1 MiB of request head in the daemon, so function
// code must not be able to open them without bound (descriptors, memory).
// Connections beyond it are closed at once.
inline constexpr int kMaxConnections = 8;

// Implemented by the environment. Called on the endpoint's shard thread.
class RuntimeHooks {
 public:
  virtual ~RuntimeHooks() = default;
  // GET /next: the responder is parked until an invocation is available.
  virtual void on_next(http::Responder res) = 0;
  virtual void on_response(std::string_view request_id, std::string&& body,
                           http::Responder res) = 0;
  // error_type: Lambda-Runtime-Function-Error-Type (header or trailer), may be empty.
  virtual void on_error(std::string_view request_id, std::string_view error_type,
                        std::string&& body, http::Responder res) = 0;
  virtual void on_init_error(std::string_view error_type, std::string&& body,
                             http::Responder res) = 0;
  // A /response body exceeded kMaxResponseBytes (the runtime got 413).
  virtual void on_response_too_large(std::string_view request_id, std::uint64_t size) = 0;
};

// Everything the /next response carries besides the payload.
struct NextHeaders {
  std::string_view request_id;
  std::int64_t deadline_ms = 0;
  std::string_view invoked_function_arn;
  std::string_view trace_id;
  std::string_view client_context;    // decoded JSON; omitted when empty
  std::string_view cognito_identity;  // JSON; omitted when empty
};

// The 200 answer to GET /next. Content-Type is always application/json: the
// official clients crash without it (LAMBDA-COMPAT.md §3.5.1).
http::Response next_response(const NextHeaders& h, std::string&& payload);
// 202 {"status":"OK"}
http::Response accepted();
// RIE-shaped error: {"errorMessage": …, "errorType": …}
http::Response error_response(unsigned status, std::string_view type, std::string_view message);

// Accepts connections on the environment's listening socket and serves them
// on one shard. Thread-compatible: owned by the environment, used on its shard.
class Endpoint {
 public:
  // Holds the hooks weakly: the environment owns the endpoint, and requests
  // arriving after the environment is gone are answered 500.
  Endpoint(boost::asio::io_context& shard, UniqueFd listener, std::weak_ptr<RuntimeHooks> hooks);
  ~Endpoint();
  void start();
  void close();  // stops accepting; open connections end when the process dies

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace lambent::runtimeapi
