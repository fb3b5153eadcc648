// bench-limit-server — baseline (a) of warm-p50/p99: the two exchanges of a warm invoke and
// nothing else. A client's POST is handed to the runtime's parked
// `GET /2018-06-01/runtime/invocation/next`; the runtime's
// `POST .../invocation/{id}/response` body goes back to the client. No function lookup, no
// limits, no logs, one epoll loop per thread: the floor the daemon's invoke path is compared
// with. Any path that does not start with /2018-06-01/runtime/ counts as an invoke.
//
// With --threads N each thread has its own SO_REUSEPORT listener on the same port, so the
// kernel spreads clients and runtimes over the threads; a thread hands its clients' invokes
// only to its own runtimes, and nothing is shared between threads. One thread (the default)
// is the warm-p50 baseline; the throughput figure also measures as many threads as the daemon
// has event-loop threads.
//
//   bench-limit-server [--threads N] [--ready-file F]   (listens on 127.0.0.1, free port;
//   point AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT at it)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_min.hpp"

namespace {

using lambent::bench::parse_head;
using lambent::bench::RequestHead;

constexpr std::string_view kRuntimePrefix = "/2018-06-01/runtime/";
constexpr std::string_view kArn = "arn:aws:lambda:us-east-1:000000000000:function:echo";

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_pos = 0;
  bool dead = false;
};

struct Pending {
  Conn* client;
  std::string body;
};

// One event loop's state; each thread has its own.
thread_local int g_ep = -1;
thread_local std::deque<Pending> g_queue;                        // invokes no runtime has taken
thread_local std::deque<Conn*> g_parked;                         // runtimes waiting in /next
thread_local std::unordered_map<std::string, Conn*> g_inflight;  // request id -> client
thread_local unsigned long long g_next_id = 1;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void flush(Conn* c) {
  while (c->out_pos < c->out.size()) {
    const ssize_t n =
        ::send(c->fd, c->out.data() + c->out_pos, c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) {
        epoll_event ev{EPOLLIN | EPOLLOUT, {.ptr = c}};
        ::epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
      }
      c->dead = true;
      return;
    }
    c->out_pos += static_cast<std::size_t>(n);
  }
  c->out.clear();
  c->out_pos = 0;
}

// Appends a response; it leaves with the next flush().
void append_reply(Conn* c, std::string_view status, std::string_view extra_headers,
                  std::string_view body) {
  char head[512];
  const int n =
      std::snprintf(head, sizeof(head),
                    "HTTP/1.1 %.*s\r\nContent-Type: application/json\r\n%.*s"
                    "Content-Length: %zu\r\n\r\n",
                    static_cast<int>(status.size()), status.data(),
                    static_cast<int>(extra_headers.size()), extra_headers.data(), body.size());
  c->out.append(head, static_cast<std::size_t>(n));
  c->out.append(body);
}

void reply(Conn* c, std::string_view status, std::string_view extra_headers,
           std::string_view body) {
  append_reply(c, status, extra_headers, body);
  flush(c);
}

void give(Conn* runtime, Pending p) {
  const std::string id = std::to_string(g_next_id++);
  char headers[512];
  const int n = std::snprintf(headers, sizeof(headers),
                              "Lambda-Runtime-Aws-Request-Id: %s\r\n"
                              "Lambda-Runtime-Deadline-Ms: 9999999999999\r\n"
                              "Lambda-Runtime-Invoked-Function-Arn: %.*s\r\n",
                              id.c_str(), static_cast<int>(kArn.size()), kArn.data());
  g_inflight.emplace(id, p.client);
  reply(runtime, "200 OK", std::string_view(headers, static_cast<std::size_t>(n)), p.body);
}

// `pipelined`: another complete request head is already buffered behind this one.
void on_request(Conn* c, const RequestHead& h, std::string_view body, bool pipelined) {
  if (!h.target.starts_with(kRuntimePrefix)) {
    Pending p{c, std::string(body)};
    if (!g_parked.empty()) {
      Conn* rt = g_parked.front();
      g_parked.pop_front();
      give(rt, std::move(p));
    } else {
      g_queue.push_back(std::move(p));
    }
    return;
  }
  const std::string_view rest = h.target.substr(kRuntimePrefix.size());
  if (rest == "invocation/next") {
    if (!g_queue.empty()) {
      Pending p = std::move(g_queue.front());
      g_queue.pop_front();
      give(c, std::move(p));
    } else {
      g_parked.push_back(c);
    }
    return;
  }
  // invocation/{id}/response or /error
  const auto slash = rest.find('/', 11);
  const std::string id(rest.substr(11, slash - 11));
  const auto it = g_inflight.find(id);
  if (it != g_inflight.end()) {
    Conn* client = it->second;
    g_inflight.erase(it);
    if (client) reply(client, "200 OK", {}, body);
  }
  // A runtime that pipelined its GET /next gets the 202 with its next event, as from the
  // daemon (ConnectionOptions::hold_pipelined_replies).
  append_reply(c, "202 Accepted", {}, R"({"status":"OK"})");
  if (!pipelined) flush(c);
}

void on_readable(Conn* c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(c->fd, buf, sizeof(buf), 0);
    if (n == 0) {
      c->dead = true;
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN) c->dead = true;
      break;
    }
    c->in.append(buf, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < sizeof(buf)) break;
  }
  for (;;) {
    RequestHead h;
    if (!parse_head(c->in, h) || c->in.size() < h.head_size + h.content_length) break;
    const std::size_t size = h.head_size + h.content_length;
    const bool pipelined = c->in.find("\r\n\r\n", size) != std::string::npos;
    on_request(c, h, std::string_view(c->in).substr(h.head_size, h.content_length), pipelined);
    c->in.erase(0, size);
  }
}

void drop(Conn* c) {
  ::close(c->fd);
  std::erase(g_parked, c);
  std::erase_if(g_queue, [c](const Pending& p) { return p.client == c; });
  for (auto& [id, client] : g_inflight)
    if (client == c) client = nullptr;
  delete c;
}

// A listener on 127.0.0.1:port (0: a free one), sharing the port with the other threads'.
int listen_on(std::uint16_t port) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  // sockaddr_in is the sockaddr the socket API expects for AF_INET.
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) die("bind");
  if (::listen(listener, 4096) < 0) die("listen");
  return listener;
}

void run_loop(int listener) {
  const int one = 1;
  g_ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{EPOLLIN, {.ptr = nullptr}};
  ::epoll_ctl(g_ep, EPOLL_CTL_ADD, listener, &lev);
  epoll_event events[256];
  for (;;) {
    const int n = ::epoll_wait(g_ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c == nullptr) {
        for (;;) {
          const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          auto* nc = new Conn{.fd = fd};
          epoll_event ev{EPOLLIN, {.ptr = nc}};
          ::epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (events[i].events & (EPOLLERR | EPOLLHUP)) c->dead = true;
      if (!c->dead && (events[i].events & EPOLLOUT)) {
        flush(c);
        if (c->out.empty()) {
          epoll_event ev{EPOLLIN, {.ptr = c}};
          ::epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (!c->dead && (events[i].events & EPOLLIN)) on_readable(c);
      if (c->dead) drop(c);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* ready_file = nullptr;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ready-file" && i + 1 < argc) {
      ready_file = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      threads = 0;
      break;
    }
  }
  if (threads < 1) {
    std::fprintf(stderr, "usage: bench-limit-server [--threads N] [--ready-file F]\n");
    return 2;
  }
  // Every listener is bound before the port is announced, so no connection can miss a thread.
  std::vector<int> listeners{listen_on(0)};
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listeners[0], reinterpret_cast<sockaddr*>(&addr), &len);
  const std::uint16_t port = ntohs(addr.sin_port);
  while (static_cast<int>(listeners.size()) < threads) listeners.push_back(listen_on(port));
  if (ready_file) {
    const std::string tmp = std::string(ready_file) + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) die("ready file");
    std::fprintf(f, "%d\n", port);
    std::fclose(f);
    std::rename(tmp.c_str(), ready_file);
  } else {
    std::printf("%d\n", port);
    std::fflush(stdout);
  }
  std::vector<std::thread> others;
  for (std::size_t i = 1; i < listeners.size(); ++i) others.emplace_back(run_loop, listeners[i]);
  run_loop(listeners[0]);
}
