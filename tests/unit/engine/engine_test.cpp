// The Engine's catalog: resolving qualifiers (versions, aliases, routing) to
// pools, and what invokes see when a function is unknown or removed.
//
// One test body on purpose: Engine caches its catalog per thread keyed by the
// engine's address and generation, so two engines allocated at the same address
// one after another in one thread could see each other's catalog (see the
// report on issue #2); a single engine per test binary sidesteps it.
#include "engine/engine.hpp"

#include "engine_fixture.hpp"

namespace lambent::engine {
namespace {

using ::testing::HasSubstr;

class EngineTest : public PoolTest {
 protected:
  VersionSpec version_spec(std::string v) {
    auto c = config();
    c->version = std::move(v);
    return VersionSpec{c, dir_.path(), 0};
  }
  FunctionSnapshot snapshot() {
    FunctionSnapshot s;
    s.name = "fn";
    s.latest = spec();
    s.versions["1"] = version_spec("1");
    s.versions["2"] = version_spec("2");
    s.aliases["live"] = registry::Alias{"live", "1", "", std::nullopt, "r"};
    s.aliases["all-to-2"] =
        registry::Alias{"all-to-2", "1", "", registry::AliasRouting{"2", 1.0}, "r"};
    s.aliases["none-to-2"] =
        registry::Alias{"none-to-2", "1", "", registry::AliasRouting{"2", 0.0}, "r"};
    return s;
  }
  Call engine_invoke(Engine& e, std::string_view name, std::string_view qualifier) {
    Call c{std::make_shared<Invocation>(), std::make_shared<std::optional<InvokeOutcome>>()};
    c.inv->request_id = new_uuid();
    c.inv->payload = "{}";
    c.inv->done = [out = c.outcome](InvokeOutcome&& o) { *out = std::move(o); };
    e.invoke(name, qualifier, c.inv);
    return c;
  }
};

TEST_F(EngineTest, ResolvesQualifiersInvokesAndForgetsRemovedFunctions) {
  Engine engine(shards_, deps());
  const std::string arn = "arn:aws:lambda:us-east-1:000000000000:function:";

  {
    SCOPED_TRACE("unknown function");
    auto c = engine_invoke(engine, "nope", "");
    ASSERT_TRUE(c.done()) << "an unknown function fails at once";
    ASSERT_TRUE(c.result().error);
    EXPECT_EQ(c.result().error->code, Errc::kNotFound);
    EXPECT_EQ(c.result().error->message, "Function not found: " + arn + "nope");
    EXPECT_EQ(engine.in_flight(), 0);
  }

  engine.put_function(snapshot());
  {
    SCOPED_TRACE("resolve");
    EXPECT_EQ(engine.resolve("fn", "").value_or("?"), "$LATEST");
    EXPECT_EQ(engine.resolve("fn", "$LATEST").value_or("?"), "$LATEST");
    EXPECT_EQ(engine.resolve("fn", "1").value_or("?"), "1");
    EXPECT_EQ(engine.resolve("fn", "2").value_or("?"), "2");
    EXPECT_EQ(engine.resolve("fn", "live").value_or("?"), "1");
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(engine.resolve("fn", "all-to-2").value_or("?"), "2");
      EXPECT_EQ(engine.resolve("fn", "none-to-2").value_or("?"), "1");
    }
    const auto missing = engine.resolve("fn", "3");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::kNotFound);
    EXPECT_EQ(missing.error().message, "Function not found: " + arn + "fn:3");
    EXPECT_FALSE(engine.resolve("fn", "no-such-alias"));
    EXPECT_EQ(engine.function_arn("fn", "live"), arn + "fn:live");
    EXPECT_TRUE(engine.stats("fn", "1").has_value());
    EXPECT_FALSE(engine.stats("fn", "9").has_value());
  }

  {
    SCOPED_TRACE("invoke through an alias runs the aliased version");
    auto c = engine_invoke(engine, "fn", "live");
    EXPECT_EQ(engine.in_flight(), 1);
    auto rt = runtime(0);
    const auto& env = rt->env().spec.env;
    EXPECT_NE(std::find(env.begin(), env.end(), "AWS_LAMBDA_FUNCTION_VERSION=1"), env.end());
    const auto next = rt->next();
    ASSERT_TRUE(next);
    // Set by the engine when the caller left it empty.
    EXPECT_THAT(header(*next, "Lambda-Runtime-Invoked-Function-Arn"),
                ::testing::StartsWith(arn + "fn"));
    ASSERT_TRUE(rt->respond(c.inv->request_id, R"("v1")"));
    ASSERT_TRUE(wait_done(c));
    EXPECT_EQ(c.result().payload, R"("v1")");
    EXPECT_EQ(c.result().executed_version, "1");
    EXPECT_EQ(engine.in_flight(), 0);
  }

  {
    SCOPED_TRACE("removing the function fails its waiting invokes");
    auto waiting = engine_invoke(engine, "fn", "");
    ASSERT_TRUE(wait_spawned(2));
    engine.remove_function("fn");
    ASSERT_TRUE(wait_done(waiting));
    ASSERT_TRUE(waiting.result().error);
    EXPECT_EQ(waiting.result().error->code, Errc::kNotFound);
    EXPECT_THAT(waiting.result().error->message, HasSubstr("Function not found"));
    ASSERT_TRUE(pump_until(ioc(), [&] { return spawner_.env(1)->kills.load() >= 1; }));

    auto after = engine_invoke(engine, "fn", "");
    ASSERT_TRUE(after.done());
    ASSERT_TRUE(after.result().error);
    EXPECT_EQ(after.result().error->code, Errc::kNotFound);
    EXPECT_FALSE(engine.resolve("fn", ""));
  }
  engine.stop();
  pump_ready(ioc());
}

}  // namespace
}  // namespace lambent::engine
