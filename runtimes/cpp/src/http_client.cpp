#include "http_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace lambent::runtime::detail {
namespace {

constexpr std::string_view kUserAgent = "lambent-runtime-cpp/0.1.0";
constexpr std::size_t kInitialBuffer = 64 * 1024;
constexpr std::size_t kMinRead = 16 * 1024;
constexpr std::size_t kMaxChunkLine = 1024;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 tchar, as a table: header names are scanned byte by byte on every invoke.
constexpr auto kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool is_token_char(char c) {
  return kTokenChars[static_cast<unsigned char>(c)];
}

// Case-insensitive compare of a header name (token characters only) with a lowercase literal
// of letters and '-': for those, OR-ing 0x20 lowercases a letter and cannot turn any other
// token character into a letter or '-'.
bool iequals_lower(std::string_view name, std::string_view lowercase) {
  if (name.size() != lowercase.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if ((name[i] | 0x20) != lowercase[i]) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Does the comma-separated Connection value list `token`?
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool parse_decimal(std::string_view s, std::int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

std::string errno_text(std::string_view what, int err) {
  std::string s(what);
  s += ": ";
  s += std::strerror(err);
  return s;
}

void rebase(std::string_view& v, const char* from, const char* to) {
  if (v.data() != nullptr && !v.empty()) v = std::string_view(to + (v.data() - from), v.size());
}

}  // namespace

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    reset(o.fd_);
    o.fd_ = -1;
  }
  return *this;
}

void Socket::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void Buffer::grow_to(std::size_t capacity, std::size_t keep) {
  if (capacity <= capacity_) return;
  // new char[] default-initialises: no zero fill, which is the point of this class.
  std::unique_ptr<char[]> grown(new char[capacity]);
  if (keep > 0) std::memcpy(grown.get(), data_.get(), keep);
  data_ = std::move(grown);
  capacity_ = capacity;
}

bool resolve_endpoint(std::string_view host_port, Endpoint& out, std::string& error) {
  std::string host;
  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos || host_port.substr(close + 1, 1) != ":") {
      error = "expected [ipv6]:port";
      return false;
    }
    host = std::string(host_port.substr(1, close - 1));
    port = host_port.substr(close + 2);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected host:port";
      return false;
    }
    host = std::string(host_port.substr(0, colon));
    port = host_port.substr(colon + 1);
  }
  std::int64_t port_number = 0;
  if (host.empty() || !parse_decimal(port, port_number) || port_number == 0 ||
      port_number > 65535) {
    error = "expected host:port with a port in 1..65535";
    return false;
  }
  // Numeric addresses (AWS: 127.0.0.1:9001) skip getaddrinfo, so a fully static bootstrap
  // never needs glibc's NSS modules at run time.
  out.host_port = std::string(host_port);
  const auto port16 = htons(static_cast<std::uint16_t>(port_number));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.address);  // sockaddr_storage fits any family
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = port16;
    out.address_len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.address);  // sockaddr_storage fits any family
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port16;
    out.address_len = sizeof(sockaddr_in6);
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text(port);
  if (const int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    error = std::string("cannot resolve '") + host + "': " + ::gai_strerror(rc);
    return false;
  }
  std::memcpy(&out.address, found->ai_addr, found->ai_addrlen);
  out.address_len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return true;
}

HttpClient::HttpClient(Endpoint endpoint) : endpoint_(std::move(endpoint)) {
  in_.grow_to(kInitialBuffer, 0);
  head_out_.reserve(512);
}

bool HttpClient::fail(HttpError& error, HttpError::Kind kind, std::string message) {
  error.kind = kind;
  error.message = std::move(message);
  socket_.reset();
  reused_ = false;
  in_begin_ = in_end_ = 0;
  return false;
}

bool HttpClient::connect(HttpError& error) {
  Socket s(::socket(endpoint_.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return fail(error, HttpError::Kind::kConnect, errno_text("socket", errno));
  // Requests are written in one sendmsg; Nagle would only delay the small ones.
  const int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc;
  do {
    rc = ::connect(s.get(),
                   reinterpret_cast<const sockaddr*>(&endpoint_.address),  // NOLINT: sockaddr API
                   endpoint_.address_len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    return fail(error, HttpError::Kind::kConnect,
                errno_text("connect to " + endpoint_.host_port, errno));
  }
  socket_ = std::move(s);
  ++connections_opened_;
  reused_ = false;
  close_after_ = false;
  in_begin_ = in_end_ = 0;
  return true;
}

bool HttpClient::request(std::string_view method, std::string_view target,
                         std::string_view extra_headers, std::string_view body, Response& out,
                         HttpError& error) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!socket_ && !connect(error)) return false;
    head_out_.clear();
    append_head(head_out_, method, target, extra_headers, body);
    if (send_request(body, {}, error) && read_response(out, error)) return true;
    if (error.kind != HttpError::Kind::kStale) return false;
  }
  return false;
}

bool HttpClient::request_then_get(std::string_view method, std::string_view target,
                                  std::string_view extra_headers, std::string_view body,
                                  Response& out, std::string_view then_target, HttpError& error) {
  pipelined_target_.assign(then_target);
  tail_out_.clear();
  append_head(tail_out_, "GET", then_target, {}, {});
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!socket_ && !connect(error)) return false;
    head_out_.clear();
    append_head(head_out_, method, target, extra_headers, body);
    pipelined_pending_ = true;
    if (send_request(body, tail_out_, error) && read_response(out, error)) return true;
    pipelined_pending_ = false;
    if (error.kind != HttpError::Kind::kStale) return false;
  }
  return false;
}

bool HttpClient::read_pipelined(Response& out, HttpError& error) {
  const bool pending = std::exchange(pipelined_pending_, false);
  // Closed after the first response (Connection: close): the GET was never served.
  if (!pending || !socket_) return request("GET", pipelined_target_, {}, {}, out, error);
  if (read_response(out, error, /*pipelined=*/true)) return true;
  // Closed before a byte of this answer (an idle timeout): asked again on a new connection.
  if (error.kind != HttpError::Kind::kStale) return false;
  return request("GET", pipelined_target_, {}, {}, out, error);
}

void HttpClient::append_head(std::string& out, std::string_view method, std::string_view target,
                             std::string_view extra_headers, std::string_view body) const {
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  out.append(endpoint_.host_port).append("\r\nUser-Agent: ").append(kUserAgent);
  out.append("\r\n").append(extra_headers);
  if (method != "GET") {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
    out.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out.append("\r\n");
}

bool HttpClient::send_request(std::string_view body, std::string_view tail, HttpError& error) {
  // Head, body and a pipelined request leave in one sendmsg when the socket buffer allows: no
  // copy of the payload into a joined buffer. MSG_NOSIGNAL: a closed peer is an error, not a
  // SIGPIPE.
  iovec parts[3] = {{head_out_.data(), head_out_.size()},
                    {const_cast<char*>(body.data()), body.size()},  // iovec is not const-correct
                    {const_cast<char*>(tail.data()), tail.size()}};
  iovec iov[3];
  int count = 0;
  for (const iovec& p : parts) {
    if (p.iov_len > 0) iov[count++] = p;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(count);
  while (msg.msg_iovlen > 0) {
    const ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      const bool stale = reused_ && (err == EPIPE || err == ECONNRESET);
      return fail(error, stale ? HttpError::Kind::kStale : HttpError::Kind::kIo,
                  errno_text("send", err));
    }
    auto left = static_cast<std::size_t>(n);
    while (msg.msg_iovlen > 0 && left >= msg.msg_iov[0].iov_len) {
      left -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + left;
      msg.msg_iov[0].iov_len -= left;
    }
  }
  return true;
}

long HttpClient::fill(std::size_t want, HttpError& error) {
  const std::size_t required = std::max(want, in_end_ + kMinRead);
  if (in_.capacity() < required) in_.grow_to(std::max(required, in_.capacity() * 2), in_end_);
  for (;;) {
    const ssize_t n = ::recv(socket_.get(), in_.data() + in_end_, in_.capacity() - in_end_, 0);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      return n;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    const int err = errno;
    // A reset before any byte of the response is the same "server closed it" case as EOF.
    const bool stale = reused_ && in_end_ == 0 && err == ECONNRESET;
    fail(error, stale ? HttpError::Kind::kStale : HttpError::Kind::kIo, errno_text("recv", err));
    return -1;
  }
}

bool HttpClient::read_head(std::size_t& head_end, HttpError& error) {
  std::size_t scanned = in_begin_;
  for (;;) {
    const std::string_view seen(in_.data() + in_begin_, in_end_ - in_begin_);
    const auto from = scanned > in_begin_ + 3 ? scanned - in_begin_ - 3 : 0;
    if (const auto end = seen.find("\r\n\r\n", from); end != std::string_view::npos) {
      head_end = in_begin_ + end + 4;
      return true;
    }
    scanned = in_end_;
    if (in_end_ - in_begin_ > kMaxHeaderBytes) {
      return fail(error, HttpError::Kind::kProtocol, "response head exceeds 1 MiB");
    }
    const long n = fill(in_end_ + 1, error);
    if (n < 0) return false;
    if (n == 0) {
      const bool stale = reused_ && in_end_ == in_begin_;
      return fail(error, stale ? HttpError::Kind::kStale : HttpError::Kind::kIo,
                  "connection closed before the response head was complete");
    }
  }
}

bool HttpClient::parse_head(std::size_t head_end, Response& out, std::int64_t& content_length,
                            bool& chunked, HttpError& error) {
  std::string_view head(in_.data() + in_begin_, head_end - in_begin_ - 2);  // keeps last CRLF
  const auto line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);

  // HTTP-version SP 3DIGIT [SP reason]
  const bool http10 = status_line.starts_with("HTTP/1.0 ");
  if (!(http10 || status_line.starts_with("HTTP/1.1 ")) || status_line.size() < 12 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return fail(error, HttpError::Kind::kProtocol,
                "malformed status line '" + std::string(status_line.substr(0, 64)) + "'");
  }
  std::int64_t status = 0;
  if (!parse_decimal(status_line.substr(9, 3), status) || status < 100) {
    return fail(error, HttpError::Kind::kProtocol, "malformed status code");
  }
  out = Response{};
  out.status = static_cast<int>(status);
  content_length = -1;
  chunked = false;
  close_after_ = http10;
  bool has_transfer_encoding = false;

  while (!head.empty()) {
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // Also rejects obs-fold continuation lines and whitespace before the colon.
    std::size_t colon = 0;
    while (colon < line.size() && is_token_char(line[colon])) ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':') {
      return fail(error, HttpError::Kind::kProtocol, "malformed header line");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return fail(error, HttpError::Kind::kProtocol, "control character in a header value");
      }
    }
    // Dispatch on the length first: most lines are decided by one integer compare.
    switch (name.size()) {
      case 10:
        if (iequals_lower(name, "connection") && has_token(value, "close")) close_after_ = true;
        continue;
      case 12:
        if (iequals_lower(name, "content-type")) out.content_type = value;
        continue;
      case 14:
        if (iequals_lower(name, "content-length")) {
          std::int64_t n = 0;
          if (!parse_decimal(value, n) || (content_length >= 0 && content_length != n)) {
            return fail(error, HttpError::Kind::kProtocol, "invalid Content-Length");
          }
          content_length = n;
        }
        continue;
      case 17:
        if (iequals_lower(name, "transfer-encoding")) {
          if (!iequals(value, "chunked") || has_transfer_encoding) {
            return fail(error, HttpError::Kind::kProtocol,
                        "unsupported Transfer-Encoding '" + std::string(value.substr(0, 64)) + "'");
          }
          has_transfer_encoding = chunked = true;
        }
        continue;
      default:
        break;
    }
    if (name.size() <= 15 || !iequals_lower(name.substr(0, 15), "lambda-runtime-")) continue;
    const std::string_view rest = name.substr(15);
    if (iequals_lower(rest, "aws-request-id"))
      out.request_id = value;
    else if (iequals_lower(rest, "deadline-ms"))
      out.deadline_ms = value;
    else if (iequals_lower(rest, "invoked-function-arn"))
      out.function_arn = value;
    else if (iequals_lower(rest, "trace-id"))
      out.trace_id = value;
    else if (iequals_lower(rest, "client-context"))
      out.client_context = value;
    else if (iequals_lower(rest, "cognito-identity"))
      out.cognito_identity = value;
    else if (iequals_lower(rest, "aws-tenant-id"))
      out.tenant_id = value;
  }
  if (chunked && content_length >= 0) {
    // RFC 9112 §6.3 lets a client ignore Content-Length here; a strict client refuses the
    // ambiguity instead, since no honest Runtime API sends both.
    return fail(error, HttpError::Kind::kProtocol, "both Content-Length and Transfer-Encoding");
  }
  if (content_length > static_cast<std::int64_t>(kMaxBodyBytes)) {
    return fail(error, HttpError::Kind::kProtocol, "response body exceeds 64 MiB");
  }
  return true;
}

bool HttpClient::read_chunked_body(std::size_t body_start, Response& out, HttpError& error) {
  // Decodes in place: chunk data is moved down over the chunk-size lines, so the body ends up
  // contiguous in the receive buffer without a second buffer. Offsets, not pointers: fill()
  // may reallocate.
  std::size_t pos = body_start;
  std::size_t write = body_start;
  auto next_line = [&](std::size_t& line_end) -> bool {
    for (;;) {
      const std::string_view seen(in_.data() + pos, in_end_ - pos);
      if (const auto eol = seen.find("\r\n"); eol != std::string_view::npos) {
        line_end = pos + eol;
        return true;
      }
      if (seen.size() > kMaxChunkLine) {
        return fail(error, HttpError::Kind::kProtocol, "chunk-size or trailer line too long");
      }
      const long n = fill(in_end_ + 1, error);
      if (n < 0) return false;
      if (n == 0) return fail(error, HttpError::Kind::kIo, "connection closed inside a chunk");
    }
  };
  for (;;) {
    std::size_t line_end = 0;
    if (!next_line(line_end)) return false;
    std::string_view size_text(in_.data() + pos, line_end - pos);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions are ignored
    std::size_t size = 0;
    const auto [ptr, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (size_text.empty() || ec != std::errc() || ptr != size_text.data() + size_text.size() ||
        size > kMaxBodyBytes - (write - body_start)) {
      return fail(error, HttpError::Kind::kProtocol, "invalid chunk size");
    }
    pos = line_end + 2;
    if (size == 0) break;
    while (in_end_ < pos + size + 2) {
      const long n = fill(pos + size + 2, error);
      if (n < 0) return false;
      if (n == 0) return fail(error, HttpError::Kind::kIo, "connection closed inside a chunk");
    }
    if (std::memcmp(in_.data() + pos + size, "\r\n", 2) != 0) {
      return fail(error, HttpError::Kind::kProtocol, "chunk data not followed by CRLF");
    }
    std::memmove(in_.data() + write, in_.data() + pos, size);
    write += size;
    pos += size + 2;
  }
  // Trailer fields until the empty line; the Runtime API defines none for responses.
  for (std::size_t trailer_bytes = 0;;) {
    std::size_t line_end = 0;
    if (!next_line(line_end)) return false;
    const bool empty = line_end == pos;
    trailer_bytes += line_end - pos + 2;
    pos = line_end + 2;
    if (empty) break;
    if (trailer_bytes > kMaxHeaderBytes) {
      return fail(error, HttpError::Kind::kProtocol, "trailers exceed 1 MiB");
    }
  }
  out.body = std::string_view(in_.data() + body_start, write - body_start);
  in_begin_ = pos;
  return true;
}

bool HttpClient::read_response(Response& out, HttpError& error, bool pipelined) {
  if (!pipelined) {
    // Without pipelining, bytes left over from the previous response were never asked for.
    // Refusing them also keeps the buffer untouched until the first recv of this response, so
    // a body borrowed from the previous one can still be re-sent after a stale-connection
    // retry.
    if (in_begin_ != in_end_) {
      return fail(error, HttpError::Kind::kProtocol, "unsolicited bytes after a response");
    }
    in_begin_ = in_end_ = 0;
  } else if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  }
  for (;;) {
    std::size_t head_end = 0;
    std::int64_t content_length = -1;
    bool chunked = false;
    if (!read_head(head_end, error)) return false;
    if (!parse_head(head_end, out, content_length, chunked, error)) return false;
    if (out.status < 200) {  // 1xx interim response: the real one follows
      in_begin_ = head_end;
      continue;
    }
    const char* const base = in_.data();
    const bool no_body = out.status == 204 || out.status == 304;
    if (no_body) {
      out.body = {};
      in_begin_ = head_end;
    } else if (chunked) {
      if (!read_chunked_body(head_end, out, error)) return false;
    } else if (content_length >= 0) {
      const std::size_t end = head_end + static_cast<std::size_t>(content_length);
      while (in_end_ < end) {
        const long n = fill(end, error);
        if (n < 0) return false;
        if (n == 0) return fail(error, HttpError::Kind::kIo, "connection closed inside the body");
      }
      out.body = std::string_view(in_.data() + head_end, end - head_end);
      in_begin_ = end;
    } else {
      // No framing: the body runs to the end of the connection (RFC 9112 §6.3 item 8).
      for (;;) {
        if (in_end_ - head_end > kMaxBodyBytes) {
          return fail(error, HttpError::Kind::kProtocol, "response body exceeds 64 MiB");
        }
        const long n = fill(in_end_ + 1, error);
        if (n < 0) return false;
        if (n == 0) break;
      }
      out.body = std::string_view(in_.data() + head_end, in_end_ - head_end);
      in_begin_ = in_end_;
      close_after_ = true;
    }
    if (in_.data() != base) {  // fill() grew the buffer under the header views
      for (std::string_view* v :
           {&out.request_id, &out.deadline_ms, &out.function_arn, &out.trace_id,
            &out.client_context, &out.cognito_identity, &out.content_type, &out.tenant_id}) {
        rebase(*v, base, in_.data());
      }
    }
    if (close_after_) {
      // Views stay valid: they point into in_, not into the socket. Leftovers are dropped.
      socket_.reset();
      reused_ = false;
      in_end_ = in_begin_;
    } else {
      reused_ = true;
    }
    return true;
  }
}

}  // namespace lambent::runtime::detail
