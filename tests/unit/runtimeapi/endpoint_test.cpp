// The Runtime API endpoint's routing and wire shapes (LAMBDA-COMPAT.md §3),
// driven over real loopback HTTP with a fake environment behind it. The
// server and the client share one io_context run by the test thread.
#include "runtimeapi/endpoint.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "fakes/fake_spawner.hpp"
#include "fakes/loopback_client.hpp"

namespace lambent::runtimeapi {
namespace {

using lambent::testing::header;
using lambent::testing::LoopbackClient;
using lambent::testing::pump_ready;
using lambent::testing::pump_until;
using nlohmann::json;

constexpr std::string_view kNext = "/2018-06-01/runtime/invocation/next";

std::string path(std::string_view id, std::string_view verb) {
  return "/2018-06-01/runtime/invocation/" + std::string(id) + "/" + std::string(verb);
}

// Records every call; answers posts with 202 unless told to hold them.
class FakeHooks final : public RuntimeHooks {
 public:
  struct Post {
    std::string kind;  // response | error | init_error
    std::string request_id, error_type, body;
  };

  void on_next(http::Responder res) override { nexts.push_back(std::move(res)); }
  void on_response(std::string_view id, std::string&& body, http::Responder res) override {
    record({"response", std::string(id), "", std::move(body)}, std::move(res));
  }
  void on_error(std::string_view id, std::string_view type, std::string&& body,
                http::Responder res) override {
    record({"error", std::string(id), std::string(type), std::move(body)}, std::move(res));
  }
  void on_init_error(std::string_view type, std::string&& body, http::Responder res) override {
    record({"init_error", "", std::string(type), std::move(body)}, std::move(res));
  }
  void on_response_too_large(std::string_view id, std::uint64_t size) override {
    too_large.emplace_back(std::string(id), size);
  }

  std::vector<http::Responder> nexts;
  std::vector<Post> posts;
  std::vector<std::pair<std::string, std::uint64_t>> too_large;

 private:
  void record(Post p, http::Responder res) {
    posts.push_back(std::move(p));
    res.send(accepted());
  }
};

class EndpointTest : public ::testing::Test {
 protected:
  EndpointTest() {
    hooks_ = std::make_shared<FakeHooks>();
    endpoint_ = std::make_unique<Endpoint>(ioc_, lambent::testing::listen_loopback(port_),
                                           std::weak_ptr<RuntimeHooks>(hooks_));
    endpoint_->start();
  }
  ~EndpointTest() override {
    endpoint_.reset();
    pump_ready(ioc_);
  }

  std::unique_ptr<LoopbackClient> client() { return std::make_unique<LoopbackClient>(ioc_, port_); }
  FakeHooks& hooks() { return *hooks_; }

  boost::asio::io_context ioc_;
  std::uint16_t port_ = 0;
  std::shared_ptr<FakeHooks> hooks_;
  std::unique_ptr<Endpoint> endpoint_;
};

TEST_F(EndpointTest, NextIsParkedUntilTheEnvironmentAnswers) {
  auto c = client();
  c->send("GET", kNext);
  ASSERT_TRUE(pump_until(ioc_, [&] { return hooks().nexts.size() == 1; }));
  pump_ready(ioc_);
  EXPECT_FALSE(c->finished()) << "GET /next must be held open until an invocation exists";

  NextHeaders h;
  h.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
  h.deadline_ms = 1542409706888;
  h.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f:live";
  h.trace_id = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
  h.client_context = R"({"custom":{"k":"v"}})";
  h.cognito_identity = R"({"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"})";
  hooks().nexts[0].send(next_response(h, R"({"event":1})"));

  const auto res = c->wait();
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), R"({"event":1})");
  EXPECT_EQ(header(*res, "Content-Type"), "application/json");
  EXPECT_EQ(header(*res, "Lambda-Runtime-Aws-Request-Id"), h.request_id);
  EXPECT_EQ(header(*res, "Lambda-Runtime-Deadline-Ms"), "1542409706888");
  EXPECT_EQ(header(*res, "Lambda-Runtime-Invoked-Function-Arn"), h.invoked_function_arn);
  EXPECT_EQ(header(*res, "Lambda-Runtime-Trace-Id"), h.trace_id);
  EXPECT_EQ(header(*res, "Lambda-Runtime-Client-Context"), h.client_context);
  EXPECT_EQ(header(*res, "Lambda-Runtime-Cognito-Identity"), h.cognito_identity);
}

TEST_F(EndpointTest, NextWithQueryStringIsStillNext) {
  auto c = client();
  c->send("GET", std::string(kNext) + "?poll=1");
  ASSERT_TRUE(pump_until(ioc_, [&] { return hooks().nexts.size() == 1; }));
}

TEST_F(EndpointTest, ResponseWithContentLengthIsAccepted) {
  auto c = client();
  const auto res = c->request("POST", path("req-1", "response"), R"({"ok":true})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);
  EXPECT_EQ(res->body(), R"({"status":"OK"})");
  EXPECT_EQ(header(*res, "Content-Type"), "application/json");
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].kind, "response");
  EXPECT_EQ(hooks().posts[0].request_id, "req-1");
  EXPECT_EQ(hooks().posts[0].body, R"({"ok":true})");
}

TEST_F(EndpointTest, ChunkedResponseBodyIsReassembled) {
  auto c = client();
  c->send_raw("POST " + path("req-2", "response") +
              " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              "Content-Type: application/json\r\n\r\n"
              "5\r\n\"hell\r\n"
              "2\r\no\"\r\n"
              "0\r\n\r\n");
  const auto res = c->wait();
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].body, "\"hello\"");
  EXPECT_EQ(hooks().posts[0].request_id, "req-2");
}

TEST_F(EndpointTest, ErrorTypeArrivesAsChunkedTrailer) {
  // aws-lambda-go and Node's streaming mode send the type as a trailer.
  auto c = client();
  c->send_raw("POST " + path("req-3", "error") +
              " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              "Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
              "10\r\n{\"errorType\":\"X\"\r\n"
              "1\r\n}\r\n"
              "0\r\nLambda-Runtime-Function-Error-Type: Runtime.HandlerFailed\r\n\r\n");
  const auto res = c->wait();
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].kind, "error");
  EXPECT_EQ(hooks().posts[0].request_id, "req-3");
  EXPECT_EQ(hooks().posts[0].error_type, "Runtime.HandlerFailed");
  EXPECT_EQ(hooks().posts[0].body, R"({"errorType":"X"})");
}

TEST_F(EndpointTest, ErrorTypeAsHeaderAndEmptyTrailer) {
  auto c = client();
  auto res = c->request("POST", path("req-4", "error"), "{}",
                        {{"Lambda-Runtime-Function-Error-Type", "Unhandled"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);

  // Go sends an empty trailer when it has nothing to say.
  c->send_raw("POST " + path("req-5", "error") +
              " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              "Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
              "2\r\n{}\r\n0\r\nLambda-Runtime-Function-Error-Type: \r\n\r\n");
  res = c->wait();
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 2u);
  EXPECT_EQ(hooks().posts[0].error_type, "Unhandled");
  EXPECT_EQ(hooks().posts[1].request_id, "req-5");
  EXPECT_EQ(hooks().posts[1].error_type, "");
  EXPECT_EQ(hooks().posts[1].body, "{}");
}

TEST_F(EndpointTest, InitErrorCarriesTypeAndBody) {
  auto c = client();
  const auto res =
      c->request("POST", "/2018-06-01/runtime/init/error",
                 R"({"errorMessage":"no module","errorType":"Runtime.ImportModuleError"})",
                 {{"Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].kind, "init_error");
  EXPECT_EQ(hooks().posts[0].error_type, "Runtime.ImportModuleError");
  EXPECT_EQ(hooks().posts[0].body,
            R"({"errorMessage":"no module","errorType":"Runtime.ImportModuleError"})");
}

TEST_F(EndpointTest, HeadersUpToOneMebibyteAreAccepted) {
  // Runtimes send the X-Ray error cause as a header; aws-lambda-cpp allows it
  // up to 1 MiB, so a large stack trace makes a header value > 64 KiB.
  auto c = client();
  const std::string cause(900 * 1024, 'c');
  const auto res = c->request("POST", path("req-6", "error"), R"({"errorType":"E"})",
                              {{"Lambda-Runtime-Function-Error-Type", "E"},
                               {"Lambda-Runtime-Function-XRay-Error-Cause", cause}});
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].error_type, "E");
}

TEST_F(EndpointTest, HeadersBeyondTheLimitAreRefusedWithoutReachingTheEnvironment) {
  auto c = client();
  const auto res =
      c->request("POST", path("req-7", "error"), "{}",
                 {{"Lambda-Runtime-Function-XRay-Error-Cause", std::string(1200 * 1024, 'c')}});
  if (res) {
    EXPECT_GE(res->result_int(), 400u);
  }
  EXPECT_TRUE(hooks().posts.empty());
  EXPECT_TRUE(hooks().too_large.empty());
}

TEST_F(EndpointTest, AHugeHeadOnASmallResponseIsNotATooLargeResponse) {
  // The body is 2 bytes: the invoke must not fail as Function.ResponseSizeTooLarge.
  auto c = client();
  const auto res = c->request("POST", path("req-h", "response"), "{}",
                              {{"X-Padding", std::string(1200 * 1024, 'p')}});
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 400u);
  EXPECT_EQ(json::parse(res->body()).at("errorType"), "InvalidRequest");
  EXPECT_TRUE(hooks().too_large.empty());
  EXPECT_TRUE(hooks().posts.empty());
}

TEST_F(EndpointTest, OversizedErrorIsReportedLikeAnOversizedResponse) {
  auto c = client();
  c->send("POST", path("req-e", "error"), std::string(kMaxResponseBytes + 1, 'e'));
  ASSERT_TRUE(pump_until(ioc_, [&] { return !hooks().too_large.empty(); }));
  EXPECT_EQ(hooks().too_large[0].first, "req-e");
  EXPECT_TRUE(hooks().posts.empty());
}

TEST_F(EndpointTest, OversizedResponseIs413AndReported) {
  auto c = client();
  const std::uint64_t size = kMaxResponseBytes + 1;
  c->send("POST", path("req-8", "response"), std::string(size, 'x'));
  ASSERT_TRUE(pump_until(ioc_, [&] { return !hooks().too_large.empty(); }));
  EXPECT_EQ(hooks().too_large[0].first, "req-8");
  EXPECT_TRUE(hooks().posts.empty()) << "an oversized body must not reach on_response";
  // The runtime is told why.
  ASSERT_TRUE(pump_until(ioc_, [&] { return c->finished(); }));
  ASSERT_TRUE(c->has_response()) << c->read_error().message();
  EXPECT_EQ(c->response().result_int(), 413u);
  const auto body = json::parse(c->response().body());
  EXPECT_EQ(body.at("errorType"), "RequestEntityTooLarge");
  EXPECT_EQ(body.at("errorMessage"), "Exceeded maximum allowed payload size (6291556 bytes).");
}

TEST_F(EndpointTest, OversizedResponseReportsItsDeclaredSize) {
  auto c = client();
  const std::uint64_t size = kMaxResponseBytes + 1;
  c->send("POST", path("req-8", "response"), std::string(size, 'x'));
  ASSERT_TRUE(pump_until(ioc_, [&] { return !hooks().too_large.empty(); }));
  EXPECT_EQ(hooks().too_large[0].second, size);
}

TEST_F(EndpointTest, ResponseAtTheLimitIsAccepted) {
  auto c = client();
  const auto res =
      c->request("POST", path("req-9", "response"), std::string(kMaxResponseBytes, 'x'));
  ASSERT_TRUE(res) << c->read_error().message();
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 1u);
  EXPECT_EQ(hooks().posts[0].body.size(), kMaxResponseBytes);
  EXPECT_TRUE(hooks().too_large.empty());
}

TEST_F(EndpointTest, UnknownPathsAre404AndWrongMethods405) {
  struct Case {
    std::string method, target;
    unsigned status;
  };
  for (const auto& t : std::vector<Case>{
           {"GET", "/2018-06-01/runtime/invocation/nxt", 404},
           {"GET", "/2018-06-01/runtime/unknown", 404},
           {"GET", "/2020-01-01/extension/register", 404},
           {"GET", "/", 404},
           {"POST", path("id", "unknown"), 404},
           {"GET", path("id", "response"), 404},
           {"POST", "/2018-06-01/runtime/invocation//response", 404},
           {"POST", std::string(kNext), 405},
           {"GET", "/2018-06-01/runtime/init/error", 405},
       }) {
    SCOPED_TRACE(t.method + " " + t.target);
    auto c = client();
    const auto res = c->request(t.method, t.target, t.method == "POST" ? "{}" : "");
    ASSERT_TRUE(res) << c->read_error().message();
    EXPECT_EQ(res->result_int(), t.status);
    EXPECT_EQ(header(*res, "Content-Type"), "application/json");
    const auto body = json::parse(res->body());
    EXPECT_TRUE(body.contains("errorType"));
    EXPECT_TRUE(body.contains("errorMessage"));
  }
  EXPECT_TRUE(hooks().posts.empty());
  EXPECT_TRUE(hooks().nexts.empty());
}

TEST_F(EndpointTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto c = client();
  for (int i = 0; i < 3; ++i) {
    const auto res = c->request("POST", path("id-" + std::to_string(i), "response"), "null");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 202u);
  }
  ASSERT_EQ(hooks().posts.size(), 3u);
  EXPECT_EQ(hooks().posts[2].request_id, "id-2");
}

TEST_F(EndpointTest, ConnectionsBeyondTheLimitAreClosedUntilOneEnds) {
  // Function code could otherwise open connections (each able to buffer a
  // 1 MiB head) until the daemon runs out of descriptors or memory.
  std::vector<std::unique_ptr<LoopbackClient>> open;
  for (int i = 0; i < kMaxConnections; ++i) {
    open.push_back(client());
    const auto res = open.back()->request("POST", path("c" + std::to_string(i), "response"), "1");
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->result_int(), 202u);
  }
  auto extra = client();
  EXPECT_FALSE(extra->request("POST", path("extra", "response"), "1"));
  EXPECT_EQ(hooks().posts.size(), static_cast<std::size_t>(kMaxConnections));

  open.front().reset();  // its session ends once the endpoint reads the close
  auto next = client();
  std::optional<http::Response> res;
  ASSERT_TRUE(pump_until(ioc_, [&] {
    res = next->request("POST", path("after", "response"), "1");
    if (!res) next = client();  // closed: the first session had not ended yet
    return res.has_value();
  }));
  EXPECT_EQ(res->result_int(), 202u);
  EXPECT_EQ(hooks().posts.back().request_id, "after");
}

TEST_F(EndpointTest, OneLargeBodyAtATimePerEnvironment) {
  // A runtime (untrusted code) could otherwise have every connection receive a 6 MiB body at
  // once, all held by the daemon outside the function's memory limit.
  const std::size_t size = http::kHeadCheckBytes + 1;
  auto first = client();
  first->send_raw("POST " + path("big-1", "response") +
                  " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) +
                  "\r\n\r\nxx");  // head and the body's first bytes: still arriving
  pump_ready(ioc_);
  auto second = client();
  const auto refused = second->request("POST", path("big-1", "error"), std::string(size, 'e'));
  ASSERT_TRUE(refused) << second->read_error().message();
  EXPECT_EQ(refused->result_int(), 429u);
  EXPECT_EQ(json::parse(refused->body()).at("errorType"), "TooManyRequests");
  // Small bodies are not held back.
  EXPECT_EQ(client()->request("POST", path("small", "response"), "1")->result_int(), 202u);
  // Once the first body is complete, the next large one is taken.
  first->send_raw(std::string(size - 2, 'x'));
  ASSERT_TRUE(pump_until(ioc_, [&] { return first->finished(); }));
  const auto after = client()->request("POST", path("big-2", "response"), std::string(size, 'y'));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result_int(), 202u);
  ASSERT_EQ(hooks().posts.size(), 3u);
  EXPECT_EQ(hooks().posts[0].request_id, "small");
  EXPECT_EQ(hooks().posts[1].body.size(), size);
  EXPECT_EQ(hooks().posts[2].request_id, "big-2");
}

TEST_F(EndpointTest, ALargeBodyCutOffFreesItsPlace) {
  const std::size_t size = http::kHeadCheckBytes + 1;
  auto first = client();
  first->send_raw("POST " + path("cut", "response") +
                  " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\nxx");
  pump_ready(ioc_);
  first.reset();  // the runtime's connection dies mid-body
  std::optional<http::Response> res;
  ASSERT_TRUE(pump_until(ioc_, [&] {
    res = client()->request("POST", path("next", "response"), std::string(size, 'z'));
    return res && res->result_int() == 202u;
  }));
}

TEST_F(EndpointTest, RequestsAfterTheEnvironmentIsGoneAre500) {
  auto c = client();
  ASSERT_TRUE(c->request("POST", path("a", "response"), "1"));
  hooks_.reset();
  const auto res = c->request("GET", kNext);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
  EXPECT_EQ(json::parse(res->body()).at("errorType"), "InternalServerError");
}

TEST_F(EndpointTest, UnsentResponderClosesTheConnection) {
  // The environment died with a /next parked: the runtime sees EOF, never a hang.
  auto c = client();
  c->send("GET", kNext);
  ASSERT_TRUE(pump_until(ioc_, [&] { return hooks().nexts.size() == 1; }));
  hooks().nexts.clear();
  ASSERT_TRUE(pump_until(ioc_, [&] { return c->finished(); }));
  EXPECT_FALSE(c->has_response());
}

// ---- wire shapes ----

TEST(WireShapes, NextResponseOmitsEmptyOptionalHeaders) {
  NextHeaders h;
  h.request_id = "rid";
  h.deadline_ms = 42;
  h.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  const auto res = next_response(h, "");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(header(res, "Content-Type"), "application/json");
  EXPECT_EQ(header(res, "Lambda-Runtime-Aws-Request-Id"), "rid");
  EXPECT_EQ(header(res, "Lambda-Runtime-Deadline-Ms"), "42");
  EXPECT_EQ(header(res, "Lambda-Runtime-Invoked-Function-Arn"), h.invoked_function_arn);
  for (const char* absent : {"Lambda-Runtime-Trace-Id", "Lambda-Runtime-Client-Context",
                             "Lambda-Runtime-Cognito-Identity"})
    EXPECT_EQ(res.find(absent), res.end()) << absent;
}

TEST(WireShapes, NextResponseIsJsonEvenForNonJsonPayload) {
  // The official clients crash without Content-Type: application/json.
  NextHeaders h;
  h.request_id = "rid";
  const auto res = next_response(h, "not json at all");
  EXPECT_EQ(header(res, "Content-Type"), "application/json");
  EXPECT_EQ(res.body(), "not json at all");
}

TEST(WireShapes, AcceptedIs202StatusOk) {
  const auto res = accepted();
  EXPECT_EQ(res.result_int(), 202u);
  EXPECT_EQ(res.body(), R"({"status":"OK"})");
  EXPECT_EQ(header(res, "Content-Type"), "application/json");
}

TEST(WireShapes, ErrorResponseEscapesMessage) {
  const std::string msg = "quote \" backslash \\ newline \n tab \t ctl \x01 end";
  const auto res = error_response(403, "InvalidStateTransition", msg);
  EXPECT_EQ(res.result_int(), 403u);
  const auto body = json::parse(res.body());
  EXPECT_EQ(body.at("errorMessage"), msg);
  EXPECT_EQ(body.at("errorType"), "InvalidStateTransition");
  EXPECT_EQ(body.size(), 2u);
}

}  // namespace
}  // namespace lambent::runtimeapi
