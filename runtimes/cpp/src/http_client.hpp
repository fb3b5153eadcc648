// http_client.hpp — the smallest strict HTTP/1.1 client the Runtime API needs.
// Owns: one keep-alive TCP connection and its receive buffer.
// Never: TLS, redirects, proxies, timeouts (the /next long-poll must not time out), other hosts.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace lambent::runtime::detail {

// The one owner of a socket descriptor.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Growable byte buffer that never zero-fills (unlike std::string::resize), so receiving a
// 6 MB payload costs the recv copies and nothing more. Storage is kept across invokes.
class Buffer {
 public:
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::size_t capacity() const { return capacity_; }
  // Keeps the first `keep` bytes.
  void grow_to(std::size_t capacity, std::size_t keep);

 private:
  std::unique_ptr<char[]> data_{};
  std::size_t capacity_ = 0;
};

// A parsed response. Views point into the client's receive buffer and are valid until the
// next call on the client.
struct Response {
  int status = 0;
  std::string_view body{};
  // The Runtime API headers (empty when absent).
  std::string_view request_id{};
  std::string_view deadline_ms{};
  std::string_view function_arn{};
  std::string_view trace_id{};
  std::string_view client_context{};
  std::string_view cognito_identity{};
  std::string_view content_type{};
  std::string_view tenant_id{};
};

// What went wrong, for the caller's decision and the stderr line.
struct HttpError {
  // kStale: the server closed a reused connection before sending a single byte of the
  // response — the request can be retried on a new connection.
  enum class Kind { kConnect, kStale, kIo, kProtocol };
  Kind kind = Kind::kIo;
  std::string message{};
};

struct Endpoint {
  std::string host_port{};  // the Host header value
  sockaddr_storage address{};
  socklen_t address_len = 0;
};

// Parses "host:port" / "[v6]:port" and resolves it once. Returns false with `error` set.
bool resolve_endpoint(std::string_view host_port, Endpoint& out, std::string& error);

// Thread-compatible: owned by the runtime loop.
class HttpClient {
 public:
  static constexpr std::size_t kMaxHeaderBytes = 1 << 20;
  static constexpr std::size_t kMaxBodyBytes = 64u << 20;  // far above Lambda's 6 MB

  explicit HttpClient(Endpoint endpoint);

  // Sends one request (`extra_headers` are complete "Name: value\r\n" lines) and reads the
  // response into `out`. A request on a connection the server has since closed is retried once
  // on a new connection; every other failure is returned, and closes the connection.
  bool request(std::string_view method, std::string_view target, std::string_view extra_headers,
               std::string_view body, Response& out, HttpError& error);

  // HTTP/1.1 pipelining: sends the request and `GET then_target` in one write, and reads the
  // first response into `out`. The second is read with read_pipelined(), which must be the
  // next call. Retries on a stale connection like request().
  bool request_then_get(std::string_view method, std::string_view target,
                        std::string_view extra_headers, std::string_view body, Response& out,
                        std::string_view then_target, HttpError& error);
  // The response to request_then_get's GET. If the server closed the connection after the
  // first response, the GET is sent again on a new connection.
  bool read_pipelined(Response& out, HttpError& error);

  // Number of TCP connections opened so far (tests and diagnostics).
  std::uint64_t connections_opened() const { return connections_opened_; }

 private:
  bool connect(HttpError& error);
  // Appends one request head to `out`.
  void append_head(std::string& out, std::string_view method, std::string_view target,
                   std::string_view extra_headers, std::string_view body) const;
  // Sends head_out_ then `body`, then `tail` (a pipelined request without a body).
  bool send_request(std::string_view body, std::string_view tail, HttpError& error);
  // `pipelined`: the response follows one already read, and bytes left over from that one
  // are its beginning.
  bool read_response(Response& out, HttpError& error, bool pipelined = false);
  bool read_head(std::size_t& head_end, HttpError& error);
  bool parse_head(std::size_t head_end, Response& out, std::int64_t& content_length, bool& chunked,
                  HttpError& error);
  bool read_chunked_body(std::size_t body_start, Response& out, HttpError& error);
  // Reads at least one more byte into the buffer, growing it to hold `want` bytes in total.
  // Returns 0 on EOF, -1 on error (error set), else the count.
  long fill(std::size_t want, HttpError& error);
  bool fail(HttpError& error, HttpError::Kind kind, std::string message);

  Endpoint endpoint_;
  Socket socket_{};
  bool reused_ = false;             // at least one full exchange happened on socket_
  bool close_after_ = false;        // the last response said Connection: close (or HTTP/1.0)
  std::string head_out_{};          // request head, reused
  std::string tail_out_{};          // pipelined GET head, reused
  std::string pipelined_target_{};  // request_then_get's GET target, until it is answered
  bool pipelined_pending_ = false;
  Buffer in_{};
  std::size_t in_begin_ = 0;  // first unconsumed byte (start of the next response)
  std::size_t in_end_ = 0;    // end of received bytes
  std::uint64_t connections_opened_ = 0;
};

}  // namespace lambent::runtime::detail
