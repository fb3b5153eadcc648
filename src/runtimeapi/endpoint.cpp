#include "runtimeapi/endpoint.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <utility>

#include "core/log.hpp"

namespace lambent::runtimeapi {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kPrefix = "/2018-06-01/runtime/";

void json_escape_into(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
}

std::string_view header_or_empty(const http::Request& req, std::string_view name) {
  const auto it = req.find(name);
  return it == req.end() ? std::string_view{} : std::string_view(it->value());
}

// Splits "invocation/<id>/<verb>".
bool parse_invocation_path(std::string_view rest, std::string_view& id, std::string_view& verb) {
  constexpr std::string_view kInv = "invocation/";
  if (!rest.starts_with(kInv)) return false;
  rest.remove_prefix(kInv.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  id = rest.substr(0, slash);
  verb = rest.substr(slash + 1);
  return true;
}

// The fields route() and the parse-error answer read, and those that give the
// message its framing and keep-alive; Host, User-Agent and the rest are dropped.
bool runtime_field(bhttp::field name, std::string_view name_string) {
  switch (name) {
    case bhttp::field::connection:
    case bhttp::field::content_length:
    case bhttp::field::transfer_encoding:
      return true;
    default:
      return boost::beast::iequals(name_string, "Lambda-Runtime-Function-Error-Type");
  }
}

std::string_view strip_query(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

}  // namespace

http::Response next_response(const NextHeaders& h, std::string&& payload) {
  http::Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("Lambda-Runtime-Aws-Request-Id", h.request_id);
  res.set("Lambda-Runtime-Deadline-Ms", std::to_string(h.deadline_ms));
  res.set("Lambda-Runtime-Invoked-Function-Arn", h.invoked_function_arn);
  if (!h.trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", h.trace_id);
  if (!h.client_context.empty()) res.set("Lambda-Runtime-Client-Context", h.client_context);
  if (!h.cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", h.cognito_identity);
  res.body() = std::move(payload);
  return res;
}

http::Response accepted() {
  http::Response res{bhttp::status::accepted, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = R"({"status":"OK"})";
  return res;
}

http::Response error_response(unsigned status, std::string_view type, std::string_view message) {
  std::string body = "{\"errorMessage\":\"";
  json_escape_into(body, message);
  body += "\",\"errorType\":\"";
  json_escape_into(body, type);
  body += "\"}";
  http::Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

struct Endpoint::State : std::enable_shared_from_this<Endpoint::State> {
  State(asio::io_context& ioc, std::weak_ptr<RuntimeHooks> h)
      : acceptor(ioc.get_executor()), backoff(ioc), hooks(std::move(h)) {}

  void accept() {
    http::accept_loop(shared_from_this(), acceptor, backoff,
                      [this](http::Socket s) { serve(std::move(s)); });
  }

  void serve(http::Socket s) {
    if (connections.load(std::memory_order_relaxed) >= kMaxConnections) {
      LAMBENT_LOG_DEBUG("runtimeapi", "connection closed: {} already open", kMaxConnections);
      boost::system::error_code ignored;
      s.close(ignored);
    } else {
      connections.fetch_add(1, std::memory_order_relaxed);
      // Connections hold only a weak reference to the state: a dead
      // environment's stray connection must not keep it alive.
      std::weak_ptr<State> weak = weak_from_this();
      // Whether this connection is receiving a large body (one counted in large_bodies).
      auto large = std::make_shared<bool>(false);
      auto handler = std::make_shared<const http::Handler>(
          [weak, large](http::Request&& req, http::Responder res) {
            if (auto st = weak.lock()) {
              st->release_large(*large);
              st->route(std::move(req), std::move(res));
            } else {
              res.send(error_response(500, "InternalServerError", "Internal Server Error"));
            }
          });
      // A runtime is untrusted code: with up to kMaxConnections each receiving a 6 MiB body it
      // could make the daemon hold ~50 MB per environment, outside its memory limit. A runtime
      // answers one invocation at a time, so one large body at a time is all it needs.
      auto check_head = std::make_shared<const http::HeadCheck>(
          [weak, large](const http::Request&, std::uint64_t&) -> std::optional<http::Response> {
            auto st = weak.lock();
            if (!st || *large) return std::nullopt;
            if (int none = 0; !st->large_bodies.compare_exchange_strong(none, 1))
              return error_response(429, "TooManyRequests",
                                    "another request body of this runtime is still being "
                                    "received; send one at a time");
            *large = true;
            return std::nullopt;
          });
      auto on_parse_error = std::make_shared<const http::ParseErrorHandler>(
          [weak, large](const http::Request& partial, std::string_view what,
                        http::ParseFailure why) {
            auto st = weak.lock();
            if (st) st->release_large(*large);
            if (why == http::ParseFailure::kBodyTooLarge && st) {
              std::string_view id, verb;
              auto path = strip_query(partial.target());
              if (path.starts_with(kPrefix) &&
                  parse_invocation_path(path.substr(kPrefix.size()), id, verb) &&
                  (verb == "response" || verb == "error")) {
                // An oversized error document fails the invoke the same way: otherwise it
                // would wait for its timeout.
                // The declared size when there is one (chunked bodies have none).
                std::uint64_t size = kMaxResponseBytes + 1;
                if (auto cl = partial.find(bhttp::field::content_length); cl != partial.end())
                  size = std::strtoull(std::string(cl->value()).c_str(), nullptr, 10);
                if (auto h = st->hooks.lock()) h->on_response_too_large(id, size);
              }
              return error_response(413, "RequestEntityTooLarge",
                                    fmt::format("Exceeded maximum allowed payload size ({} bytes).",
                                                kMaxResponseBytes));
            }
            return error_response(400, "InvalidRequest", std::string(what));
          });
      // Request headers up to 1 MiB (X-Ray error cause); bodies up to the
      // response limit. A larger body is answered 413 and fails the invoke.
      // A runtime that pipelines GET /next behind its POST gets the 202 with
      // its next event (docs/design.md, "Runtime API connections").
      http::serve_connection(
          std::move(s),
          http::ConnectionOptions{.header_bytes = 1024 * 1024 + 16 * 1024,
                                  .body_bytes = kMaxResponseBytes,
                                  .hold_pipelined_replies = true,
                                  .keep_field = runtime_field},
          std::move(handler), std::move(on_parse_error),
          [weak, large] {
            if (auto st = weak.lock()) {
              st->connections.fetch_sub(1, std::memory_order_relaxed);
              st->release_large(*large);
            }
          },
          std::move(check_head));
    }
  }

  void route(http::Request&& req, http::Responder res) {
    auto hooks = this->hooks.lock();
    if (!hooks) {
      res.send(error_response(500, "InternalServerError", "Internal Server Error"));
      return;
    }
    const std::string_view path = strip_query(req.target());
    if (!path.starts_with(kPrefix)) {
      res.send(error_response(404, "NotFound", "unknown Runtime API path"));
      return;
    }
    const std::string_view rest = path.substr(kPrefix.size());
    const auto method = req.method();
    if (rest == "invocation/next") {
      if (method != bhttp::verb::get) {
        res.send(error_response(405, "MethodNotAllowed", "use GET"));
        return;
      }
      hooks->on_next(std::move(res));
      return;
    }
    if (rest == "init/error") {
      if (method != bhttp::verb::post) {
        res.send(error_response(405, "MethodNotAllowed", "use POST"));
        return;
      }
      const auto type = header_or_empty(req, "Lambda-Runtime-Function-Error-Type");
      hooks->on_init_error(type, std::move(req.body()), std::move(res));
      return;
    }
    std::string_view id, verb;
    if (parse_invocation_path(rest, id, verb) && method == bhttp::verb::post) {
      // The request id points into req's target: copy before moving the body.
      const std::string request_id(id);
      if (verb == "response") {
        hooks->on_response(request_id, std::move(req.body()), std::move(res));
        return;
      }
      if (verb == "error") {
        // Go sends the type as a (normally empty) trailer; Beast merges
        // trailers into the header fields.
        const std::string type(header_or_empty(req, "Lambda-Runtime-Function-Error-Type"));
        hooks->on_error(request_id, type, std::move(req.body()), std::move(res));
        return;
      }
    }
    res.send(error_response(404, "NotFound", "unknown Runtime API path"));
  }

  void release_large(bool& large) {
    if (std::exchange(large, false)) large_bodies.fetch_sub(1);
  }

  http::Acceptor acceptor;
  asio::steady_timer backoff;  // between failed accepts
  std::weak_ptr<RuntimeHooks> hooks;
  // Connections receiving a body over http::kHeadCheckBytes: 0 or 1 (atomic, as connections).
  std::atomic<int> large_bodies{0};
  // Open connections; the count goes down when a connection's session ends
  // (atomic: a session's last reference may go on another thread).
  std::atomic<int> connections{0};
};

Endpoint::Endpoint(asio::io_context& shard, UniqueFd listener, std::weak_ptr<RuntimeHooks> hooks)
    : state_(std::make_shared<State>(shard, std::move(hooks))) {
  boost::system::error_code ec;
  state_->acceptor.assign(tcp::v4(), listener.release(), ec);
  if (ec) LAMBENT_LOG_WARN("runtimeapi", "cannot adopt listener: {}", ec.message());
}

Endpoint::~Endpoint() {
  close();
}

void Endpoint::start() {
  state_->accept();
}

void Endpoint::close() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->backoff.cancel();
}

}  // namespace lambent::runtimeapi
