// tests/fakes/loopback_client.hpp — an HTTP/1.1 client that runs on the same
// io_context as the server under test, so one test thread drives both sides:
// send() queues a request, pump_until() runs the loop until the answer (or
// anything else the test waits for) has happened. No threads, no sleeps.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lambent::testing {

using namespace std::chrono_literals;

// Runs `ioc` until `done()` holds. False when `timeout` passed first (the
// timeout only bounds a broken test; passing tests never wait for it).
inline bool pump_until(boost::asio::io_context& ioc, const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (ioc.stopped()) ioc.restart();
    ioc.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 100ms));
  }
  return true;
}

// Runs every handler that is ready now, including completed socket I/O.
inline void pump_ready(boost::asio::io_context& ioc) {
  for (int i = 0; i < 64; ++i)
    if (ioc.poll() == 0) break;
}

using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

class LoopbackClient {
 public:
  LoopbackClient(boost::asio::io_context& ioc, std::uint16_t port)
      : state_(std::make_shared<State>(ioc)) {
    // A listening socket completes the handshake before the server accepts.
    state_->socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  ~LoopbackClient() {
    boost::system::error_code ignored;
    state_->socket.close(ignored);
  }
  LoopbackClient(const LoopbackClient&) = delete;
  LoopbackClient& operator=(const LoopbackClient&) = delete;

  // Queues a request with Content-Length framing.
  void send(std::string_view method, std::string_view target, std::string body = {},
            const Headers& headers = {}) {
    std::string raw;
    raw.reserve(body.size() + 256);
    raw.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (const auto& [k, v] : headers) raw.append(k).append(": ").append(v).append("\r\n");
    if (method != "GET" || !body.empty())
      raw.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    raw.append("\r\n").append(body);
    send_raw(std::move(raw));
  }

  // Queues bytes as they are (hand-made chunked bodies, trailers, …) and reads one response.
  void send_raw(std::string raw) {
    auto st = state_;
    st->response.reset();
    st->read_error = {};
    st->write_error = {};
    st->write_done = false;
    st->out = std::move(raw);
    boost::asio::async_write(st->socket, boost::asio::buffer(st->out),
                             [st](boost::system::error_code ec, std::size_t) {
                               st->write_error = ec;
                               st->write_done = true;
                             });
    st->parser.emplace();
    st->parser->body_limit(64ull << 20);
    boost::beast::http::async_read(st->socket, st->buffer, *st->parser,
                                   [st](boost::system::error_code ec, std::size_t) {
                                     if (ec) {
                                       st->read_error = ec;
                                     } else {
                                       st->response = st->parser->release();
                                     }
                                     st->read_done = true;
                                   });
    st->read_done = false;
  }

  // True once the response arrived or the connection failed.
  bool finished() const { return state_->read_done; }
  bool has_response() const { return state_->response.has_value(); }
  boost::system::error_code read_error() const { return state_->read_error; }
  boost::system::error_code write_error() const { return state_->write_error; }
  const Response& response() const { return *state_->response; }

  // send() + pump until the response arrived. The response, or nullopt when
  // the connection failed or nothing came back in time.
  std::optional<Response> request(std::string_view method, std::string_view target,
                                  std::string body = {}, const Headers& headers = {},
                                  std::chrono::milliseconds timeout = 5s) {
    send(method, target, std::move(body), headers);
    return wait(timeout);
  }
  std::optional<Response> wait(std::chrono::milliseconds timeout = 5s) {
    pump_until(
        ioc(), [this] { return finished(); }, timeout);
    return state_->response;
  }

  boost::asio::io_context& ioc() { return state_->ioc; }

 private:
  struct State {
    explicit State(boost::asio::io_context& c) : ioc(c), socket(c) {}
    boost::asio::io_context& ioc;
    boost::asio::ip::tcp::socket socket;
    boost::beast::flat_buffer buffer;
    std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser;
    std::optional<Response> response;
    std::string out;
    boost::system::error_code read_error, write_error;
    bool read_done = false, write_done = false;
  };
  std::shared_ptr<State> state_;
};

inline std::string header(const Response& res, std::string_view name) {
  const auto it = res.find(name);
  return it == res.end() ? std::string() : std::string(it->value());
}

}  // namespace lambent::testing
