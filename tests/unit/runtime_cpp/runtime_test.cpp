// Drives lambent::runtime::run_handler against FakeRuntimeApi and checks the wire.
// run_handler runs on the test thread and returns 1 when the fake's script ends (its /next
// answers 500), so every test is a plain synchronous call: no sleeps, no timing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <lambent/runtime.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "fake_runtime_api.hpp"

namespace lambent::runtime {
namespace {

using lambent::testing::chunked_next_reply;
using lambent::testing::FakeRuntimeApi;
using lambent::testing::next_reply;
using lambent::testing::RecordedRequest;

constexpr std::string_view kNext = "/2018-06-01/runtime/invocation/next";

std::string response_target(std::string_view id) {
  return "/2018-06-01/runtime/invocation/" + std::string(id) + "/response";
}
std::string error_target(std::string_view id) {
  return "/2018-06-01/runtime/invocation/" + std::string(id) + "/error";
}

template <class Handler>
int run(FakeRuntimeApi& api, Handler&& handler) {
  const std::string address = api.address();
  return run_handler(std::forward<Handler>(handler), RunOptions{.runtime_api = address});
}

Outcome echo(const Invocation& inv) {
  return Outcome::success_view(inv.payload);
}

// run(api, echo), counting the handler's calls into `calls`.
int run_counting(FakeRuntimeApi& api, int& calls) {
  return run(api, [&](const Invocation& inv) {
    ++calls;
    return echo(inv);
  });
}

TEST(RuntimeCpp, SendsExactRequestsAndSuccessBody) {
  FakeRuntimeApi api({.next_replies = {next_reply(
                          "req-1", R"({"a":1})",
                          "Lambda-Runtime-Client-Context: {\"custom\":{}}\r\n"
                          "Lambda-Runtime-Cognito-Identity: {\"cognitoIdentityId\":\"x\"}\r\n")}});
  std::vector<std::string> seen;
  std::int64_t deadline = 0;
  const int rc = run(api, [&](const Invocation& inv) {
    seen = {std::string(inv.payload),        std::string(inv.request_id),
            std::string(inv.function_arn),   std::string(inv.trace_id),
            std::string(inv.client_context), std::string(inv.cognito_identity),
            std::string(inv.content_type)};
    deadline = inv.deadline_ms;
    EXPECT_GT(inv.remaining_ms(), 0);
    return Outcome::success(R"({"ok":true})");
  });
  api.stop();
  EXPECT_EQ(rc, 1);  // the fake ended the loop with a 500 on /next
  EXPECT_EQ(seen, (std::vector<std::string>{
                      R"({"a":1})", "req-1", "arn:aws:lambda:us-east-1:123456789012:function:f",
                      "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1", R"({"custom":{}})",
                      R"({"cognitoIdentityId":"x"})", "application/json"}));
  EXPECT_EQ(deadline, 4102444800000);

  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, kNext);
  EXPECT_EQ(reqs[0].version, "HTTP/1.1");
  EXPECT_EQ(reqs[0].header("Host"), api.address());
  EXPECT_FALSE(reqs[0].has_header("Content-Length"));
  EXPECT_EQ(reqs[0].body, "");

  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].target, response_target("req-1"));
  EXPECT_EQ(reqs[1].header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[1].header("Content-Length"), "11");
  EXPECT_FALSE(reqs[1].has_header("Transfer-Encoding"));
  EXPECT_FALSE(reqs[1].has_header("Expect"));
  EXPECT_EQ(reqs[1].body, R"({"ok":true})");
  EXPECT_EQ(reqs[2].target, kNext);
}

TEST(RuntimeCpp, HandlerContentTypeIsSent) {
  FakeRuntimeApi api({.next_replies = {next_reply("r", "{}")}});
  run(api, [](const Invocation&) { return Outcome::success("hi", "text/plain"); });
  api.stop();
  const auto reqs = api.requests();
  ASSERT_GE(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].header("Content-Type"), "text/plain");
  EXPECT_EQ(reqs[1].body, "hi");
}

TEST(RuntimeCpp, FailurePostsEscapedErrorDocument) {
  FakeRuntimeApi api({.next_replies = {next_reply("id-2", "{}")}});
  run(api, [](const Invocation&) {
    return Outcome::failure("MyError", "boom \"q\" \\ \n\t\x01 \xc3\xa9 \xff/");
  });
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].target, error_target("id-2"));
  EXPECT_EQ(reqs[1].header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[1].header("Lambda-Runtime-Function-Error-Type"), "MyError");
  EXPECT_EQ(reqs[1].body,
            "{\"errorMessage\":\"boom \\\"q\\\" \\\\ \\n\\t\\u0001 \xc3\xa9 \\ufffd/\","
            "\"errorType\":\"MyError\",\"stackTrace\":[]}");
  EXPECT_EQ(reqs[1].header("Content-Length"), std::to_string(reqs[1].body.size()));
}

TEST(RuntimeCpp, UnsafeErrorTypeStaysOutOfTheHeader) {
  FakeRuntimeApi api({.next_replies = {next_reply("id", "{}")}});
  run(api, [](const Invocation&) { return Outcome::failure("Bad\r\nX-Injected: 1", "m"); });
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_FALSE(reqs[1].has_header("Lambda-Runtime-Function-Error-Type"));
  EXPECT_FALSE(reqs[1].has_header("X-Injected"));
  EXPECT_EQ(reqs[1].body,
            R"({"errorMessage":"m","errorType":"Bad\r\nX-Injected: 1","stackTrace":[]})");
}

TEST(RuntimeCpp, ExceptionsBecomeErrorPosts) {
  FakeRuntimeApi api({.next_replies = {next_reply("a", "{}"), next_reply("b", "{}")}});
  int calls = 0;
  run(api, [&](const Invocation&) -> Outcome {
    if (calls++ == 0) throw std::invalid_argument("bad \"input\"");
    throw 42;
  });
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[1].target, error_target("a"));
  EXPECT_EQ(
      reqs[1].body,
      R"({"errorMessage":"bad \"input\"","errorType":"std::invalid_argument","stackTrace":[]})");
  EXPECT_EQ(reqs[1].header("Lambda-Runtime-Function-Error-Type"), "std::invalid_argument");
  EXPECT_EQ(reqs[3].target, error_target("b"));
  EXPECT_EQ(reqs[3].header("Lambda-Runtime-Function-Error-Type"), "Runtime.UnknownException");
}

TEST(RuntimeCpp, DecodesChunkedNextBodies) {
  std::string big(100'000, 'z');
  for (std::size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  FakeRuntimeApi api(
      {.next_replies = {chunked_next_reply("c1", R"({"chunked":true})", 5),
                        // an interim 100 response first, then chunks
                        "HTTP/1.1 100 Continue\r\n\r\n" + chunked_next_reply("c2", big, 4093),
                        chunked_next_reply("c3", "", 1)}});
  std::vector<std::string> payloads;
  std::vector<std::string> ids;
  std::vector<std::int64_t> deadlines;
  run(api, [&](const Invocation& inv) {
    payloads.emplace_back(inv.payload);
    ids.emplace_back(inv.request_id);  // sent as a lowercase header name
    deadlines.push_back(inv.deadline_ms);
    return echo(inv);
  });
  api.stop();
  EXPECT_EQ(ids, (std::vector<std::string>{"c1", "c2", "c3"}));
  EXPECT_EQ(deadlines, (std::vector<std::int64_t>{0, 0, 0}));  // no deadline header
  ASSERT_EQ(payloads.size(), 3u);
  EXPECT_EQ(payloads[0], R"({"chunked":true})");
  EXPECT_EQ(payloads[1], big);
  EXPECT_EQ(payloads[2], "");
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 7u);
  EXPECT_EQ(reqs[1].body, R"({"chunked":true})");
  EXPECT_EQ(reqs[3].body, big);
  EXPECT_EQ(reqs[5].body, "");
  EXPECT_EQ(reqs[5].header("Content-Length"), "0");
  EXPECT_EQ(api.connections(), 1);
}

TEST(RuntimeCpp, KeepsOneConnectionForManyInvokes) {
  FakeRuntimeApi::Options options;
  for (int i = 0; i < 200; ++i) {
    options.next_replies.push_back(next_reply("id-" + std::to_string(i), std::to_string(i)));
  }
  FakeRuntimeApi api(std::move(options));
  int calls = 0;
  run_counting(api, calls);
  api.stop();
  EXPECT_EQ(calls, 200);
  EXPECT_EQ(api.connections(), 1);
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 401u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(reqs[2 * i + 1].target, response_target("id-" + std::to_string(i)));
    EXPECT_EQ(reqs[2 * i + 1].body, std::to_string(i));
  }
}

TEST(RuntimeCpp, ReconnectsOnceWhenTheServerClosedTheConnection) {
  // Request 1 (the first POST) is answered, then the server silently closes: the next GET hits
  // a dead socket and must be retried on a fresh connection. Request 4 (the second POST) is
  // answered with "Connection: close"-less close as well.
  FakeRuntimeApi api(
      {.next_replies = {next_reply("a", "1"), next_reply("b", "2"), next_reply("c", "3")},
       .close_after = {1, 3}});
  int calls = 0;
  const int rc = run_counting(api, calls);
  api.stop();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(api.connections(), 3);
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 7u);
  EXPECT_EQ(reqs[1].connection, 1);
  EXPECT_EQ(reqs[2].connection, 2);  // the retried GET
  EXPECT_EQ(reqs[2].target, kNext);
  EXPECT_EQ(reqs[3].body, "2");
  EXPECT_EQ(reqs[4].connection, 3);
  EXPECT_EQ(reqs[5].body, "3");
}

TEST(RuntimeCpp, RetriesAPostWithItsBorrowedBody) {
  // The server closes right after answering /next: the POST finds a dead socket, is retried on
  // a new connection, and must still carry the payload it borrows from the receive buffer.
  FakeRuntimeApi api(
      {.next_replies = {next_reply("a", R"({"first":1})"), next_reply("b", R"({"second":2})")},
       .close_after = {0, 2}});
  EXPECT_EQ(run(api, echo), 1);
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[1].connection, 2);
  EXPECT_EQ(reqs[1].target, response_target("a"));
  EXPECT_EQ(reqs[1].body, R"({"first":1})");
  EXPECT_EQ(reqs[3].connection, 3);
  EXPECT_EQ(reqs[3].body, R"({"second":2})");
}

TEST(RuntimeCpp, HonoursConnectionClose) {
  FakeRuntimeApi api(
      {.next_replies = {next_reply("a", "1", "Connection: close\r\n"), next_reply("b", "2")}});
  run(api, echo);
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].connection, 1);
  EXPECT_EQ(reqs[1].connection, 2);  // new connection for the POST, borrowed body intact
  EXPECT_EQ(reqs[1].body, "1");
  EXPECT_EQ(reqs[3].body, "2");
}

TEST(RuntimeCpp, StopsWhenTheRetryFailsToo) {
  // One good invoke, then every GET is read and dropped without a reply.
  FakeRuntimeApi api({.next_replies = {next_reply("a", "1")}, .drop = {2, 3, 4}});
  const int rc = run(api, echo);
  api.stop();
  EXPECT_EQ(rc, 1);
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 4u);  // GET, POST, GET (dropped), retried GET (dropped)
  EXPECT_EQ(reqs[2].connection, 1);
  EXPECT_EQ(reqs[3].connection, 2);
}

TEST(RuntimeCpp, MissingRequestIdEndsTheLoopWithoutPosting) {
  FakeRuntimeApi api({.next_replies = {next_reply("", "{}")}});
  int calls = 0;
  const int rc = run_counting(api, calls);
  api.stop();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(api.requests().size(), 1u);
}

TEST(RuntimeCpp, UnsafeRequestIdEndsTheLoop) {
  FakeRuntimeApi api({.next_replies = {next_reply("../../init/error", "{}")}});
  EXPECT_EQ(run(api, echo), 1);
  api.stop();
  EXPECT_EQ(api.requests().size(), 1u);
}

TEST(RuntimeCpp, NonSuccessPostEndsTheLoop) {
  FakeRuntimeApi api(
      {.next_replies = {next_reply("a", "1"), next_reply("b", "2")}, .post_status = 400});
  int calls = 0;
  EXPECT_EQ(run_counting(api, calls), 1);
  api.stop();
  EXPECT_EQ(calls, 1);  // the event answering the pipelined GET is never taken
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].target, kNext);
}

TEST(RuntimeCpp, PipelinesTheNextGetBehindEachPost) {
  FakeRuntimeApi api({.next_replies = {next_reply("a", "1"), next_reply("b", "2")}});
  run(api, echo);
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_FALSE(reqs[0].pipelined);
  for (std::size_t i : {1u, 3u}) {
    EXPECT_EQ(reqs[i].method, "POST");
    EXPECT_FALSE(reqs[i].pipelined);
    EXPECT_EQ(reqs[i + 1].target, kNext);
    EXPECT_TRUE(reqs[i + 1].pipelined) << i;  // sent before the POST was answered
    EXPECT_EQ(reqs[i + 1].connection, 1);
  }
}

TEST(RuntimeCpp, RejectsAmbiguousFraming) {
  FakeRuntimeApi api(
      {.next_replies = {
           "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: a\r\n"
           "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"}});
  int calls = 0;
  EXPECT_EQ(run_counting(api, calls), 1);
  api.stop();
  EXPECT_EQ(calls, 0);
}

TEST(RuntimeCpp, EchoesFiveMegabytes) {
  std::string payload(5 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('A' + i % 53);
  FakeRuntimeApi api({.next_replies = {next_reply("big", payload), next_reply("small", "{}")}});
  std::size_t seen = 0;
  run(api, [&](const Invocation& inv) {
    seen += inv.payload.size();
    return echo(inv);
  });
  api.stop();
  EXPECT_EQ(seen, payload.size() + 2);
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[1].header("Content-Length"), std::to_string(payload.size()));
  EXPECT_TRUE(reqs[1].body == payload);  // EXPECT_EQ would print 5 MB on failure
  EXPECT_EQ(reqs[3].body, "{}");
}

TEST(RuntimeCpp, PostsInitErrors) {
  FakeRuntimeApi api({});
  EXPECT_TRUE(post_init_error("Runtime.InitError", "cannot open \"db\"",
                              RunOptions{.runtime_api = api.address()}));
  api.stop();
  const auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/2018-06-01/runtime/init/error");
  EXPECT_EQ(reqs[0].header("Lambda-Runtime-Function-Error-Type"), "Runtime.InitError");
  EXPECT_EQ(
      reqs[0].body,
      R"({"errorMessage":"cannot open \"db\"","errorType":"Runtime.InitError","stackTrace":[]})");
}

TEST(RuntimeCpp, MissingRuntimeApiVariableFails) {
  const char* saved = std::getenv("AWS_LAMBDA_RUNTIME_API");
  const std::string saved_value = saved ? saved : "";
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  EXPECT_EQ(run_handler(echo), 1);
  EXPECT_FALSE(post_init_error("Runtime.InitError", "x"));
  EXPECT_EQ(run_handler(echo, RunOptions{.runtime_api = "no-port"}), 1);
  if (saved) ::setenv("AWS_LAMBDA_RUNTIME_API", saved_value.c_str(), 1);
}

TEST(RuntimeCpp, ConnectionRefusedFails) {
  // A bound socket that never listens: connecting to its port is refused, and the port cannot
  // be taken by anyone else meanwhile.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  auto* sa = reinterpret_cast<sockaddr*>(&addr);  // the sockaddr API
  ASSERT_EQ(::bind(fd, sa, sizeof addr), 0);
  ASSERT_EQ(::getsockname(fd, sa, &len), 0);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  EXPECT_EQ(run_handler(echo, RunOptions{.runtime_api = address}), 1);
  ::close(fd);
}

TEST(RuntimeCpp, ReadsTheEnvironmentVariable) {
  FakeRuntimeApi api({.next_replies = {next_reply("env", "{}")}});
  ::setenv("AWS_LAMBDA_RUNTIME_API", api.address().c_str(), 1);
  EXPECT_EQ(run_handler(echo), 1);
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  api.stop();
  ASSERT_EQ(api.requests().size(), 3u);
  EXPECT_EQ(api.requests()[1].target, response_target("env"));
}

TEST(RuntimeCpp, RemainingTimeIsClamped) {
  EXPECT_EQ(Invocation{}.remaining_ms(), 0);
  EXPECT_EQ(Invocation{.deadline_ms = 1}.remaining_ms(), 0);
  EXPECT_GT(Invocation{.deadline_ms = 4102444800000}.remaining_ms(), 0);
}

}  // namespace
}  // namespace lambent::runtime
