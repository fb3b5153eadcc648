// http/server.hpp — HTTP/1.1 server on Boost.Beast, one event loop per shard.
// Owns: accepting, parsing (with size limits), keep-alive, TCP_NODELAY, writing
// responses from any thread. Never: Lambda semantics, routing decisions.
//
// Threading: a Shard is one io_context run by one thread; every connection
// lives on exactly one shard and all its I/O happens there. A Responder may be
// completed from any thread: it hops to the connection's shard (inline when
// already there, which is the warm invoke path's common case).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace lambent::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
// Sockets bound to a concrete io_context executor: no type-erased executor on
// the hot path, and running_in_this_thread() tells whether we are on the shard.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// The bytes of large request bodies (over kHeadCheckBytes) a server has received and not yet
// handed on, summed across its connections. Until a body is complete nobody has checked it —
// with SigV4 the signature covers it — so this bounds what clients that know an access key id
// (not a secret) can make the daemon hold. Bytes are counted as they arrive, not as declared:
// a head costs nothing until its body is sent. Thread-safe.
class BodyBudget {
 public:
  explicit BodyBudget(std::uint64_t bytes) : limit_(bytes) {}
  // Takes n more bytes for a body that holds `mine` already, if they fit — or if that body is
  // the only one counted (one body of any size at a time goes through, or a limit below the
  // largest body would refuse it for ever).
  bool take(std::uint64_t n, std::uint64_t mine = 0);
  // Whether a new body could take n bytes now (a head is refused when not).
  bool has_room(std::uint64_t n) const;
  void give(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

struct ConnectionOptions {
  std::uint32_t header_bytes = 64 * 1024;
  std::uint64_t body_bytes = 8 * 1024 * 1024;
  // A small response to a request that was pipelined ahead of another complete
  // request is held and leaves in one write with the next response. For the
  // Runtime API: Lambent's runtimes send POST /response and GET /next together
  // and read both answers in turn, so the 202 can wait for the next event and
  // the runtime is woken once per invoke instead of twice. A client that does
  // not pipeline is never made to wait.
  bool hold_pipelined_replies = false;
  // A keep-alive connection whose response was sent from another shard moves
  // there once that response is written: its next request is read on the shard
  // of the environment that served the last one, so a client that keeps calling
  // one function stops crossing threads (two wake-ups per invoke). For the
  // Lambda API.
  bool follow_responder = false;
  // For the Lambda API: a connection waiting for its next request is closed
  // after idle_ms with nothing of it received, or after head_ms once part of a
  // request head has arrived, so idle or stalled clients cannot hold
  // descriptors for ever. 0: never. Checked by a timer every few seconds, not
  // per request. A connection waiting for its response is never timed out.
  std::uint32_t idle_ms = 0;
  std::uint32_t head_ms = 0;
  // A request whose head is complete is closed after body_ms in which no byte
  // of its body arrived (a slow upload that keeps sending is never cut off; a
  // client that stops sending cannot hold the connection). 0: never.
  std::uint32_t body_ms = 0;
  // A response that the client stops taking (its receive window stays closed, or the data
  // stays unacknowledged) for send_stall_ms ends the connection: otherwise a client that
  // never reads would pin the response in memory for as long as it likes. Enforced by the
  // kernel (TCP_USER_TIMEOUT, which also covers zero-window probes). 0: never.
  std::uint32_t send_stall_ms = 0;
  // Which request header fields are stored in the Request; the others are
  // still parsed and checked, then dropped, which saves an allocation each.
  // For a server whose handlers read few fields (the Runtime API). Null: all.
  bool (*keep_field)(boost::beast::http::field name, std::string_view name_string) = nullptr;
  // Where bodies over kHeadCheckBytes are counted while they arrive; one that does not fit is
  // refused (ParseFailure::kOverBudget), from its head when the budget is full already. Null:
  // no limit but body_bytes.
  std::shared_ptr<BodyBudget> body_budget;
};

class Session;

// Completes one request. Move-only; exactly one send() per Responder. If it is
// destroyed unsent, the connection is closed (the peer sees EOF, never a hang).
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<Session> s);
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  ~Responder();

  void send(Response&& res);
  bool valid() const { return session_ != nullptr; }
  // True when the caller runs on the connection's shard thread.
  bool on_own_shard() const;
  boost::asio::io_context& context() const;

 private:
  std::shared_ptr<Session> session_;
};

// What a server does with each request. Called on the connection's shard.
using Handler = std::function<void(Request&&, Responder)>;
// Called when a request could not be parsed (over a limit, malformed); the
// handler may send an error response; the connection is closed afterwards.
// Why a request could not be read: malformed, a head over ConnectionOptions::header_bytes,
// or a body over body_bytes.
// kOverBudget: the body does not fit in ConnectionOptions::body_budget now (try again later).
enum class ParseFailure { kMalformed, kHeadTooLarge, kBodyTooLarge, kOverBudget };
using ParseErrorHandler =
    std::function<Response(const Request& partial, std::string_view what, ParseFailure why)>;

// Called when a request's head is complete and it declares a body larger than
// kHeadCheckBytes, or a chunked one, before any of that body is read. A response
// refuses the request: it is sent and the connection closed, the body never
// buffered. For what the head alone shows (credentials, a route's size limit).
// `body_limit` (the connection's body_bytes) may be lowered for this request: the
// most a chunked body, whose size the head does not say, may add up to.
using HeadCheck =
    std::function<std::optional<Response>(const Request& head, std::uint64_t& body_limit)>;
inline constexpr std::uint64_t kHeadCheckBytes = 64 * 1024;

// Deals `cpus` out to `n` shards: shard i gets cpus[j] for every j ≡ i (mod n),
// so with one shard per CPU each has its own; with more shards than CPUs they
// share them in turn. Empty `cpus`: every shard gets an empty set.
std::vector<std::vector<int>> partition_cpus(const std::vector<int>& cpus, int n);

// A set of event loops, one thread each. Thread-safe.
class Shards {
 public:
  explicit Shards(int count);
  ~Shards();
  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& at(int i) { return *contexts_[static_cast<std::size_t>(i)]; }
  // The CPUs that are shard i's (partition_cpus of allowed_cpus()): its
  // thread runs there when pinned, and so do the environments it serves.
  const std::vector<int>& cpus(int i) const { return cpus_[static_cast<std::size_t>(i)]; }
  // Index of the shard the calling thread runs, or -1.
  static int current();
  // `poll_max`: the most an idle shard busy-polls before it blocks (PollWindow; 0: never).
  void start(bool pin_threads, std::chrono::nanoseconds poll_max = {});
  void stop();  // stops the loops and joins the threads

 private:
  std::vector<std::vector<int>> cpus_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<
      std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>>
      guards_;
  std::vector<std::thread> threads_;
};

// Serves one already-connected socket until it closes. `on_close` runs once.
void serve_connection(Socket socket, const ConnectionOptions& options,
                      std::shared_ptr<const Handler> handler,
                      std::shared_ptr<const ParseErrorHandler> on_parse_error,
                      std::function<void()> on_close = {},
                      std::shared_ptr<const HeadCheck> check_head = nullptr);

// Accepts on `acceptor` until it is closed, handing each connection to
// `on_socket` on the acceptor's thread. A failed accept — out of descriptors,
// most likely: the connection stays in the backlog, so accepting again at once
// would spin on the same error — is logged (rate-limited) and retried after
// 100 ms on `backoff`. `owner` keeps the acceptor and the timer alive until
// the loop ends (at the acceptor's close, or with the timer cancelled).
void accept_loop(std::shared_ptr<void> owner, Acceptor& acceptor,
                 boost::asio::steady_timer& backoff, std::function<void(Socket)> on_socket);

// Accepts on a TCP endpoint with one SO_REUSEPORT acceptor per shard.
class Server {
 public:
  Server(Shards& shards, ConnectionOptions options, Handler handler,
         ParseErrorHandler on_parse_error, HeadCheck check_head = {});
  ~Server();
  Result<void> listen(const std::string& host, std::uint16_t port);
  std::uint16_t port() const { return port_; }
  void close();  // stops accepting; live connections finish their current request

 private:
  struct Listener;
  Shards& shards_;
  ConnectionOptions options_;
  std::shared_ptr<const Handler> handler_;
  std::shared_ptr<const ParseErrorHandler> on_parse_error_;
  std::shared_ptr<const HeadCheck> check_head_;
  std::vector<std::shared_ptr<Listener>> acceptors_;
  std::uint16_t port_ = 0;
};

// Convenience: a response with the given status, headers already set for JSON.
Response json_response(unsigned status, std::string body, bool keep_alive);

}  // namespace lambent::http
