// bench-loadgen — the load generator of `make bench`: N keep-alive HTTP/1.1 connections on one
// epoll loop, each sending its next request as soon as the previous response is complete.
// Every latency sample is kept (time from writing the request to reading the last byte of the
// response) and percentiles are taken over all of them, never averaged per connection.
//
//   bench-loadgen --port P [--host 127.0.0.1] (--path /x | --paths-file F)
//                 [--body STR | --body-file F] [--header 'K: V']... [--connections N]
//                 (--requests N | --duration S) [--warmup N] [--burst] [--samples-out F]
//                 [--timeout S]
//
// --warmup N: the first N requests are sent but not counted. --paths-file: request k uses
// line k mod lines. --burst: all connections are opened first, then every connection sends one
// request at once (requests = connections). A response counts as an error when its status is
// not 2xx or it carries X-Amz-Function-Error. Prints one JSON object on stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::vector<std::string> paths;
  std::string body = "{}";
  std::vector<std::string> headers;
  int connections = 1;
  long requests = -1;
  double duration_s = -1;
  long warmup = 0;
  bool burst = false;
  std::string samples_out;
  double timeout_s = 300;
};

struct Conn {
  int fd = -1;
  std::string in;
  std::size_t out_pos = 0;
  const std::string* request = nullptr;  // being sent / awaiting its response
  long index = -1;                       // global request number
  Clock::time_point sent;
  bool busy = false;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

enum class Parse { kIncomplete, kDone, kBad };

struct Response {
  int status = 0;
  bool close = false;
  bool function_error = false;
  std::size_t consumed = 0;
  std::string_view body;
};

// Parses one complete response at the start of `buf` (Content-Length or chunked).
Parse parse_response(std::string_view buf, Response& r, std::string& chunked_body) {
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return Parse::kIncomplete;
  r = Response{};
  std::string_view head = buf.substr(0, end);
  if (head.size() < 12 || !head.starts_with("HTTP/1.")) return Parse::kBad;
  r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::size_t content_length = 0;
  bool has_length = false, chunked = false;
  auto line_end = head.find("\r\n");
  while (line_end != std::string_view::npos) {
    head.remove_prefix(line_end + 2);
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (iequals(name, "content-length")) {
      content_length = std::strtoul(std::string(value).c_str(), nullptr, 10);
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = value.find("chunked") != std::string_view::npos;
    } else if (iequals(name, "connection")) {
      r.close = iequals(value, "close");
    } else if (iequals(name, "x-amz-function-error")) {
      r.function_error = true;
    }
  }
  const std::size_t body_start = end + 4;
  if (!chunked) {
    if (!has_length) content_length = 0;
    if (buf.size() < body_start + content_length) return Parse::kIncomplete;
    r.body = buf.substr(body_start, content_length);
    r.consumed = body_start + content_length;
    return Parse::kDone;
  }
  chunked_body.clear();
  std::size_t pos = body_start;
  for (;;) {
    const auto le = buf.find("\r\n", pos);
    if (le == std::string_view::npos) return Parse::kIncomplete;
    const std::size_t size =
        std::strtoul(std::string(buf.substr(pos, le - pos)).c_str(), nullptr, 16);
    pos = le + 2;
    if (size == 0) {
      const auto te = buf.find("\r\n", pos);  // no trailers expected
      if (te == std::string_view::npos) return Parse::kIncomplete;
      r.consumed = te + 2;
      r.body = chunked_body;
      return Parse::kDone;
    }
    if (buf.size() < pos + size + 2) return Parse::kIncomplete;
    chunked_body.append(buf.substr(pos, size));
    pos += size + 2;
  }
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<long>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp(rank, 1L, static_cast<long>(sorted.size()));
  return sorted[static_cast<std::size_t>(rank - 1)];
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bench-loadgen: %s (see the header of bench/loadgen/loadgen.cpp)\n", why);
  std::exit(2);
}

class Runner {
 public:
  explicit Runner(Options o) : o_(std::move(o)) {
    for (const auto& path : o_.paths) {
      std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + o_.host + ":" +
                        std::to_string(o_.port) +
                        "\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(o_.body.size()) + "\r\n";
      for (const auto& h : o_.headers) req += h + "\r\n";
      req += "\r\n" + o_.body;
      requests_.push_back(std::move(req));
    }
    total_ = o_.burst ? o_.connections : (o_.requests >= 0 ? o_.warmup + o_.requests : -1);
  }

  int run() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(o_.connections));
    for (auto& c : conns_)
      if (!connect(c)) return 1;
    start_ = Clock::now();
    measure_start_ = start_;
    for (auto& c : conns_) issue(c);
    const auto hard_deadline = start_ + std::chrono::duration<double>(o_.timeout_s);
    epoll_event events[512];
    while (outstanding_ > 0) {
      if (Clock::now() > hard_deadline) {
        std::fprintf(stderr, "bench-loadgen: timed out with %ld requests outstanding\n",
                     outstanding_);
        errors_ += outstanding_;
        if (first_error_.empty()) first_error_ = "timeout";
        break;
      }
      const int n = ::epoll_wait(ep_, events, 512, 1000);
      for (int i = 0; i < n; ++i)
        on_event(*static_cast<Conn*>(events[i].data.ptr), events[i].events);
    }
    report();
    return 0;
  }

 private:
  bool connect(Conn& c) {
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(o_.port));
    ::inet_pton(AF_INET, o_.host.c_str(), &addr.sin_addr);
    // sockaddr_in is the sockaddr the socket API expects for AF_INET.
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
      std::fprintf(stderr, "bench-loadgen: connect %s:%d: %s\n", o_.host.c_str(), o_.port,
                   std::strerror(errno));
      return false;
    }
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::fcntl(c.fd, F_SETFL, O_NONBLOCK);
    epoll_event ev{EPOLLIN, {.ptr = &c}};
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    c.in.clear();
    return true;
  }

  bool may_issue() const {
    if (o_.burst) return issued_ < total_;
    if (total_ >= 0) return issued_ < total_;
    if (issued_ < o_.warmup) return true;
    return Clock::now() < measure_start_ + std::chrono::duration<double>(o_.duration_s);
  }

  void issue(Conn& c) {
    if (!may_issue()) return;
    c.index = issued_++;
    if (c.index == o_.warmup) measure_start_ = Clock::now();
    c.request = &requests_[static_cast<std::size_t>(c.index) % requests_.size()];
    c.out_pos = 0;
    c.busy = true;
    ++outstanding_;
    c.sent = Clock::now();
    send_some(c);
  }

  void send_some(Conn& c) {
    while (c.out_pos < c.request->size()) {
      const ssize_t n =
          ::send(c.fd, c.request->data() + c.out_pos, c.request->size() - c.out_pos, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) {
          epoll_event ev{EPOLLIN | EPOLLOUT, {.ptr = &c}};
          ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        } else {
          fail(c, std::string("send: ") + std::strerror(errno));
        }
        return;
      }
      c.out_pos += static_cast<std::size_t>(n);
    }
  }

  void fail(Conn& c, const std::string& why) {
    if (c.busy) {
      c.busy = false;
      --outstanding_;
      if (c.index >= o_.warmup) ++errors_;
      if (first_error_.empty()) first_error_ = why;
    }
    ::close(c.fd);
    if (!connect(c)) return;
    issue(c);
  }

  void on_event(Conn& c, std::uint32_t events) {
    if (events & EPOLLOUT) {
      epoll_event ev{EPOLLIN, {.ptr = &c}};
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      send_some(c);
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n == 0) return fail(c, "connection closed by server");
      if (n < 0) {
        if (errno == EAGAIN) break;
        return fail(c, std::string("recv: ") + std::strerror(errno));
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < sizeof(buf)) break;
    }
    Response r;
    switch (parse_response(c.in, r, chunked_)) {
      case Parse::kIncomplete:
        return;
      case Parse::kBad:
        return fail(c, "unparsable response");
      case Parse::kDone:
        break;
    }
    const auto now = Clock::now();
    c.busy = false;
    --outstanding_;
    last_done_ = now;
    const bool ok = r.status >= 200 && r.status < 300 && !r.function_error;
    if (c.index >= o_.warmup) {
      if (ok) {
        samples_.push_back(std::chrono::duration<double, std::micro>(now - c.sent).count());
      } else {
        ++errors_;
        if (first_error_.empty())
          first_error_ =
              "status " + std::to_string(r.status) + ": " + std::string(r.body.substr(0, 200));
      }
    }
    c.in.erase(0, r.consumed);
    if (r.close) {
      ::close(c.fd);
      if (!connect(c)) return;
    }
    issue(c);
  }

  static std::string json_escape(std::string_view s) {
    std::string out;
    for (char ch : s) {
      if (ch == '"' || ch == '\\')
        out += '\\', out += ch;
      else if (static_cast<unsigned char>(ch) < 0x20)
        out += ' ';
      else
        out += ch;
    }
    return out;
  }

  void report() {
    if (!o_.samples_out.empty()) {
      std::ofstream f(o_.samples_out);
      for (double s : samples_) f << s << '\n';
    }
    std::vector<double> sorted = samples_;
    std::sort(sorted.begin(), sorted.end());
    double sum = 0;
    for (double s : sorted) sum += s;
    const double elapsed = std::chrono::duration<double>(last_done_ - measure_start_).count();
    const auto counted = static_cast<double>(sorted.size());
    std::printf(
        "{\"requests\":%zu,\"errors\":%ld,\"elapsed_s\":%.4f,\"rps\":%.1f,\"min_us\":%.1f,"
        "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
        "\"mean_us\":%.1f,\"first_error\":\"%s\"}\n",
        sorted.size(), errors_, elapsed, elapsed > 0 ? counted / elapsed : 0.0,
        sorted.empty() ? 0 : sorted.front(), percentile(sorted, 50), percentile(sorted, 90),
        percentile(sorted, 99), percentile(sorted, 99.9), sorted.empty() ? 0 : sorted.back(),
        sorted.empty() ? 0 : sum / counted, json_escape(first_error_).c_str());
  }

  Options o_;
  std::vector<std::string> requests_;
  std::vector<Conn> conns_;
  std::vector<double> samples_;
  std::string chunked_;
  std::string first_error_;
  int ep_ = -1;
  long issued_ = 0, outstanding_ = 0, errors_ = 0, total_ = -1;
  Clock::time_point start_, measure_start_, last_done_;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) usage(("cannot read " + path).c_str());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::atoi(next().c_str());
    else if (a == "--path")
      o.paths.push_back(next());
    else if (a == "--paths-file") {
      std::istringstream lines(read_all(next()));
      for (std::string line; std::getline(lines, line);)
        if (!line.empty()) o.paths.push_back(line);
    } else if (a == "--body")
      o.body = next();
    else if (a == "--body-file")
      o.body = read_all(next());
    else if (a == "--header")
      o.headers.push_back(next());
    else if (a == "--connections")
      o.connections = std::atoi(next().c_str());
    else if (a == "--requests")
      o.requests = std::atol(next().c_str());
    else if (a == "--duration")
      o.duration_s = std::atof(next().c_str());
    else if (a == "--warmup")
      o.warmup = std::atol(next().c_str());
    else if (a == "--burst")
      o.burst = true;
    else if (a == "--samples-out")
      o.samples_out = next();
    else if (a == "--timeout")
      o.timeout_s = std::atof(next().c_str());
    else
      usage(("unknown argument " + a).c_str());
  }
  if (o.port <= 0 || o.paths.empty() || o.connections < 1) usage("--port and --path are required");
  if (!o.burst && (o.requests < 0) == (o.duration_s < 0))
    usage("give exactly one of --requests, --duration");
  if (o.burst) o.warmup = 0;
  // Burst and density runs hold a thousand connections at once.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  return Runner(std::move(o)).run();
}
