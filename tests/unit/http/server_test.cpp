// The server writes responses itself (not through Beast's serializer): the bytes on the wire
// must be exactly what Beast wrote after prepare_payload(), for every response shape the
// daemon sends. Server and client share one io_context run by the test thread.
#include "http/server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/cpus.hpp"
#include "fakes/loopback_client.hpp"
#include "http/poll_window.hpp"

namespace lambent::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using lambent::testing::pump_ready;
using lambent::testing::pump_until;

// The responses under test, by request target.
std::map<std::string, std::function<Response()>> shapes() {
  return {
      {"/json",
       [] {
         auto r = json_response(200, R"({"a":1})", true);
         r.set("x-amzn-RequestId", "0a1b");
         r.set("X-Amz-Executed-Version", "$LATEST");
         return r;
       }},
      {"/empty",
       [] {
         return Response{bhttp::status::accepted, 11};
       }},
      {"/no-content",
       [] {
         Response r{bhttp::status::no_content, 11};
         r.set("x-amzn-RequestId", "id");
         return r;
       }},
      {"/stale-length",
       [] {
         // A Content-Length set by hand is replaced by the body's real size, moved last.
         Response r{bhttp::status::ok, 11};
         r.set(bhttp::field::content_length, "99");
         r.set(bhttp::field::content_type, "text/plain");
         r.body() = "abc";
         return r;
       }},
      {"/reason",
       [] {
         Response r{bhttp::status::not_found, 11};
         r.reason("Nope");
         r.body() = std::string(70000, 'x');  // larger than one socket write, probably
         return r;
       }},
      {"/unknown-status",
       [] {
         Response r{static_cast<bhttp::status>(599), 11};
         r.body() = "?";
         return r;
       }},
      {"/close",
       [] {
         auto r = json_response(500, "{}", false);
         r.set("X-Amz-Function-Error", "Unhandled");
         return r;
       }},
  };
}

// What Beast's own serializer writes for the same response.
std::string beast_bytes(Response r) {
  r.prepare_payload();
  std::ostringstream os;
  os << r;
  return os.str();
}

// Connects `client` to a fresh loopback listener; returns the server's end.
Socket connect_pair(asio::io_context& ioc, asio::ip::tcp::socket& client) {
  asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  client.connect(acceptor.local_endpoint());
  Socket server_side(ioc.get_executor());
  acceptor.accept(server_side);
  return server_side;
}

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    Socket server_side = connect_pair(ioc_, client_);
    auto handler = std::make_shared<const Handler>(
        [](Request&& req, Responder res) { res.send(shapes().at(std::string(req.target()))()); });
    serve_connection(std::move(server_side), ConnectionOptions{}, handler, nullptr,
                     [this] { server_closed_ = true; });
  }

  // Sends one GET and returns the raw bytes of the response (header + Content-Length body).
  std::string exchange(const std::string& target) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(client_, asio::buffer(req));
    std::string in;
    bool done = false;
    asio::async_read_until(
        client_, asio::dynamic_buffer(in), "\r\n\r\n",
        [&](boost::system::error_code ec, std::size_t header_size) {
          if (ec) {
            done = true;
            return;
          }
          const auto pos = in.find("Content-Length: ");
          const std::size_t length = pos == std::string::npos ? 0 : std::stoul(in.substr(pos + 16));
          const std::size_t total = header_size + length;
          if (in.size() >= total) {
            done = true;
            return;
          }
          asio::async_read(client_, asio::dynamic_buffer(in),
                           asio::transfer_exactly(total - in.size()),
                           [&](boost::system::error_code, std::size_t) { done = true; });
        });
    EXPECT_TRUE(pump_until(ioc_, [&] { return done; }));
    return in;
  }

  asio::io_context ioc_;
  asio::ip::tcp::socket client_{ioc_};
  bool server_closed_ = false;
};

TEST_F(ServerTest, WritesTheBytesBeastWould) {
  for (const auto& [target, make] : shapes()) {
    if (target == "/close") continue;
    SCOPED_TRACE(target);
    EXPECT_EQ(exchange(target), beast_bytes(make()));
  }
  EXPECT_FALSE(server_closed_);  // keep-alive held across all of them
}

TEST_F(ServerTest, ClosesAfterAResponseThatSaysSo) {
  EXPECT_EQ(exchange("/json"), beast_bytes(shapes().at("/json")()));
  const auto raw = exchange("/close");
  EXPECT_EQ(raw, beast_bytes(shapes().at("/close")()));
  EXPECT_NE(raw.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(pump_until(ioc_, [&] { return server_closed_; }));
}

TEST_F(ServerTest, ClosesWhenTheRequestAskedForIt) {
  const std::string req = "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(client_, asio::buffer(req));
  std::string in;
  bool eof = false;
  // Reads until the server closes the connection.
  asio::async_read(client_, asio::dynamic_buffer(in),
                   [&](boost::system::error_code, std::size_t) { eof = true; });
  ASSERT_TRUE(pump_until(ioc_, [&] { return eof; }));
  auto expected = shapes().at("/json")();
  expected.keep_alive(false);
  EXPECT_EQ(in, beast_bytes(std::move(expected)));
}

// ConnectionOptions::hold_pipelined_replies (the Runtime API's POST /response
// + GET /next): "/now" is answered at once, "/park" when the test says so.
class HoldTest : public ::testing::Test {
 protected:
  HoldTest() {
    Socket server_side = connect_pair(ioc_, client_);
    auto handler = std::make_shared<const Handler>([this](Request&& req, Responder res) {
      if (req.target() == "/park") {
        parked_.emplace(std::move(res));
      } else {
        res.send(json_response(202, R"({"status":"OK"})", true));
      }
    });
    serve_connection(std::move(server_side), ConnectionOptions{.hold_pipelined_replies = true},
                     handler, nullptr);
  }

  // Everything the server has written so far (the client never blocks).
  std::string received() {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (std::size_t n = client_.available(ec)) {
      out.append(buf, client_.read_some(asio::buffer(buf, std::min(n, sizeof buf)), ec));
    }
    return out;
  }

  // Pumps until the server has written at least `n` bytes; returns what it wrote.
  std::string receive(std::size_t n) {
    std::string in;
    EXPECT_TRUE(pump_until(ioc_, [&] {
      in += received();
      return in.size() >= n;
    }));
    return in;
  }

  // The bytes of "/now"'s answer.
  static std::string accepted() {
    return beast_bytes(json_response(202, R"({"status":"OK"})", true));
  }

  static constexpr std::string_view kNowRequest =
      "POST /now HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 2\r\n\r\n{}";
  static constexpr std::string_view kParkRequest = "GET /park HTTP/1.1\r\nHost: x\r\n\r\n";

  asio::io_context ioc_;
  asio::ip::tcp::socket client_{ioc_};
  std::optional<Responder> parked_;
};

TEST_F(HoldTest, AReplyWithAPipelinedRequestBehindItLeavesWithTheNextReply) {
  asio::write(client_, asio::buffer(std::string(kNowRequest) + std::string(kParkRequest)));
  ASSERT_TRUE(pump_until(ioc_, [&] { return parked_.has_value(); }));
  pump_ready(ioc_);
  EXPECT_EQ(received(), "");  // the 202 waits for the parked request's answer
  auto event = json_response(200, R"({"event":1})", true);
  const std::string expected = accepted() + beast_bytes(event);
  parked_->send(std::move(event));
  EXPECT_EQ(receive(expected.size()), expected);
}

TEST_F(HoldTest, AReplyWithNothingBehindItIsNotHeld) {
  asio::write(client_, asio::buffer(kNowRequest));
  EXPECT_EQ(receive(accepted().size()), accepted());
}

TEST_F(HoldTest, AHeldReplyStillLeavesWhenTheConnectionIsDropped) {
  asio::write(client_, asio::buffer(std::string(kNowRequest) + std::string(kParkRequest)));
  ASSERT_TRUE(pump_until(ioc_, [&] { return parked_.has_value(); }));
  parked_.reset();  // unsent: the server closes the connection
  std::string in;
  bool eof = false;
  asio::async_read(client_, asio::dynamic_buffer(in),
                   [&](boost::system::error_code, std::size_t) { eof = true; });
  ASSERT_TRUE(pump_until(ioc_, [&] { return eof; }));
  EXPECT_EQ(in, accepted());
}

// ConnectionOptions::idle_ms / head_ms (the Lambda API): a connection waiting
// too long for a request is closed; one that is served or waits for its
// response is not.
// Expect: 100-continue (RFC 9110 §10.1.1): curl waits a second for the interim answer before
// it sends a body over 1 MiB, as a client or as a shell runtime's POST /response.
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

TEST_F(HoldTest, AClientThatExpectsContinueGetsItBeforeSendingItsBody) {
  asio::write(client_, asio::buffer(std::string_view(
                           "POST /now HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                           "Content-Length: 2\r\n\r\n")));
  EXPECT_EQ(receive(kContinue.size()), kContinue);
  asio::write(client_, asio::buffer(std::string_view("{}")));
  EXPECT_EQ(receive(accepted().size()), accepted());
}

TEST_F(HoldTest, AHeldReplyLeavesBeforeTheNextRequestsContinue) {
  asio::write(client_, asio::buffer(std::string(kNowRequest) +
                                    "POST /park HTTP/1.1\r\nHost: x\r\n"
                                    "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  const std::string first = accepted() + std::string(kContinue);
  EXPECT_EQ(receive(first.size()), first);
  asio::write(client_, asio::buffer(std::string_view("{}")));
  ASSERT_TRUE(pump_until(ioc_, [&] { return parked_.has_value(); }));
  auto event = json_response(200, R"({"event":1})", true);
  const std::string expected = beast_bytes(event);
  parked_->send(std::move(event));
  EXPECT_EQ(receive(expected.size()), expected);
}

TEST_F(HoldTest, NoContinueForHttp10OrABodilessRequest) {
  asio::write(client_,
              asio::buffer(std::string_view("POST /now HTTP/1.0\r\nConnection: keep-alive\r\n"
                                            "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"
                                            "POST /now HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")));
  const std::string expected = accepted() + accepted();  // and no interim answer before either
  EXPECT_EQ(receive(expected.size()), expected);
}

class TimeoutTest : public ::testing::Test {
 protected:
  void serve(std::uint32_t idle_ms, std::uint32_t head_ms, std::uint32_t body_ms = 0) {
    Socket server_side = connect_pair(ioc_, client_);
    auto handler = std::make_shared<const Handler>([this](Request&& req, Responder res) {
      bodies_.push_back(req.body());
      if (req.target() == "/park") {
        parked_.emplace(std::move(res));
      } else {
        res.send(json_response(200, "{}", true));
      }
    });
    serve_connection(std::move(server_side),
                     ConnectionOptions{.idle_ms = idle_ms, .head_ms = head_ms, .body_ms = body_ms},
                     handler, nullptr, [this] { closed_ = true; });
  }
  // Runs the loop for `ms`, or until the server has closed the connection.
  bool closed_within(int ms) {
    pump_until(
        ioc_, [&] { return closed_; }, std::chrono::milliseconds(ms));
    return closed_;
  }

  asio::io_context ioc_;
  asio::ip::tcp::socket client_{ioc_};
  std::optional<Responder> parked_;
  std::vector<std::string> bodies_;  // of the requests handled
  bool closed_ = false;
};

TEST_F(TimeoutTest, AHeadStartedAfterALongIdleGetsItsOwnHeadMs) {
  // head_ms counts from the head's first byte: after 1.5 s idle (idle_ms 60 s), a head sent
  // in two parts 0.7 s apart (head_ms 1 s; a sweep every 0.5 s sees the first part) is served.
  serve(60'000, 1'000);
  ASSERT_FALSE(closed_within(1500));
  asio::write(client_, asio::buffer(std::string_view("GET /a HTTP/1.1\r\n")));
  ASSERT_FALSE(closed_within(700));
  asio::write(client_, asio::buffer(std::string_view("Host: x\r\n\r\n")));
  pump_until(
      ioc_, [&] { return !bodies_.empty(); }, std::chrono::milliseconds(3000));
  EXPECT_EQ(bodies_.size(), 1u);
  EXPECT_FALSE(closed_);
}

TEST_F(TimeoutTest, AClientThatStopsReadingItsResponseIsCutOffAfterSendStallMs) {
  Socket server_side = connect_pair(ioc_, client_);
  const int small = 4096;  // the client's window closes after a few KB
  ::setsockopt(client_.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  auto handler = std::make_shared<const Handler>([](Request&&, Responder res) {
    res.send(json_response(200, std::string(32 << 20, 'x'), true));
  });
  serve_connection(std::move(server_side), ConnectionOptions{.send_stall_ms = 500}, handler,
                   nullptr, [this] { closed_ = true; });
  asio::write(client_, asio::buffer(std::string_view("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")));
  // The client never reads: the 32 MB response cannot leave, and the connection (and the
  // response it holds) goes after the stall.
  EXPECT_TRUE(closed_within(15'000));
}

TEST_F(TimeoutTest, AnIdleConnectionIsClosedAfterIdleMs) {
  serve(200, 0);
  EXPECT_TRUE(closed_within(3000));
}

TEST_F(TimeoutTest, AnUnfinishedHeadIsClosedAfterHeadMsThoughIdleIsLonger) {
  serve(60'000, 200);
  asio::write(client_, asio::buffer(std::string_view("GET /a HTTP/1.1\r\nHost: x\r\n")));
  EXPECT_TRUE(closed_within(3000));
}

TEST_F(TimeoutTest, ABodyThatStopsArrivingIsClosedAfterBodyMs) {
  serve(60'000, 60'000, 300);
  asio::write(client_,
              asio::buffer(std::string_view(
                  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")));
  EXPECT_FALSE(closed_within(150));  // not at once: after body_ms without a byte
  EXPECT_TRUE(closed_within(3000));
  EXPECT_TRUE(bodies_.empty());
}

TEST_F(TimeoutTest, ASlowBodyThatKeepsArrivingIsServed) {
  serve(60'000, 60'000, 1500);
  asio::write(
      client_,
      asio::buffer(std::string_view("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")));
  // 30 bytes over ~3 s, twice body_ms: a byte every 100 ms keeps it alive.
  for (int i = 0; i < 30; ++i) {
    asio::write(client_, asio::buffer(std::string_view("x")));
    ASSERT_FALSE(closed_within(100)) << i;
  }
  ASSERT_TRUE(pump_until(ioc_, [&] { return !bodies_.empty(); }));
  EXPECT_EQ(bodies_.front(), std::string(30, 'x'));
  EXPECT_FALSE(closed_);
}

TEST_F(TimeoutTest, ServedAndWaitingConnectionsStayOpen) {
  serve(1000, 1000);
  // Requests keep coming, each well within the limits: every one is answered.
  for (int i = 0; i < 4; ++i) {
    asio::write(client_, asio::buffer(std::string_view("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::string in;
    ASSERT_TRUE(pump_until(ioc_, [&] {
      boost::system::error_code ec;
      char buf[512];
      while (client_.available(ec) > 0) in.append(buf, client_.read_some(asio::buffer(buf), ec));
      return in.find("{}") != std::string::npos;
    })) << i;
    EXPECT_FALSE(closed_within(200)) << i;
  }
  // Waiting for its response (a long invoke) is not waiting for a request.
  asio::write(client_, asio::buffer(std::string_view("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")));
  ASSERT_TRUE(pump_until(ioc_, [&] { return parked_.has_value(); }));
  EXPECT_FALSE(closed_within(1500));
  parked_->send(json_response(200, "{}", true));
  EXPECT_TRUE(closed_within(5000));  // idle again: closed after idle_ms
}

// ConnectionOptions::follow_responder: a connection whose response came from
// another shard reads its next request there. Every request is answered from
// the shard after the one that read it.
std::vector<int> shards_that_read(bool follow, std::chrono::nanoseconds poll_max = {}) {
  Shards shards(2);
  std::mutex mu;
  std::vector<int> read_on;
  Server server(
      shards, ConnectionOptions{.follow_responder = follow},
      [&](Request&&, Responder res) {
        const int here = Shards::current();
        {
          std::lock_guard lock(mu);
          read_on.push_back(here);
        }
        asio::post(shards.at((here + 1) % 2),
                   [res = std::move(res)]() mutable { res.send(json_response(200, "{}", true)); });
      },
      nullptr);
  EXPECT_TRUE(server.listen("127.0.0.1", 0));
  shards.start(/*pin_threads=*/false, poll_max);
  asio::io_context ioc;
  asio::ip::tcp::socket client(ioc);
  client.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  for (int i = 0; i < 4; ++i) {
    asio::write(client, asio::buffer(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::string in;
    asio::read_until(client, asio::dynamic_buffer(in), "\r\n\r\n{}");
  }
  client.close();
  server.close();
  shards.stop();
  return read_on;
}

// HeadCheck: a request declaring a large body is checked on its head alone, and refused
// before the body is read; small ones are never checked.
class HeadCheckTest : public ::testing::Test {
 protected:
  HeadCheckTest() {
    Socket server_side = connect_pair(ioc_, client_);
    auto handler = std::make_shared<const Handler>([this](Request&& req, Responder res) {
      bodies_.push_back(req.body());
      res.send(json_response(200, "{}", true));
    });
    auto check =
        std::make_shared<const HeadCheck>([this](const Request& head, std::uint64_t& body_limit) {
          if (head.target() == "/capped") body_limit = kHeadCheckBytes + 10;
          checked_.push_back(std::string(head.target()));
          std::optional<Response> refusal;
          if (head.target() == "/refuse") refusal = json_response(403, R"({"no":1})", true);
          return refusal;
        });
    serve_connection(
        std::move(server_side), ConnectionOptions{}, handler, nullptr, [this] { closed_ = true; },
        check);
  }

  std::string post_head(std::string_view target, std::size_t length) {
    return "POST " + std::string(target) +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
  }

  // Everything the server sent until it closed the connection.
  std::string read_to_eof() {
    std::string in;
    bool done = false;
    asio::async_read(client_, asio::dynamic_buffer(in),
                     [&](boost::system::error_code, std::size_t) { done = true; });
    EXPECT_TRUE(pump_until(ioc_, [&] { return done; }));
    return in;
  }

  asio::io_context ioc_;
  asio::ip::tcp::socket client_{ioc_};
  std::vector<std::string> checked_, bodies_;
  bool closed_ = false;
};

TEST_F(HeadCheckTest, ALargeBodyIsRefusedBeforeItIsRead) {
  // Only the head and a few bytes of a 5 MB body are ever sent.
  asio::write(client_, asio::buffer(post_head("/refuse", 5'000'000) + "0123456789"));
  const std::string in = read_to_eof();
  EXPECT_TRUE(in.starts_with("HTTP/1.1 403 Forbidden\r\n")) << in;
  EXPECT_NE(in.find("Connection: close\r\n"), std::string::npos) << in;
  EXPECT_TRUE(in.ends_with(R"({"no":1})")) << in;
  EXPECT_EQ(checked_, (std::vector<std::string>{"/refuse"}));
  EXPECT_TRUE(bodies_.empty());
  client_.close();  // the server, draining what the client sends, then sees its end
  EXPECT_TRUE(pump_until(
      ioc_, [&] { return closed_; }, std::chrono::milliseconds(1000)));
}

TEST_F(HeadCheckTest, ARefusalReachesAClientStillSendingItsBody) {
  // The client goes on sending after the refusal: the server drains instead of resetting the
  // connection, so the answer can still be read.
  asio::write(client_, asio::buffer(post_head("/refuse", 4'000'000)));
  const std::string chunk(256 * 1024, 'b');
  for (int i = 0; i < 8; ++i) {
    boost::system::error_code ec;
    asio::write(client_, asio::buffer(chunk), ec);
    ASSERT_FALSE(ec) << i << ": " << ec.message();
    pump_ready(ioc_);
  }
  const std::string in = read_to_eof();
  EXPECT_TRUE(in.starts_with("HTTP/1.1 403 Forbidden\r\n"))
      << in.size() << " checked " << checked_.size() << " closed " << closed_;
}

TEST_F(HeadCheckTest, ARefusedClientThatExpectsContinueGetsOnlyTheRefusal) {
  asio::write(client_, asio::buffer("POST /refuse HTTP/1.1\r\nHost: x\r\n"
                                    "Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n"));
  const std::string in = read_to_eof();  // the body is never sent
  EXPECT_TRUE(in.starts_with("HTTP/1.1 403 Forbidden\r\n")) << in;
  EXPECT_TRUE(bodies_.empty());
}

TEST_F(HeadCheckTest, ALargeBodyThatPassesIsServedAndSmallOnesAreNotChecked) {
  const std::string big(kHeadCheckBytes + 1, 'x');
  asio::write(client_, asio::buffer(post_head("/big", big.size()) + big));
  asio::write(client_, asio::buffer(post_head("/small", 2) + "{}"));
  ASSERT_TRUE(pump_until(ioc_, [&] { return bodies_.size() == 2; }));
  EXPECT_EQ(bodies_[0], big);
  EXPECT_EQ(checked_, (std::vector<std::string>{"/big"}));
  EXPECT_FALSE(closed_);
}

TEST_F(HeadCheckTest, ALargeBodyIsReadInLargeReads) {
  // Beast sizes a read by the buffer's free room; the parser empties the buffer as it goes, so
  // without ReadBuffer's hint every read took 512 bytes to a few KiB: thousands of trips through
  // the event loop for a few MiB. Each read is one handler run here.
  const std::string big(4 << 20, 'x');
  const std::string request = post_head("/big", big.size()) + big;
  bool written = false;
  asio::async_write(client_, asio::buffer(request),
                    [&](boost::system::error_code ec, std::size_t) { written = !ec; });
  std::size_t handlers = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (bodies_.empty() && std::chrono::steady_clock::now() < deadline)
    handlers += ioc_.run_one_for(std::chrono::milliseconds(100));
  ASSERT_EQ(bodies_.size(), 1u);
  EXPECT_EQ(bodies_[0], big);
  EXPECT_TRUE(written);
  EXPECT_LT(handlers, 1000u);  // 64 reads of 64 KiB at best; ~8,000 of 512 bytes before
}

TEST_F(HeadCheckTest, ALoweredLimitCapsAChunkedBody) {
  // A chunked body says its size only at its end: the check's limit applies as it arrives.
  const std::string chunk(kHeadCheckBytes, 'c');
  std::ostringstream chunk_size;
  chunk_size << std::hex << chunk.size();
  const std::string head = "POST /capped HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  asio::write(client_, asio::buffer(head + chunk_size.str() + "\r\n" + chunk + "\r\n" +
                                    chunk_size.str() + "\r\n" + chunk + "\r\n0\r\n\r\n"));
  EXPECT_TRUE(pump_until(ioc_, [&] { return closed_; }));
  EXPECT_EQ(checked_, (std::vector<std::string>{"/capped"}));
  EXPECT_TRUE(bodies_.empty());
}

// ConnectionOptions::body_budget: bodies over kHeadCheckBytes being received, across
// connections. Three connections share 300 KiB; each declares a 200-KiB body.
class BodyBudgetTest : public ::testing::Test {
 protected:
  BodyBudgetTest() {
    auto handler = std::make_shared<const Handler>([this](Request&& req, Responder res) {
      bodies_.push_back(req.body().size());
      res.send(json_response(200, "{}", true));
    });
    auto on_error = std::make_shared<const ParseErrorHandler>(
        [this](const Request&, std::string_view, ParseFailure why) {
          failures_.push_back(why);
          return json_response(429, R"({"busy":1})", false);
        });
    for (auto& client : clients_) {
      serve_connection(connect_pair(ioc_, client), ConnectionOptions{.body_budget = budget_},
                       handler, on_error);
    }
  }

  static std::string head(std::size_t length) {
    return "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
  }

  std::string read_some(asio::ip::tcp::socket& client) {
    std::string in;
    EXPECT_TRUE(pump_until(ioc_, [&] {
      boost::system::error_code ec;
      char buf[4096];
      while (std::size_t n = client.available(ec))
        in.append(buf, client.read_some(asio::buffer(buf, std::min(n, sizeof buf)), ec));
      return in.find("\r\n\r\n") != std::string::npos;
    }));
    return in;
  }

  static constexpr std::size_t kBody = 200 * 1024;
  asio::io_context ioc_;
  std::shared_ptr<BodyBudget> budget_ = std::make_shared<BodyBudget>(300 * 1024);
  std::array<asio::ip::tcp::socket, 3> clients_{
      asio::ip::tcp::socket(ioc_), asio::ip::tcp::socket(ioc_), asio::ip::tcp::socket(ioc_)};
  std::vector<std::size_t> bodies_;
  std::vector<ParseFailure> failures_;
};

TEST_F(BodyBudgetTest, AHeadIsRefusedWhileTheBudgetIsFullUntilABodyIsComplete) {
  const std::string body(400 * 1024, 'b');
  asio::write(clients_[0], asio::buffer(head(body.size()) + body.substr(0, 290 * 1024)));
  ASSERT_TRUE(pump_until(ioc_, [&] { return budget_->used() == 290 * 1024; }));
  asio::write(clients_[1], asio::buffer(head(kBody)));  // no room for a new large body
  EXPECT_TRUE(read_some(clients_[1]).starts_with("HTTP/1.1 429"));
  EXPECT_EQ(failures_, (std::vector<ParseFailure>{ParseFailure::kOverBudget}));
  EXPECT_EQ(budget_->used(), 290u * 1024);

  asio::write(clients_[0], asio::buffer(body.substr(290 * 1024)));
  EXPECT_TRUE(read_some(clients_[0]).starts_with("HTTP/1.1 200"));
  EXPECT_EQ(bodies_, (std::vector<std::size_t>{body.size()}));
  EXPECT_EQ(budget_->used(), 0u);  // given back once the body was complete

  asio::write(clients_[2], asio::buffer(head(kBody) + std::string(kBody, 'c')));
  EXPECT_TRUE(read_some(clients_[2]).starts_with("HTTP/1.1 200"));
  EXPECT_EQ(bodies_.size(), 2u);
}

TEST_F(BodyBudgetTest, ABodyThatOutgrowsTheBudgetIsRefusedAsItArrives) {
  const std::string body(400 * 1024, 'b');
  asio::write(clients_[0], asio::buffer(head(body.size()) + body.substr(0, 200 * 1024)));
  ASSERT_TRUE(pump_until(ioc_, [&] { return budget_->used() == 200 * 1024; }));
  // Room for its head; not for its body beside the first one's.
  asio::write(clients_[1], asio::buffer(head(kBody) + std::string(kBody, 'c')));
  EXPECT_TRUE(read_some(clients_[1]).starts_with("HTTP/1.1 429"));
  EXPECT_EQ(failures_, (std::vector<ParseFailure>{ParseFailure::kOverBudget}));
  EXPECT_TRUE(bodies_.empty());
  EXPECT_TRUE(pump_until(ioc_, [&] { return budget_->used() == 200 * 1024; }));

  asio::write(clients_[0], asio::buffer(body.substr(200 * 1024)));
  EXPECT_TRUE(read_some(clients_[0]).starts_with("HTTP/1.1 200"));
  EXPECT_EQ(budget_->used(), 0u);
}

TEST_F(BodyBudgetTest, AHeadCostsNothingUntilItsBodyArrives) {
  // Declared sizes are not counted: heads alone cannot lock large bodies out.
  for (int i = 0; i < 2; ++i) {
    asio::write(clients_[i], asio::buffer("POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                          "Content-Length: 5000000\r\n\r\n"));
    EXPECT_EQ(read_some(clients_[i]), "HTTP/1.1 100 Continue\r\n\r\n");  // head passed
  }
  EXPECT_EQ(budget_->used(), 0u);
  asio::write(clients_[2], asio::buffer(head(kBody) + std::string(kBody, 'c')));
  EXPECT_TRUE(read_some(clients_[2]).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(failures_.empty());
}

TEST_F(BodyBudgetTest, ABodyLargerThanTheWholeBudgetStillPassesAlone) {
  const std::string body(400 * 1024, 'b');
  asio::write(clients_[0], asio::buffer(head(body.size()) + body));
  EXPECT_TRUE(read_some(clients_[0]).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(budget_->used(), 0u);
}

TEST_F(BodyBudgetTest, AnAbandonedBodyGivesItsShareBack) {
  asio::write(clients_[0], asio::buffer(head(kBody) + "partial"));
  ASSERT_TRUE(pump_until(ioc_, [&] { return budget_->used() == 7; }));
  clients_[0].close();
  EXPECT_TRUE(pump_until(ioc_, [&] { return budget_->used() == 0; }));
}

TEST(HeadCheckLinger, ASweepDueWhenTheRefusalIsWrittenDoesNotKeepTheConnection) {
  // The idle sweep shares the linger timer: a sweep that had already expired when the
  // connection started to linger used to re-arm itself for ever (reproduced 20 of 20 times).
  asio::io_context ioc;
  asio::ip::tcp::socket client(ioc);
  Socket server_side = connect_pair(ioc, client);
  bool closed = false;
  auto handler = std::make_shared<const Handler>(
      [](Request&&, Responder res) { res.send(json_response(200, "{}", true)); });
  auto check = std::make_shared<const HeadCheck>(
      [](const Request&, std::uint64_t&) -> std::optional<Response> {
        std::this_thread::sleep_for(std::chrono::milliseconds(70));  // the sweep expires meanwhile
        return json_response(403, "{}", true);
      });
  serve_connection(
      std::move(server_side), ConnectionOptions{.idle_ms = 100}, handler, nullptr,
      [&] { closed = true; }, check);
  asio::write(client, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ") +
                                   std::to_string(kHeadCheckBytes + 1) + "\r\n\r\n"));
  // The client sends nothing more and keeps its end open: lingering ends after 2 s idle.
  EXPECT_TRUE(pump_until(
      ioc, [&] { return closed; }, std::chrono::milliseconds(6000)));
}

TEST(FollowResponder, TheNextRequestIsReadWhereTheLastWasAnswered) {
  const auto read_on = shards_that_read(true);
  ASSERT_EQ(read_on.size(), 4u);
  for (std::size_t i = 1; i < read_on.size(); ++i) {
    EXPECT_EQ(read_on[i], (read_on[i - 1] + 1) % 2) << i;
  }
}

TEST(FollowResponder, OffAConnectionStaysOnItsShard) {
  const auto read_on = shards_that_read(false);
  ASSERT_EQ(read_on.size(), 4u);
  for (std::size_t i = 1; i < read_on.size(); ++i) EXPECT_EQ(read_on[i], read_on[0]) << i;
}

using Parts = std::vector<std::vector<int>>;

TEST(PartitionCpus, OneShardPerCpuGetsItsOwn) {
  EXPECT_EQ(partition_cpus({0, 1}, 2), (Parts{{0}, {1}}));
  EXPECT_EQ(partition_cpus({2, 5, 7}, 3), (Parts{{2}, {5}, {7}}));
}

TEST(PartitionCpus, FewerShardsShareTheCpusOutInTurn) {
  EXPECT_EQ(partition_cpus({0, 1, 2, 3, 4}, 2), (Parts{{0, 2, 4}, {1, 3}}));
  EXPECT_EQ(partition_cpus({0, 1, 2}, 1), (Parts{{0, 1, 2}}));
}

TEST(PartitionCpus, MoreShardsThanCpusShareThemInTurn) {
  EXPECT_EQ(partition_cpus({3, 4}, 5), (Parts{{3}, {4}, {3}, {4}, {3}}));
}

TEST(PartitionCpus, NoCpusKnownGivesEveryShardNone) {
  EXPECT_EQ(partition_cpus({}, 2), (Parts{{}, {}}));
  EXPECT_TRUE(partition_cpus({0, 1}, 0).empty());
}

TEST(Shards, EachShardHasCpusTheProcessMayUse) {
  const auto allowed = lambent::allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  Shards shards(static_cast<int>(allowed.size()));
  std::vector<int> seen;
  for (int i = 0; i < shards.size(); ++i) {
    ASSERT_EQ(shards.cpus(i).size(), 1u);
    seen.push_back(shards.cpus(i)[0]);
  }
  EXPECT_EQ(seen, allowed);
}

using std::chrono::microseconds;

TEST(PollWindow, NeverPollsWithoutAMax) {
  PollWindow w(microseconds(0));
  w.waited(microseconds(5));
  w.waited(microseconds(0));
  EXPECT_EQ(w.window(), microseconds(0));
}

TEST(PollWindow, GrowsToCoverShortWaitsUpToItsMax) {
  PollWindow w(microseconds(100));
  EXPECT_EQ(w.window(), microseconds(0));  // a new shard blocks at once
  w.waited(microseconds(30));
  EXPECT_EQ(w.window(), microseconds(10));
  w.waited(microseconds(30));
  EXPECT_EQ(w.window(), microseconds(20));
  w.waited(microseconds(30));
  EXPECT_EQ(w.window(), microseconds(40));
  w.waited(microseconds(30));  // covered by polling: the window stays
  EXPECT_EQ(w.window(), microseconds(40));
  w.waited(microseconds(90));
  w.waited(microseconds(90));
  EXPECT_EQ(w.window(), microseconds(100));  // never more than the max
}

TEST(PollWindow, WaitsLongerThanTheMaxShrinkItToNothing) {
  PollWindow w(microseconds(100));
  for (int i = 0; i < 5; ++i) w.waited(microseconds(99));
  ASSERT_EQ(w.window(), microseconds(100));
  w.waited(microseconds(5000));
  EXPECT_EQ(w.window(), microseconds(50));
  w.waited(microseconds(5000));
  w.waited(microseconds(5000));
  EXPECT_EQ(w.window(), std::chrono::nanoseconds(12500));
  w.waited(microseconds(5000));
  EXPECT_EQ(w.window(), microseconds(0));  // below the start: the shard blocks at once
}

TEST(Shards, StartReturnsOnceEveryLoopIsNamed) {
  // A daemon is ready when start() returns: its loops must be placed and named by then (a
  // placement test once read a loop that had not yet named itself).
  const auto loop_names = [] {
    std::set<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name.starts_with("shard-")) names.insert(name);
    }
    return names;
  };
  for (int round = 0; round < 20; ++round) {
    Shards shards(4);
    shards.start(/*pin_threads=*/false);
    EXPECT_EQ(loop_names(), (std::set<std::string>{"shard-0", "shard-1", "shard-2", "shard-3"}))
        << "round " << round;
    shards.stop();
  }
}

TEST(Shards, APollingShardServesAndFollowsLikeABlockingOne) {
  const auto read_on = shards_that_read(/*follow=*/true, microseconds(100));
  ASSERT_EQ(read_on.size(), 4u);
  for (std::size_t i = 1; i < read_on.size(); ++i) {
    EXPECT_EQ(read_on[i], (read_on[i - 1] + 1) % 2) << i;
  }
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Polling is bounded by the window: a shard that had work moments ago polls for at most its
// max once the work stops, then sleeps; it does not spin through an idle period.
TEST(Shards, AnIdlePollingShardSleeps) {
  Shards shards(1);
  shards.start(/*pin_threads=*/false, std::chrono::milliseconds(10));
  std::atomic<int> ran{0};
  for (int i = 0; i < 200; ++i) {  // work with short gaps: the window grows to cover them
    asio::post(shards.at(0), [&] { ran.fetch_add(1); });
    std::this_thread::sleep_for(microseconds(200));
  }
  while (ran.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double before = process_cpu_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double used = process_cpu_ms() - before;
  shards.stop();
  EXPECT_LT(used, 100.0) << "a shard polling through 500 ms of idle time would use ~500 ms";
}

}  // namespace
}  // namespace lambent::http
