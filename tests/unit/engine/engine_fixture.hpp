// tests/unit/engine/engine_fixture.hpp — a FunctionPool over a FakeSpawner on
// one io_context that the test thread runs. The test plays the runtime over
// real loopback HTTP (LoopbackClient) and ends "processes" with FakeEnv::exit.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "engine/placement.hpp"
#include "engine/pool.hpp"
#include "fakes/fake_spawner.hpp"
#include "fakes/loopback_client.hpp"
#include "fakes/temp_dir.hpp"
#include "http/server.hpp"
#include "logs/log_store.hpp"

namespace lambent::engine {

using lambent::testing::FakeEnv;
using lambent::testing::FakeSpawner;
using lambent::testing::header;
using lambent::testing::LoopbackClient;
using lambent::testing::pump_ready;
using lambent::testing::pump_until;
using lambent::testing::Response;
using namespace std::chrono_literals;

inline constexpr std::string_view kNextPath = "/2018-06-01/runtime/invocation/next";
inline constexpr std::string_view kGroup = "/aws/lambda/fn";

// One invoke as its caller sees it.
struct Call {
  InvocationPtr inv;
  std::shared_ptr<std::optional<InvokeOutcome>> outcome;
  bool done() const { return outcome->has_value(); }
  const InvokeOutcome& result() const { return **outcome; }
  nlohmann::json payload_json() const { return nlohmann::json::parse(result().payload); }
};

// The runtime inside a fake environment: a keep-alive Runtime API client.
class FakeRuntime {
 public:
  FakeRuntime(boost::asio::io_context& ioc, std::shared_ptr<FakeEnv> env)
      : env_(std::move(env)), api_(ioc, env_->port) {}

  // GET /next, waiting for the answer.
  std::optional<Response> next(std::chrono::milliseconds timeout = 5s) {
    return api_.request("GET", kNextPath, {}, {}, timeout);
  }
  // GET /next without waiting (the environment parks it).
  void send_next() { api_.send("GET", kNextPath); }
  std::optional<Response> respond(std::string_view id, std::string body) {
    return api_.request("POST", invocation_path(id, "response"), std::move(body));
  }
  std::optional<Response> error(std::string_view id, std::string body,
                                std::string_view type = "Runtime.HandlerError") {
    return api_.request("POST", invocation_path(id, "error"), std::move(body),
                        {{"Lambda-Runtime-Function-Error-Type", std::string(type)}});
  }
  std::optional<Response> init_error(std::string body, std::string_view type) {
    return api_.request("POST", "/2018-06-01/runtime/init/error", std::move(body),
                        {{"Lambda-Runtime-Function-Error-Type", std::string(type)}});
  }

  LoopbackClient& api() { return api_; }
  FakeEnv& env() { return *env_; }

 private:
  static std::string invocation_path(std::string_view id, std::string_view verb) {
    return "/2018-06-01/runtime/invocation/" + std::string(id) + "/" + std::string(verb);
  }
  std::shared_ptr<FakeEnv> env_;
  LoopbackClient api_;
};

class PoolTest : public ::testing::Test {
 protected:
  PoolTest() : logs_(dir_ / "logs", logs::Retention{}) {
    settings_.python = {"/usr/bin/python3", "3.11.2"};
    settings_.node = {"/usr/bin/node", "20.0.0"};
    pool_ = std::make_shared<FunctionPool>(spec(), shards_, deps());
  }
  ~PoolTest() override {
    pool_->stop(make_error(Errc::kUnavailable, "test over"));
    pump_ready(ioc());
    pool_.reset();
    pump_ready(ioc());
    // Every environment is gone: none may still be counted, working or not.
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_EQ(placement_->environments(0), 0);
    EXPECT_EQ(placement_->working(0), 0);
  }

  // With placement, as `lambent serve` runs by default: every test also checks
  // that environments count themselves in and out (see ~PoolTest).
  EngineDeps deps() {
    EngineDeps d{spawner_, logs_, settings_};
    d.placement = placement_;
    return d;
  }
  boost::asio::io_context& ioc() { return shards_.at(0); }

  static std::shared_ptr<registry::FunctionConfig> config(int timeout_s = 3,
                                                          std::string revision = "rev-1") {
    auto c = std::make_shared<registry::FunctionConfig>();
    c->name = "fn";
    c->runtime = "python3.12";
    c->handler = "app.handler";
    c->timeout_s = timeout_s;
    c->memory_mb = 128;
    c->environment = {{"USER_VAR", "1"}};
    c->revision_id = std::move(revision);
    return c;
  }
  VersionSpec spec(int timeout_s = 3, std::string revision = "rev-1") {
    return VersionSpec{config(timeout_s, std::move(revision)), dir_.path(), 0};
  }

  // Submits an invoke; `tweak` fills optional fields before submission.
  Call invoke(std::string payload = R"({"n":1})",
              const std::function<void(Invocation&)>& tweak = {}, FunctionPool* pool = nullptr) {
    Call c{std::make_shared<Invocation>(), std::make_shared<std::optional<InvokeOutcome>>()};
    c.inv->request_id = new_uuid();
    c.inv->payload = std::move(payload);
    c.inv->invoked_arn = "arn:aws:lambda:us-east-1:000000000000:function:fn";
    c.inv->executed_version = "$LATEST";
    c.inv->accepted_at = std::chrono::steady_clock::now();
    c.inv->done = [out = c.outcome](InvokeOutcome&& o) {
      EXPECT_FALSE(out->has_value()) << "an invocation completed twice";
      *out = std::move(o);
    };
    if (tweak) tweak(*c.inv);
    (pool ? pool : pool_.get())->submit(c.inv);
    return c;
  }

  bool wait_done(const Call& c, std::chrono::milliseconds timeout = 5s) {
    return pump_until(
        ioc(), [&] { return c.done(); }, timeout);
  }
  bool wait_spawned(int n) {
    return pump_until(ioc(), [&] { return spawner_.spawned() >= n; });
  }
  // The runtime of the i-th spawned environment (waits for the spawn).
  std::unique_ptr<FakeRuntime> runtime(int i) {
    EXPECT_TRUE(wait_spawned(i + 1)) << "environment " << i << " was never spawned";
    return std::make_unique<FakeRuntime>(ioc(), spawner_.env(i));
  }

  // Serves one invocation end to end on `rt`: /next, then /response with `body`.
  void serve(FakeRuntime& rt, const Call& c, std::string body = R"("ok")") {
    auto next = rt.next();
    ASSERT_TRUE(next) << "no /next answer";
    ASSERT_EQ(header(*next, "Lambda-Runtime-Aws-Request-Id"), c.inv->request_id);
    auto res = rt.respond(c.inv->request_id, std::move(body));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->result_int(), 202u);
    ASSERT_TRUE(wait_done(c));
  }

  std::vector<std::string> log_messages() {
    logs_.flush();
    logs::FilterQuery q;
    q.group = std::string(kGroup);
    auto r = logs_.filter(q);
    std::vector<std::string> out;
    if (!r) return out;
    for (auto& e : r->events) out.push_back(std::move(e.message));
    return out;
  }
  std::vector<std::string> log_lines_starting(std::string_view prefix) {
    std::vector<std::string> out;
    for (auto& m : log_messages())
      if (m.starts_with(prefix)) out.push_back(m);
    return out;
  }
  // Index of the first message containing `needle` (-1 if none).
  static int index_of(const std::vector<std::string>& msgs, std::string_view needle) {
    for (std::size_t i = 0; i < msgs.size(); ++i)
      if (msgs[i].find(needle) != std::string::npos) return static_cast<int>(i);
    return -1;
  }

  lambent::testing::TempDir dir_;
  logs::LogStore logs_;
  Settings settings_;
  FakeSpawner spawner_;
  http::Shards shards_{1};
  std::shared_ptr<Placement> placement_ =
      std::make_shared<Placement>(std::vector<std::vector<int>>{shards_.cpus(0)});
  std::shared_ptr<FunctionPool> pool_;
};

}  // namespace lambent::engine
