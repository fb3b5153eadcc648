// The environment state machine and the pool's scheduling (ARCHITECTURE.md
// "Execution environments"; LAMBDA-COMPAT.md §3, §4.5, §5), driven through a
// fake spawner with the test playing the runtime over the real Runtime API.
#include <signal.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <set>

#include "core/time.hpp"
#include "engine_fixture.hpp"
#include "runtimeapi/endpoint.hpp"

namespace lambent::engine {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(PoolTest, ColdInvokeDeliversTheEventWithEveryHeaderAndReturnsTheResponseVerbatim) {
  const std::string context = R"({"custom":{"k":"v"},"client":{"app_title":"t"}})";
  const std::string cognito = R"({"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"})";
  const std::string trace =
      "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
  const std::string arn = "arn:aws:lambda:us-east-1:000000000000:function:fn:live";
  auto call = invoke(R"({"hello": "wörld"})", [&](Invocation& i) {
    i.client_context = context;
    i.cognito_identity = cognito;
    i.trace_id = trace;
    i.invoked_arn = arn;
  });
  auto rt = runtime(0);
  EXPECT_EQ(spawner_.spawned(), 1);
  EXPECT_FALSE(call.done());

  const auto before_ms = unix_ms_now();
  const auto next = rt->next();
  const auto after_ms = unix_ms_now();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u);
  EXPECT_EQ(next->body(), R"({"hello": "wörld"})");
  EXPECT_EQ(header(*next, "Content-Type"), "application/json");
  EXPECT_EQ(header(*next, "Lambda-Runtime-Aws-Request-Id"), call.inv->request_id);
  EXPECT_EQ(header(*next, "Lambda-Runtime-Invoked-Function-Arn"), arn);
  EXPECT_EQ(header(*next, "Lambda-Runtime-Trace-Id"), trace);
  EXPECT_EQ(header(*next, "Lambda-Runtime-Client-Context"), context);
  EXPECT_EQ(header(*next, "Lambda-Runtime-Cognito-Identity"), cognito);
  const auto deadline = std::stoll(header(*next, "Lambda-Runtime-Deadline-Ms"));
  EXPECT_GE(deadline, before_ms + 3000);
  EXPECT_LE(deadline, after_ms + 3000);
  EXPECT_FALSE(call.done());

  const std::string body = "{\"result\": [1, 2.50, \"\\u00e9\"],  \"spaces\" : true }";
  const auto posted = rt->respond(call.inv->request_id, body);
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->result_int(), 202u);
  EXPECT_EQ(posted->body(), R"({"status":"OK"})");
  ASSERT_TRUE(wait_done(call));
  EXPECT_FALSE(call.result().error.has_value());
  EXPECT_FALSE(call.result().function_error);
  EXPECT_EQ(call.result().payload, body);
  EXPECT_EQ(call.result().executed_version, "$LATEST");
  EXPECT_EQ(call.result().log_tail, "");  // not asked for
}

TEST_F(PoolTest, OptionalNextHeadersAreOmittedWhenEmpty) {
  auto call = invoke();
  auto rt = runtime(0);
  const auto next = rt->next();
  ASSERT_TRUE(next);
  for (const char* absent : {"Lambda-Runtime-Trace-Id", "Lambda-Runtime-Client-Context",
                             "Lambda-Runtime-Cognito-Identity"})
    EXPECT_EQ(next->find(absent), next->end()) << absent;
}

TEST_F(PoolTest, SandboxSpecCarriesTheFunctionsEnvironment) {
  auto call = invoke();
  ASSERT_TRUE(wait_spawned(1));
  const auto& sp = spawner_.env(0)->spec;
  EXPECT_EQ(sp.function_name, "fn");
  EXPECT_EQ(sp.task_root, dir_.path());
  EXPECT_EQ(sp.memory_bytes, 128ull << 20);
  EXPECT_EQ(sp.tmp_bytes, 512ull << 20);
  ASSERT_EQ(sp.argv.size(), 2u);
  EXPECT_EQ(sp.argv[0], "/usr/bin/python3");
  EXPECT_EQ(sp.argv[1], "/var/runtime/python/bootstrap.py");
  const std::set<std::string> env(sp.env.begin(), sp.env.end());
  for (const char* kv :
       {"USER_VAR=1", "_HANDLER=app.handler", "AWS_LAMBDA_FUNCTION_NAME=fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand", "AWS_REGION=us-east-1",
        "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/fn", "AWS_EXECUTION_ENV=AWS_Lambda_python3.12",
        "TZ=:UTC"})
    EXPECT_TRUE(env.contains(kv)) << kv;
  for (const auto& kv : sp.env) EXPECT_FALSE(kv.starts_with("AWS_LAMBDA_RUNTIME_API=")) << kv;
}

TEST_F(PoolTest, UserValuesOfUnreservedVariablesWinOverTheDefaults) {
  auto cfg = config();
  cfg->runtime = "nodejs20.x";  // the only runtime with a NODE_PATH of its own
  cfg->environment = {{"TZ", "Asia/Tokyo"},
                      {"LANG", "C.UTF-8"},
                      {"PATH", "/var/task/bin:/usr/bin"},
                      {"LD_LIBRARY_PATH", "/var/task/lib"},
                      {"NODE_PATH", "/var/task/node_modules"},
                      {"PYTHONPATH", "/var/task/vendor"}};
  pool_->reconfigure(VersionSpec{cfg, dir_.path(), 0});
  auto call = invoke();
  ASSERT_TRUE(wait_spawned(1));
  std::map<std::string, std::string> env;
  for (const auto& kv : spawner_.env(0)->spec.env) {
    const auto eq = kv.find('=');
    ASSERT_TRUE(env.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) << "twice: " << kv;
  }
  for (const auto& [k, v] : cfg->environment) EXPECT_EQ(env[k], v) << k;
}

TEST_F(PoolTest, WarmEnvironmentIsReused) {
  auto first = invoke();
  auto rt = runtime(0);
  serve(*rt, first, R"("one")");
  EXPECT_EQ(first.result().payload, R"("one")");

  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return pool_->stats().idle == 1; }));
  auto second = invoke(R"({"n":2})");
  ASSERT_TRUE(rt->api().wait());
  const auto& next = rt->api().response();
  EXPECT_EQ(next.body(), R"({"n":2})");
  EXPECT_EQ(header(next, "Lambda-Runtime-Aws-Request-Id"), second.inv->request_id);
  ASSERT_TRUE(rt->respond(second.inv->request_id, R"("two")"));
  ASSERT_TRUE(wait_done(second));
  EXPECT_EQ(second.result().payload, R"("two")");
  EXPECT_EQ(spawner_.attempts(), 1) << "a warm environment must be reused, not respawned";
}

TEST_F(PoolTest, AnEnvironmentCountsAsWorkingFromItsStartUntilItsInvocationIsAnswered) {
  auto first = invoke();
  ASSERT_TRUE(wait_spawned(1));
  EXPECT_EQ(placement_->environments(0), 1);
  EXPECT_EQ(placement_->working(0), 1);  // starting for a waiting invoke
  auto rt = runtime(0);
  serve(*rt, first);
  EXPECT_EQ(placement_->working(0), 0);  // answered
  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return pool_->stats().idle == 1; }));
  EXPECT_EQ(placement_->working(0), 0);
  auto second = invoke();
  ASSERT_TRUE(rt->api().wait());
  EXPECT_EQ(placement_->working(0), 1);  // running the second
  rt->env().exit_code(1);                // and dying in it
  ASSERT_TRUE(wait_done(second));
  ASSERT_TRUE(pump_until(ioc(), [&] { return placement_->environments(0) == 0; }));
  EXPECT_EQ(placement_->working(0), 0);
}

TEST_F(PoolTest, AFailedSpawnLeavesNothingCounted) {
  for (int i = 0; i < 2; ++i)  // and its retry for the waiting invoke
    spawner_.fail_next(make_error(Errc::kInternal, "no sandbox"));
  auto call = invoke();
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  ASSERT_TRUE(pump_until(ioc(), [&] { return placement_->environments(0) == 0; }));
  EXPECT_EQ(placement_->working(0), 0);
}

TEST_F(PoolTest, InvokeArrivingWhileTheEnvironmentFinishesWaitsForIt) {
  auto first = invoke();
  auto rt = runtime(0);
  serve(*rt, first);
  // The runtime has not asked for the next event yet: the invoke waits for it
  // rather than starting a second environment.
  auto second = invoke();
  pump_ready(ioc());
  EXPECT_EQ(spawner_.attempts(), 1);
  EXPECT_EQ(pool_->stats().waiting, 1);
  serve(*rt, second);
  EXPECT_EQ(spawner_.attempts(), 1);
}

TEST_F(PoolTest, OneInvocationAtATimeTwoConcurrentInvokesSpawnTwoEnvironments) {
  auto a = invoke(R"("a")");
  auto b = invoke(R"("b")");
  ASSERT_TRUE(wait_spawned(2));
  auto rt0 = runtime(0);
  auto rt1 = runtime(1);
  const auto n0 = rt0->next();
  const auto n1 = rt1->next();
  ASSERT_TRUE(n0);
  ASSERT_TRUE(n1);
  const std::set<std::string> ids = {header(*n0, "Lambda-Runtime-Aws-Request-Id"),
                                     header(*n1, "Lambda-Runtime-Aws-Request-Id")};
  EXPECT_EQ(ids, (std::set<std::string>{a.inv->request_id, b.inv->request_id}));
  EXPECT_EQ(std::set<std::string>({n0->body(), n1->body()}),
            (std::set<std::string>{R"("a")", R"("b")"}));
  ASSERT_TRUE(rt0->respond(header(*n0, "Lambda-Runtime-Aws-Request-Id"), "0"));
  ASSERT_TRUE(rt1->respond(header(*n1, "Lambda-Runtime-Aws-Request-Id"), "1"));
  ASSERT_TRUE(wait_done(a));
  ASSERT_TRUE(wait_done(b));
  EXPECT_EQ(spawner_.attempts(), 2);
}

TEST_F(PoolTest, ErrorPostIsAFunctionErrorWithTheBodyVerbatim) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  const std::string body =
      R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":["  File \"app.py\", line 1"]})";
  const auto res = rt->error(call.inv->request_id, body, "ValueError");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  EXPECT_FALSE(call.result().error.has_value());
  EXPECT_EQ(call.result().payload, body);

  // The environment survives a handled error and serves the next invoke.
  auto again = invoke();
  serve(*rt, again);
  EXPECT_EQ(spawner_.attempts(), 1);
}

TEST_F(PoolTest, EmptyErrorBodyBecomesRuntimeUnknown) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  ASSERT_TRUE(rt->error(call.inv->request_id, ""));
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  EXPECT_EQ(call.payload_json().at("errorType"), "Runtime.Unknown");
}

TEST_F(PoolTest, WrongRequestIdIs400AndTheInvocationStaysPending) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  for (auto* post : {+[](FakeRuntime& r) { return r.respond("not-the-id", "{}"); },
                     +[](FakeRuntime& r) { return r.error("not-the-id", "{}"); }}) {
    const auto res = post(*rt);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 400u);
    const auto body = json::parse(res->body());
    EXPECT_EQ(body.at("errorType"), "InvalidRequestID");
    EXPECT_EQ(body.at("errorMessage"), "Invalid request ID");
  }
  pump_ready(ioc());
  EXPECT_FALSE(call.done());
  const auto ok = rt->respond(call.inv->request_id, R"("right")");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->result_int(), 202u);
  ASSERT_TRUE(wait_done(call));
  EXPECT_EQ(call.result().payload, R"("right")");
  // Answered once: a second answer for the same id is refused.
  const auto dup = rt->respond(call.inv->request_id, R"("again")");
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->result_int(), 400u);
}

TEST_F(PoolTest, NextWhileOneIsParkedOrWhileBusyIs403) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  FakeRuntime intruder(ioc(), spawner_.env(0));
  auto res = intruder.next();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403u);
  EXPECT_EQ(json::parse(res->body()).at("errorType"), "InvalidStateTransition");
  EXPECT_FALSE(call.done());

  ASSERT_TRUE(rt->respond(call.inv->request_id, "1"));
  ASSERT_TRUE(wait_done(call));
  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return pool_->stats().idle == 1; }));
  res = intruder.next();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403u);
  // The first /next stays parked and still gets the next event.
  auto second = invoke();
  ASSERT_TRUE(rt->api().wait());
  EXPECT_EQ(header(rt->api().response(), "Lambda-Runtime-Aws-Request-Id"), second.inv->request_id);
}

TEST_F(PoolTest, InitErrorThenExitFailsTheWaitingInvokeWithTheRuntimesError) {
  auto call = invoke(R"({"n":1})", [](Invocation& inv) { inv.want_tail = true; });
  const std::string body =
      R"({"errorMessage":"Unable to import module 'app': No module named 'app'","errorType":"Runtime.ImportModuleError","stackTrace":[]})";
  // As on Lambda, a failed init is tried once more as part of the invoke; the invoke gets the
  // error of that second attempt.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto rt = runtime(attempt);
    const auto res = rt->init_error(body, "Runtime.ImportModuleError");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 202u);
    pump_ready(ioc());
    EXPECT_FALSE(call.done()) << "the invoke waits for the runtime to exit";
    rt->env().exit_code(1);
    if (attempt == 0) {
      ASSERT_TRUE(wait_spawned(2)) << "the init was not retried";
    }
  }
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  EXPECT_FALSE(call.result().error.has_value());
  EXPECT_EQ(call.result().payload, body);
  pump_ready(ioc());
  EXPECT_EQ(spawner_.attempts(), 2) << "nobody waits: no new environment";
  const auto init_reports = log_lines_starting("INIT_REPORT");
  ASSERT_EQ(init_reports.size(), 2u);
  EXPECT_THAT(init_reports[0],
              HasSubstr("Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError"));
  EXPECT_THAT(init_reports[1],
              HasSubstr("Phase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError"));
  // The retried init was the invoke's: it has START, END and REPORT, and they are its tail.
  const auto id = call.inv->request_id;
  const auto reports = log_lines_starting("REPORT RequestId: " + id);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0], HasSubstr("\tStatus: error\tError Type: Runtime.ImportModuleError\t"));
  const auto& tail = call.result().log_tail;
  EXPECT_THAT(tail, HasSubstr("Phase: invoke\tStatus: error"));
  EXPECT_THAT(tail, HasSubstr("START RequestId: " + id));
  EXPECT_THAT(tail, HasSubstr("END RequestId: " + id));
  EXPECT_THAT(tail, HasSubstr("REPORT RequestId: " + id));
  EXPECT_EQ(tail.find("Phase: init\t"), std::string::npos) << "the first init was not the invoke's";
}

TEST_F(PoolTest, InitErrorOutsideInitIs403) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  const auto res = rt->init_error("{}", "X");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403u);
  EXPECT_FALSE(call.done());
}

TEST_F(PoolTest, CrashDuringInitIsAnExitError) {
  auto call = invoke();
  runtime(0)->env().exit_code(2);
  runtime(1)->env().exit_code(2);  // the retry, in the invoke phase
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Runtime.ExitError");
  EXPECT_EQ(doc.at("errorMessage"), "RequestId: " + call.inv->request_id +
                                        " Error: Runtime exited with error: exit status 2");
}

TEST_F(PoolTest, InitTimeoutFailsTheWaitingInvokeAfterARetryInTheInvokePhase) {
  settings_.init_timeout = 50ms;  // the real timers, kept short
  pool_ = std::make_shared<FunctionPool>(spec(/*timeout_s=*/1), shards_, deps());
  auto call = invoke();
  ASSERT_TRUE(wait_done(call, 5s));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Sandbox.Timedout");
  // The retry was bounded by the function's timeout, not the init timeout.
  EXPECT_EQ(doc.at("errorMessage"),
            "RequestId: " + call.inv->request_id + " Error: Task timed out after 1.00 seconds");
  EXPECT_EQ(spawner_.attempts(), 2);
  EXPECT_GE(spawner_.env(0)->kills.load(), 1);
  EXPECT_GE(spawner_.env(1)->kills.load(), 1);
  const auto init_reports = log_lines_starting("INIT_REPORT");
  ASSERT_EQ(init_reports.size(), 2u);
  EXPECT_THAT(init_reports[0], HasSubstr("Phase: init\tStatus: timeout"));
  EXPECT_THAT(init_reports[1], HasSubstr("Phase: invoke\tStatus: timeout"));
}

TEST_F(PoolTest, AnInitLongerThanTheInitTimeoutSucceedsInTheInvokePhase) {
  // Lambda: "If all three tasks do not complete within 10 seconds, Lambda retries the Init
  // phase at the time of the first function invocation with the configured function timeout."
  settings_.init_timeout = 50ms;
  pool_ = std::make_shared<FunctionPool>(spec(/*timeout_s=*/3), shards_, deps());
  auto call = invoke();
  auto slow = runtime(0);  // never asks for /next
  auto rt = runtime(1);    // the retry
  // 200 ms of the retried init pass before its runtime asks for the invoke.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      ioc(), [&] { return std::chrono::steady_clock::now() - started > 200ms; }, 1s));
  auto next = rt->next();
  ASSERT_TRUE(next);
  ASSERT_EQ(header(*next, "Lambda-Runtime-Aws-Request-Id"), call.inv->request_id);
  // The handler has what the init left of the 3-s timeout.
  const auto deadline = std::stoll(std::string(header(*next, "Lambda-Runtime-Deadline-Ms")));
  EXPECT_LT(deadline - unix_ms_now(), 3000 - 200);
  ASSERT_TRUE(rt->respond(call.inv->request_id, R"("late but fine")"));
  ASSERT_TRUE(wait_done(call));
  EXPECT_FALSE(call.result().function_error);
  EXPECT_EQ(call.result().payload, R"("late but fine")");
  EXPECT_GE(spawner_.env(0)->kills.load(), 1);
}

TEST_F(PoolTest, CrashMidInvokeIsRuntimeExitError) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().exit_code(1);
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Runtime.ExitError");
  EXPECT_EQ(doc.at("errorMessage"), "RequestId: " + call.inv->request_id +
                                        " Error: Runtime exited with error: exit status 1");
  const auto reports = log_lines_starting("REPORT");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0], HasSubstr("Status: error\tError Type: Runtime.ExitError"));

  // A crashed environment is never reused.
  auto next_call = invoke();
  auto rt1 = runtime(1);
  serve(*rt1, next_call);
  EXPECT_EQ(spawner_.attempts(), 2);
}

TEST_F(PoolTest, CleanExitMidInvokeHasNoReason) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().exit_code(0);
  ASSERT_TRUE(wait_done(call));
  EXPECT_EQ(
      call.payload_json().at("errorMessage"),
      "RequestId: " + call.inv->request_id + " Error: Runtime exited without providing a reason");
}

TEST_F(PoolTest, OomKillIsRuntimeOutOfMemory) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().exit_signal(SIGKILL, /*oom=*/true);
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Runtime.OutOfMemory");
  EXPECT_THAT(doc.at("errorMessage").get<std::string>(),
              StartsWith("RequestId: " + call.inv->request_id +
                         " Error: Runtime exited with error: signal: killed"));
  const auto reports = log_lines_starting("REPORT");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0], HasSubstr("Error Type: Runtime.OutOfMemory"));
}

TEST_F(PoolTest, SignalIsNamedInTheExitError) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().exit_signal(SIGKILL);
  ASSERT_TRUE(wait_done(call));
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Runtime.ExitError");
  EXPECT_EQ(doc.at("errorMessage"), "RequestId: " + call.inv->request_id +
                                        " Error: Runtime exited with error: signal: killed");

  auto segv = invoke();
  auto rt1 = runtime(1);
  ASSERT_TRUE(rt1->next());
  rt1->env().exit_signal(SIGSEGV);
  ASSERT_TRUE(wait_done(segv));
  EXPECT_THAT(segv.payload_json().at("errorMessage").get<std::string>(),
              HasSubstr("signal: segmentation fault"));
}

TEST_F(PoolTest, TimeoutKillsTheEnvironmentWhichIsNeverReused) {
  pool_->reconfigure(spec(/*timeout_s=*/1, "rev-timeout"));
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  // The real 1 s timer (Timeout is whole seconds); bounded wait, no sleep.
  ASSERT_TRUE(wait_done(call, 3s));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Sandbox.Timedout");
  EXPECT_EQ(doc.at("errorMessage"),
            "RequestId: " + call.inv->request_id + " Error: Task timed out after 1.00 seconds");
  EXPECT_GE(rt->env().kills.load(), 1);
  const auto msgs = log_messages();
  EXPECT_GE(index_of(msgs, call.inv->request_id + " Task timed out after 1.00 seconds"), 0);
  const auto reports = log_lines_starting("REPORT");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0], HasSubstr("Status: timeout"));
  EXPECT_THAT(reports[0], HasSubstr("\tBilled Duration: 1000 ms\t"));  // the timeout itself

  // A late answer changes nothing, and the next invoke gets a new environment.
  const auto late = rt->respond(call.inv->request_id, R"("late")");
  if (late) {
    EXPECT_NE(late->result_int(), 202u);
  }
  EXPECT_EQ(call.payload_json().at("errorType"), "Sandbox.Timedout");
  auto next_call = invoke();
  auto rt1 = runtime(1);
  serve(*rt1, next_call);
  EXPECT_EQ(spawner_.attempts(), 2);
}

TEST_F(PoolTest, ReconfigureStopsIdleEnvironmentsAndTheNextInvokeSpawnsAFreshOne) {
  auto first = invoke();
  auto rt = runtime(0);
  serve(*rt, first);
  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return pool_->stats().idle == 1; }));

  pool_->reconfigure(spec(3, "rev-2"));
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->env().kills.load() >= 1; }));
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->api().finished(); }));
  EXPECT_FALSE(rt->api().has_response()) << "the parked /next of a stopped environment ends";
  EXPECT_EQ(pool_->stats().idle, 0);

  auto second = invoke();
  auto rt1 = runtime(1);
  serve(*rt1, second);
  EXPECT_EQ(spawner_.attempts(), 2);
}

TEST_F(PoolTest, BusyEnvironmentOfAnOldGenerationRetiresAfterItsResponse) {
  auto first = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  pool_->reconfigure(spec(3, "rev-2"));
  pump_ready(ioc());
  EXPECT_EQ(rt->env().kills.load(), 0) << "a busy environment finishes its invocation";

  ASSERT_TRUE(rt->respond(first.inv->request_id, R"("old code")"));
  ASSERT_TRUE(wait_done(first));
  EXPECT_EQ(first.result().payload, R"("old code")");

  // An invoke arriving now must not reach the old environment.
  auto second = invoke();
  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->env().kills.load() >= 1; }));
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->api().finished(); }));
  EXPECT_FALSE(rt->api().has_response());
  auto rt1 = runtime(1);
  serve(*rt1, second, R"("new code")");
  EXPECT_EQ(second.result().payload, R"("new code")");
}

TEST_F(PoolTest, StopFailsWaitingInvokesAndLaterOnes) {
  auto call = invoke();
  ASSERT_TRUE(wait_spawned(1));
  pool_->stop(make_error(Errc::kUnavailable, "Lambent is shutting down"));
  ASSERT_TRUE(wait_done(call));
  ASSERT_TRUE(call.result().error.has_value());
  EXPECT_EQ(call.result().error->code, Errc::kUnavailable);
  EXPECT_EQ(call.result().error->message, "Lambent is shutting down");
  ASSERT_TRUE(pump_until(ioc(), [&] { return spawner_.env(0)->kills.load() >= 1; }));

  auto later = invoke();
  EXPECT_TRUE(later.done()) << "a stopped pool refuses at once";
  ASSERT_TRUE(later.result().error.has_value());
  EXPECT_EQ(later.result().error->code, Errc::kUnavailable);
  EXPECT_EQ(spawner_.attempts(), 1);
}

TEST_F(PoolTest, StopFailsTheBusyInvocation) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  pool_->stop(make_error(Errc::kNotFound, "Function not found: fn"));
  ASSERT_TRUE(wait_done(call));
  ASSERT_TRUE(call.result().error.has_value());
  EXPECT_EQ(call.result().error->code, Errc::kUnavailable);
  EXPECT_THAT(call.result().error->message, HasSubstr("Function not found: fn"));
  EXPECT_GE(rt->env().kills.load(), 1);
}

TEST_F(PoolTest, ReapStopsOnlyEnvironmentsIdlePastKeepWarm) {
  auto call = invoke();
  auto rt = runtime(0);
  serve(*rt, call);
  rt->send_next();
  ASSERT_TRUE(pump_until(ioc(), [&] { return pool_->stats().idle == 1; }));

  pool_->reap(std::chrono::steady_clock::now(), std::chrono::hours(1));
  pump_ready(ioc());
  EXPECT_EQ(pool_->stats().idle, 1);
  EXPECT_EQ(rt->env().kills.load(), 0);

  pool_->reap(std::chrono::steady_clock::now(), 0ms);
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->env().kills.load() >= 1; }));
  EXPECT_EQ(pool_->stats().idle, 0);
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->api().finished(); }));
  EXPECT_FALSE(rt->api().has_response());

  auto again = invoke();
  auto rt1 = runtime(1);
  serve(*rt1, again);
}

TEST_F(PoolTest, ReportHasInitDurationOnlyOnTheFirstInvoke) {
  auto first = invoke();
  auto rt = runtime(0);
  rt->env().peak_memory_bytes = (50ull << 20) + 1;
  serve(*rt, first);
  auto second = invoke();
  serve(*rt, second);

  const auto reports = log_lines_starting("REPORT");
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_THAT(reports[0],
              StartsWith("REPORT RequestId: " + first.inv->request_id + "\tDuration: "));
  EXPECT_THAT(reports[1],
              StartsWith("REPORT RequestId: " + second.inv->request_id + "\tDuration: "));
  for (const auto& r : reports) {
    EXPECT_THAT(r, HasSubstr(" ms\tBilled Duration: "));
    EXPECT_THAT(r, HasSubstr("\tMemory Size: 128 MB\t"));
    EXPECT_THAT(r, HasSubstr("\tMax Memory Used: 51 MB\t"));
  }
  EXPECT_THAT(reports[0], HasSubstr("\tInit Duration: "));
  EXPECT_THAT(reports[1], ::testing::Not(HasSubstr("Init Duration")));
  const auto init_start = log_lines_starting("INIT_START");
  ASSERT_EQ(init_start.size(), 1u);
  EXPECT_THAT(init_start[0], HasSubstr("Runtime Version: python:3.11.2"));
}

TEST_F(PoolTest, OutputWrittenBeforeTheResponseLandsBetweenStartAndEnd) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().write_output("first line\nsecond line\r\nthird");
  rt->env().write_output(" line\n");
  ASSERT_TRUE(rt->respond(call.inv->request_id, "null"));
  ASSERT_TRUE(wait_done(call));

  const auto msgs = log_messages();
  const int start =
      index_of(msgs, "START RequestId: " + call.inv->request_id + " Version: $LATEST");
  const int a = index_of(msgs, "first line");
  const int b = index_of(msgs, "second line");
  const int c = index_of(msgs, "third line");
  const int end = index_of(msgs, "END RequestId: " + call.inv->request_id);
  const int report = index_of(msgs, "REPORT RequestId: " + call.inv->request_id);
  ASSERT_GE(start, 0);
  EXPECT_LT(start, a);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, end);
  EXPECT_LT(end, report);
  EXPECT_EQ(msgs[static_cast<std::size_t>(b)], "second line") << "CR of CRLF is dropped";
  EXPECT_EQ(msgs[static_cast<std::size_t>(c)], "third line") << "split writes form one line";
  EXPECT_EQ(msgs[static_cast<std::size_t>(end)], "END RequestId: " + call.inv->request_id);
}

TEST_F(PoolTest, TailIsTheLastFourKilobytesIncludingEndAndReport) {
  auto small = invoke("{}", [](Invocation& i) { i.want_tail = true; });
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  rt->env().write_output("hello from the handler\n");
  ASSERT_TRUE(rt->respond(small.inv->request_id, "1"));
  ASSERT_TRUE(wait_done(small));
  const auto& tail = small.result().log_tail;
  EXPECT_THAT(tail, StartsWith("START RequestId: " + small.inv->request_id));
  EXPECT_THAT(tail, HasSubstr("\nhello from the handler\nEND RequestId: " + small.inv->request_id +
                              "\nREPORT RequestId: " + small.inv->request_id));
  EXPECT_EQ(tail.back(), '\n');

  auto big = invoke("{}", [](Invocation& i) { i.want_tail = true; });
  ASSERT_TRUE(rt->next());
  for (int i = 0; i < 200; ++i)
    rt->env().write_output(fmt::format("line {:04} {}\n", i, std::string(50, 'x')));
  ASSERT_TRUE(rt->respond(big.inv->request_id, "2"));
  ASSERT_TRUE(wait_done(big));
  const auto& t = big.result().log_tail;
  EXPECT_EQ(t.size(), 4096u);
  EXPECT_EQ(t.find("START RequestId"), std::string::npos);
  EXPECT_NE(t.find("line 0199 "), std::string::npos);
  EXPECT_NE(t.find("END RequestId: " + big.inv->request_id + "\n"), std::string::npos);
  const auto report = t.rfind("REPORT RequestId: " + big.inv->request_id);
  ASSERT_NE(report, std::string::npos);
  EXPECT_EQ(t.find('\n', report), t.size() - 1) << "the REPORT line ends the tail";
  EXPECT_EQ(small.result().log_tail.find("line 0"), std::string::npos);
}

TEST_F(PoolTest, SpawnFailureFailsTheWaiterWithSandboxFailure) {
  // Twice: the environment's, and that of the retry made for the waiting invoke.
  for (int i = 0; i < 2; ++i)
    spawner_.fail_next(make_error(Errc::kIo, "clone3: Resource temporarily unavailable"));
  auto call = invoke();
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Sandbox.Failure");
  EXPECT_EQ(doc.at("errorMessage"), "RequestId: " + call.inv->request_id +
                                        " Error: clone3: Resource temporarily unavailable");
  EXPECT_EQ(spawner_.attempts(), 2);
  EXPECT_EQ(spawner_.spawned(), 0);

  auto retry = invoke();
  auto rt = runtime(0);
  serve(*rt, retry);
}

TEST_F(PoolTest, AFailedSpawnIsRetriedForTheWaitingInvoke) {
  spawner_.fail_next(make_error(Errc::kIo, "clone3: Resource temporarily unavailable"));
  auto call = invoke();
  auto rt = runtime(0);  // the first environment that did start: the retry
  serve(*rt, call);
  EXPECT_FALSE(call.result().function_error);
  EXPECT_EQ(spawner_.attempts(), 2);
}

// Two pools sharing a budget that holds one 128-MB environment, evicting each other's idle
// ones as the engine's LRU eviction would.
struct BudgetPools {
  std::shared_ptr<MemoryBudget> budget;
  std::shared_ptr<FunctionPool> a, b;
};

BudgetPools budget_pools(EngineDeps d, const VersionSpec& spec, boost::asio::io_context& ioc,
                         http::Shards& shards) {
  BudgetPools p;
  p.budget = std::make_shared<MemoryBudget>(128, ioc);
  d.budget = p.budget;
  auto pools = std::make_shared<std::vector<std::weak_ptr<FunctionPool>>>();
  d.evict_idle = [pools](const FunctionPool* requester) {
    for (auto& w : *pools)
      if (auto pool = w.lock(); pool && pool.get() != requester && pool->evict_oldest_idle())
        return true;
    return false;
  };
  p.a = std::make_shared<FunctionPool>(spec, shards, d);
  p.b = std::make_shared<FunctionPool>(spec, shards, d);
  *pools = {p.a, p.b};
  return p;
}

TEST_F(PoolTest, ABusyFunctionGivesItsMemoryToAStarvingOneWithoutThrashing) {
  auto p = budget_pools(deps(), spec(), ioc(), shards_);
  auto a1 = invoke(R"("a1")", {}, p.a.get());
  auto rt_a = runtime(0);  // a's environment: the budget's only one
  serve(*rt_a, a1);
  // a2 waits for a's environment to ask again; a3 makes a want a second environment, and
  // wait for memory first.
  auto a2 = invoke(R"("a2")", {}, p.a.get());
  auto a3 = invoke(R"("a3")", {}, p.a.get());
  auto b1 = invoke(R"("b1")", {}, p.b.get());  // b has no environment, and no memory for one
  pump_ready(ioc());
  EXPECT_EQ(spawner_.attempts(), 1);
  // a's environment asks for its next invoke; a2 waits for it, but b starves: it stops, and
  // its memory goes to b (not back to a, whose own invokes have the environment they had).
  rt_a->send_next();
  auto rt_b = runtime(1);
  serve(*rt_b, b1);
  EXPECT_FALSE(a2.done());
  // b's environment goes idle; a, waiting for memory, evicts it and starts again.
  rt_b->send_next();
  auto rt_a2 = runtime(2);
  serve(*rt_a2, a2);
  serve(*rt_a2, a3);
  pump_ready(ioc());
  EXPECT_EQ(spawner_.attempts(), 3) << "one environment per turn, no more";
  EXPECT_GE(spawner_.env(0)->kills.load(), 1);
}

TEST_F(PoolTest, AnInitThatFailsUnderAFullBudgetIsRetriedOnceThenAnswered) {
  // The retry cannot reserve memory while the failed environment still holds it: it waits,
  // and is still the invoke's retry when it starts (not a fresh first attempt, which would
  // fail and retry again until the queue timeout).
  auto p = budget_pools(deps(), spec(), ioc(), shards_);
  auto call = invoke(R"({"n":1})", {}, p.a.get());
  runtime(0)->env().exit_code(1);
  runtime(1)->env().exit_code(1);
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  EXPECT_EQ(call.payload_json().at("errorType"), "Runtime.ExitError");
  pump_until(
      ioc(), [] { return false; }, 300ms);
  EXPECT_EQ(spawner_.attempts(), 2);
}

TEST_F(PoolTest, MissingBootstrapForACustomRuntimeFailsWithoutSpawning) {
  auto cfg = config();
  cfg->runtime = "provided.al2023";
  const std::string root = dir_ / "task";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  pool_->reconfigure(VersionSpec{cfg, root, 0});
  auto call = invoke();
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  EXPECT_EQ(call.payload_json().at("errorType"), "Runtime.InvalidEntrypoint");
  EXPECT_THAT(call.payload_json().at("errorMessage").get<std::string>(),
              HasSubstr("Couldn't find valid bootstrap"));

  std::ofstream(root + "/bootstrap") << "#!/bin/sh\n";
  auto again = invoke();
  ASSERT_TRUE(wait_done(again));
  EXPECT_THAT(again.payload_json().at("errorMessage").get<std::string>(),
              HasSubstr("permission denied"));
  EXPECT_EQ(spawner_.attempts(), 0);

  ASSERT_EQ(::chmod((root + "/bootstrap").c_str(), 0755), 0);
  auto ok = invoke();
  ASSERT_TRUE(wait_spawned(1));
  EXPECT_EQ(spawner_.env(0)->spec.argv, std::vector<std::string>{root + "/bootstrap"});
}

TEST_F(PoolTest, OversizedResponseIsResponseSizeTooLargeAnd413ToTheRuntime) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  const std::uint64_t size = runtimeapi::kMaxResponseBytes + 1;
  rt->api().send("POST", "/2018-06-01/runtime/invocation/" + call.inv->request_id + "/response",
                 std::string(size, 'x'));
  ASSERT_TRUE(wait_done(call));
  EXPECT_TRUE(call.result().function_error);
  const auto doc = call.payload_json();
  EXPECT_EQ(doc.at("errorType"), "Function.ResponseSizeTooLarge");
  EXPECT_THAT(doc.at("errorMessage").get<std::string>(),
              HasSubstr("exceeded maximum allowed payload size (6291556 bytes)."));
  ASSERT_TRUE(pump_until(ioc(), [&] { return rt->api().finished(); }));
  ASSERT_TRUE(rt->api().has_response()) << rt->api().read_error().message();
  EXPECT_EQ(rt->api().response().result_int(), 413u);

  // The environment is still usable: the runtime reconnects and asks for more.
  FakeRuntime rt2(ioc(), spawner_.env(0));
  auto second = invoke();
  serve(rt2, second);
  EXPECT_EQ(spawner_.attempts(), 1);
}

TEST_F(PoolTest, OversizedResponseErrorNamesTheResponseSize) {
  auto call = invoke();
  auto rt = runtime(0);
  ASSERT_TRUE(rt->next());
  const std::uint64_t size = runtimeapi::kMaxResponseBytes + 1;
  rt->api().send("POST", "/2018-06-01/runtime/invocation/" + call.inv->request_id + "/response",
                 std::string(size, 'x'));
  ASSERT_TRUE(wait_done(call));
  EXPECT_EQ(call.payload_json().at("errorMessage"),
            fmt::format("Response payload size ({} bytes) exceeded maximum allowed payload size "
                        "(6291556 bytes).",
                        size));
}

}  // namespace
}  // namespace lambent::engine
