// bench-echo-server — baseline (b) of warm-p50/p99 and throughput: a minimal keep-alive
// HTTP/1.1 server that replies 200 with the request body. One epoll loop per thread, all
// sharing one listening socket (EPOLLEXCLUSIVE), so `--threads` matches the daemon's shards.
//
//   bench-echo-server [--threads N] [--ready-file F]   (listens on 127.0.0.1, free port)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "http_min.hpp"

namespace {

using lambent::bench::parse_head;
using lambent::bench::RequestHead;

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_pos = 0;
  bool close_after = false;
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// Returns false when the connection must be dropped.
bool flush(int ep, Conn* c) {
  while (c->out_pos < c->out.size()) {
    const ssize_t n =
        ::send(c->fd, c->out.data() + c->out_pos, c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) {
        epoll_event ev{EPOLLIN | EPOLLOUT, {.ptr = c}};
        ::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return true;
      }
      return false;
    }
    c->out_pos += static_cast<std::size_t>(n);
  }
  c->out.clear();
  c->out_pos = 0;
  return !c->close_after;
}

bool on_readable(int ep, Conn* c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(c->fd, buf, sizeof(buf), 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EAGAIN) break;
      return false;
    }
    c->in.append(buf, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < sizeof(buf)) break;
  }
  for (;;) {
    RequestHead h;
    if (!parse_head(c->in, h) || c->in.size() < h.head_size + h.content_length) break;
    char head[160];
    const int hn = std::snprintf(head, sizeof(head),
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\n%s\r\n",
                                 h.content_length, h.close ? "Connection: close\r\n" : "");
    c->out.append(head, static_cast<std::size_t>(hn));
    c->out.append(c->in, h.head_size, h.content_length);
    c->close_after = c->close_after || h.close;
    c->in.erase(0, h.head_size + h.content_length);
  }
  return c->out.empty() ? true : flush(ep, c);
}

void loop(int listener) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event lev{EPOLLIN | EPOLLEXCLUSIVE, {.ptr = nullptr}};
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev) < 0) die("epoll_ctl listener");
  epoll_event events[256];
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c == nullptr) {
        for (;;) {
          const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          const int one = 1;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          auto* nc = new Conn{.fd = fd};
          epoll_event ev{EPOLLIN, {.ptr = nc}};
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      bool keep = true;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) keep = false;
      if (keep && (events[i].events & EPOLLOUT)) {
        keep = flush(ep, c);
        if (keep && c->out.empty()) {
          epoll_event ev{EPOLLIN, {.ptr = c}};
          ::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (keep && (events[i].events & EPOLLIN)) keep = on_readable(ep, c);
      if (!keep) {
        ::close(c->fd);  // also removes it from the epoll set
        delete c;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  const char* ready_file = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--ready-file" && i + 1 < argc)
      ready_file = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench-echo-server [--threads N] [--ready-file F]\n");
      return 2;
    }
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) die("bind");
  if (::listen(listener, 4096) < 0) die("listen");
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  if (ready_file) {
    const std::string tmp = std::string(ready_file) + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) die("ready file");
    std::fprintf(f, "%d\n", ntohs(addr.sin_port));
    std::fclose(f);
    std::rename(tmp.c_str(), ready_file);
  } else {
    std::printf("%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);
  }
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(loop, listener);
  loop(listener);
}
