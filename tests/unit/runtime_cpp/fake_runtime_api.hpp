// fake_runtime_api.hpp — an in-process Runtime API server for testing runtimes/cpp.
// Hand-written HTTP on purpose: it must show exactly what the client put on the wire, and it
// must be able to misbehave (close connections, send chunked bodies, drop requests).
// One server thread, one connection at a time (the client under test uses one).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace lambent::testing {

struct RecordedRequest {
  int connection = 0;  // 1-based index of the TCP connection it arrived on
  std::string method{};
  std::string target{};
  std::string version{};
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  // Its head had arrived before the previous request was answered (HTTP pipelining).
  bool pipelined = false;

  // Case-insensitive; empty if absent.
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
    }
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.first.size() == name.size() &&
          strncasecmp(h.first.data(), name.data(), name.size()) == 0) {
        return true;
      }
    }
    return false;
  }
};

// A complete /next reply with the headers Lambda sends.
inline std::string next_reply(std::string_view request_id, std::string_view body,
                              std::string_view extra_headers = {}) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
  if (!request_id.empty()) r.append("Lambda-Runtime-Aws-Request-Id: ").append(request_id) += "\r\n";
  r.append("Lambda-Runtime-Deadline-Ms: 4102444800000\r\n");  // 2100-01-01
  r.append(
      "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:f\r\n");
  r.append("Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1\r\n");
  r.append(extra_headers);
  r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  r.append(body);
  return r;
}

// Same, with the body sent as chunks of `chunk` bytes (with an extension and a trailer).
inline std::string chunked_next_reply(std::string_view request_id, std::string_view body,
                                      std::size_t chunk) {
  std::string r = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n";
  r.append("lambda-runtime-aws-request-id: ").append(request_id) += "\r\n";
  r.append("Transfer-Encoding: chunked\r\n\r\n");
  for (std::size_t i = 0; i < body.size(); i += chunk) {
    const std::string_view part = body.substr(i, chunk);
    char size[32];
    std::snprintf(size, sizeof size, "%zX", part.size());
    r.append(size).append(i == 0 ? ";ext=1\r\n" : "\r\n").append(part).append("\r\n");
  }
  r.append("0\r\nX-Trailer: yes\r\n\r\n");
  return r;
}

class FakeRuntimeApi {
 public:
  struct Options {
    // Written in reply to each GET /next, in order; when exhausted, /next gets a 500 and the
    // server stops serving (so run_handler returns).
    std::vector<std::string> next_replies{};
    int post_status = 202;
    // 0-based indices over all requests received: after answering request i, close the
    // connection without saying so (what an idle-timeout on a server does).
    std::set<std::size_t> close_after{};
    // Requests with these indices are read and then dropped: connection closed, no reply.
    std::set<std::size_t> drop{};
  };

  explicit FakeRuntimeApi(Options options) : options_(std::move(options)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);  // the sockaddr API
    if (listen_fd_ < 0 || ::bind(listen_fd_, sa, sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0 || ::getsockname(listen_fd_, sa, &len) != 0 ||
        ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("fake runtime api: ") + std::strerror(errno));
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~FakeRuntimeApi() {
    stop();
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  FakeRuntimeApi(const FakeRuntimeApi&) = delete;
  FakeRuntimeApi& operator=(const FakeRuntimeApi&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Stops the server thread and waits for it. Idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    [[maybe_unused]] const auto n = ::write(stop_pipe_[1], "x", 1);
    thread_.join();
  }

  // Call after stop() (or after run_handler returned and the script ended).
  std::vector<RecordedRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int connections() {
    std::lock_guard lock(mutex_);
    return connections_;
  }

 private:
  // Waits for `fd` to become readable; false if stop() was called.
  bool wait_readable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0) {
      if (errno != EINTR) return false;
    }
    return (fds[1].revents & POLLIN) == 0;
  }

  void serve() {
    std::size_t next_index = 0;
    std::size_t request_index = 0;
    for (;;) {
      if (!wait_readable(listen_fd_)) return;
      const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      int connection_number;
      {
        std::lock_guard lock(mutex_);
        connection_number = ++connections_;
      }
      std::string in;
      bool open = true;
      while (open) {
        RecordedRequest req;
        const int got = read_request(conn, in, req);
        if (got < 0) {
          ::close(conn);
          return;  // stopped
        }
        if (got == 0) break;  // client closed
        req.connection = connection_number;
        const std::size_t index = request_index++;
        const bool is_next = req.method == "GET";
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(req);
        }
        if (options_.drop.contains(index)) break;
        std::string reply;
        bool finished = false;
        if (is_next) {
          if (next_index < options_.next_replies.size()) {
            reply = options_.next_replies[next_index++];
          } else {
            reply = error_reply(500, "InternalServerError");
            finished = true;
          }
        } else {
          reply = error_reply(options_.post_status, "OK");
        }
        if (!write_all(conn, reply)) break;
        if (finished) {
          ::close(conn);
          return;
        }
        if (options_.close_after.contains(index)) open = false;
      }
      ::close(conn);
    }
  }

  static std::string error_reply(int status, std::string_view what) {
    const std::string body =
        status / 100 == 2 ? std::string(R"({"status":"OK"})")
                          : R"({"errorMessage":"fake","errorType":")" + std::string(what) + "\"}";
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // 1 = a request, 0 = EOF, -1 = stopped.
  int read_request(int fd, std::string& in, RecordedRequest& req) {
    req.pipelined = in.find("\r\n\r\n") != std::string::npos;
    std::size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      const int r = read_more(fd, in);
      if (r <= 0) return r;
    }
    std::string_view head(in.data(), head_end);
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version = line.substr(sp2 + 1);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    std::size_t content_length = 0;
    while (!head.empty()) {
      const auto e = head.find("\r\n");
      const std::string_view h = head.substr(0, e);
      head.remove_prefix(e == std::string_view::npos ? head.size() : e + 2);
      const auto colon = h.find(':');
      std::string_view value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      req.headers.emplace_back(std::string(h.substr(0, colon)), std::string(value));
      if (strncasecmp(h.data(), "content-length", colon) == 0 && colon == 14) {
        content_length = std::stoul(std::string(value));
      }
    }
    in.erase(0, head_end + 4);
    while (in.size() < content_length) {
      const int r = read_more(fd, in);
      if (r <= 0) return r;
    }
    req.body = in.substr(0, content_length);
    in.erase(0, content_length);
    return 1;
  }

  int read_more(int fd, std::string& in) {
    if (!wait_readable(fd)) return -1;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return errno == EINTR ? 1 : 0;
    in.append(buf, static_cast<std::size_t>(n));
    return n == 0 ? 0 : 1;
  }

  Options options_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_{};
  std::mutex mutex_{};
  std::vector<RecordedRequest> requests_{};
  int connections_ = 0;
};

}  // namespace lambent::testing
