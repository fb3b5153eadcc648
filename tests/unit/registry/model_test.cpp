// Validation rules of the function model (LAMBDA-COMPAT.md §1.3, §6.1).
#include "registry/model.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace lambent::registry {
namespace {

using ::testing::HasSubstr;

// The error a failing Result carries; fails the test when it succeeded.
template <class T>
Error error_of(const Result<T>& r) {
  EXPECT_FALSE(r.has_value());
  return r.has_value() ? Error{} : r.error();
}

TEST(FunctionName, AcceptsLambdaCharacterSetUpTo64) {
  EXPECT_TRUE(validate_function_name("my-function_01"));
  EXPECT_TRUE(validate_function_name(std::string(64, 'a')));
}

TEST(FunctionName, RejectsEmptyTooLongAndForeignCharacters) {
  for (const std::string& bad : {std::string(), std::string(65, 'a'), std::string("a.b"),
                                 std::string("a:b"), std::string("a b"), std::string("ä")}) {
    const auto e = error_of(validate_function_name(bad));
    EXPECT_EQ(e.code, Errc::kValidation) << bad;
    EXPECT_THAT(e.message, HasSubstr("Value '" + bad + "' at 'functionName'")) << bad;
    EXPECT_THAT(e.message, HasSubstr("have length less than or equal to 64"));
  }
}

TEST(AliasName, RejectsAllDigitsButAcceptsMixed) {
  EXPECT_TRUE(validate_alias_name("live"));
  EXPECT_TRUE(validate_alias_name("v1"));
  EXPECT_TRUE(validate_alias_name("1v"));
  const auto e = error_of(validate_alias_name("123"));
  EXPECT_EQ(e.code, Errc::kValidation);
  EXPECT_THAT(e.message, HasSubstr("Value '123' at 'name'"));
  EXPECT_FALSE(validate_alias_name(""));
  EXPECT_FALSE(validate_alias_name(std::string(129, 'a')));
  EXPECT_TRUE(validate_alias_name(std::string(128, 'a')));
}

TEST(Runtimes, SupportedListHasManagedAndCustomRuntimes) {
  for (const char* r : {"provided", "provided.al2", "provided.al2023", "python3.9", "python3.12",
                        "python3.14", "nodejs18.x", "nodejs20.x", "nodejs24.x"})
    EXPECT_TRUE(is_supported_runtime(r)) << r;
  for (const char* r : {"java21", "python2.7", "go1.x", "", "Python3.12"})
    EXPECT_FALSE(is_supported_runtime(r)) << r;
}

ConfigInput creatable() {
  ConfigInput in;
  in.runtime = "python3.12";
  in.handler = "app.handler";
  in.role = "arn:aws:iam::123456789012:role/lambda";
  return in;
}

TEST(ApplyConfig, CreateNeedsRuntimeAndHandler) {
  FunctionConfig cfg;
  ConfigInput in = creatable();
  in.runtime.reset();
  auto e = error_of(apply_config(cfg, in, /*creating=*/true));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("Runtime and Handler are mandatory"));

  in = creatable();
  in.handler.reset();
  e = error_of(apply_config(cfg, in, true));
  EXPECT_THAT(e.message, HasSubstr("Runtime and Handler are mandatory"));

  // An update may leave both unset.
  EXPECT_TRUE(apply_config(cfg, ConfigInput{}, /*creating=*/false));
}

TEST(ApplyConfig, AppliesEveryFieldOnSuccess) {
  FunctionConfig cfg;
  ConfigInput in = creatable();
  in.description = "d";
  in.timeout_s = 30;
  in.memory_mb = 512;
  in.ephemeral_mb = 1024;
  in.environment = std::map<std::string, std::string>{{"STAGE", "prod"}};
  in.tracing_mode = "Active";
  in.log_format = "JSON";
  in.application_log_level = "DEBUG";
  in.system_log_level = "WARN";
  in.log_group = "/custom/group";
  ASSERT_TRUE(apply_config(cfg, in, true));
  EXPECT_EQ(cfg.runtime, "python3.12");
  EXPECT_EQ(cfg.handler, "app.handler");
  EXPECT_EQ(cfg.role, "arn:aws:iam::123456789012:role/lambda");
  EXPECT_EQ(cfg.description, "d");
  EXPECT_EQ(cfg.timeout_s, 30);
  EXPECT_EQ(cfg.memory_mb, 512);
  EXPECT_EQ(cfg.ephemeral_mb, 1024);
  EXPECT_EQ(cfg.environment.at("STAGE"), "prod");
  EXPECT_EQ(cfg.tracing_mode, "Active");
  EXPECT_EQ(cfg.log_format, "JSON");
  EXPECT_EQ(cfg.application_log_level, "DEBUG");
  EXPECT_EQ(cfg.system_log_level, "WARN");
  EXPECT_EQ(cfg.effective_log_group(), "/custom/group");
}

TEST(ApplyConfig, UnsupportedRuntimeNamesTheRuntime) {
  FunctionConfig cfg;
  ConfigInput in = creatable();
  in.runtime = "java21";
  const auto e = error_of(apply_config(cfg, in, true));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("The runtime parameter of java21 is not supported"));
}

// Sets one numeric field of a ConfigInput by its wire name.
ConfigInput with_number(std::string_view field, int v) {
  ConfigInput in;
  if (field == "timeout") in.timeout_s = v;
  if (field == "memorySize") in.memory_mb = v;
  if (field == "ephemeralStorage.size") in.ephemeral_mb = v;
  return in;
}

TEST(ApplyConfig, NumericRangesMatchLambda) {
  struct Case {
    std::string_view field;
    int lo, hi;
  };
  for (const Case c : {Case{"timeout", 1, 900}, Case{"memorySize", 128, 10240},
                       Case{"ephemeralStorage.size", 512, 10240}}) {
    FunctionConfig cfg;
    EXPECT_TRUE(apply_config(cfg, with_number(c.field, c.lo), false)) << c.field;
    EXPECT_TRUE(apply_config(cfg, with_number(c.field, c.hi), false)) << c.field;

    auto e = error_of(apply_config(cfg, with_number(c.field, c.lo - 1), false));
    EXPECT_EQ(e.code, Errc::kValidation);
    EXPECT_EQ(e.message,
              "1 validation error detected: Value '" + std::to_string(c.lo - 1) + "' at '" +
                  std::string(c.field) +
                  "' failed to satisfy constraint: Member must have value greater than or equal "
                  "to " +
                  std::to_string(c.lo));

    e = error_of(apply_config(cfg, with_number(c.field, c.hi + 1), false));
    EXPECT_EQ(e.code, Errc::kValidation);
    EXPECT_EQ(e.message,
              "1 validation error detected: Value '" + std::to_string(c.hi + 1) + "' at '" +
                  std::string(c.field) +
                  "' failed to satisfy constraint: Member must have value less than or equal to " +
                  std::to_string(c.hi));
  }
}

TEST(ApplyConfig, FailedValidationChangesNothing) {
  FunctionConfig cfg;
  ASSERT_TRUE(apply_config(cfg, creatable(), true));
  const FunctionConfig before = cfg;
  ConfigInput in;
  in.description = "changed";
  in.memory_mb = 256;
  in.timeout_s = 0;  // invalid: the whole update is refused
  EXPECT_FALSE(apply_config(cfg, in, false));
  EXPECT_EQ(cfg.description, before.description);
  EXPECT_EQ(cfg.memory_mb, before.memory_mb);
  EXPECT_EQ(cfg.timeout_s, before.timeout_s);
}

TEST(ApplyConfig, HandlerRoleAndDescriptionShapes) {
  FunctionConfig cfg;
  ConfigInput in;
  in.handler = "app handler";
  auto e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kValidation);
  EXPECT_THAT(e.message, HasSubstr("Value 'app handler' at 'handler'"));

  in = {};
  in.handler = std::string(129, 'h');
  EXPECT_FALSE(apply_config(cfg, in, false));
  in.handler = std::string(128, 'h');
  EXPECT_TRUE(apply_config(cfg, in, false));

  in = {};
  in.role = "not-an-arn";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kValidation);
  EXPECT_THAT(e.message, HasSubstr("Value 'not-an-arn' at 'role'"));

  in = {};
  in.description = std::string(257, 'd');
  e = error_of(apply_config(cfg, in, false));
  EXPECT_THAT(e.message, HasSubstr("'description'"));
  in.description = std::string(256, 'd');
  EXPECT_TRUE(apply_config(cfg, in, false));
}

TEST(ApplyConfig, EnumsAndUnsupportedFeatures) {
  FunctionConfig cfg;
  ConfigInput in;
  in.architecture = "sparc";
  auto e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kValidation);
  EXPECT_THAT(e.message, HasSubstr("Value 'sparc' at 'architectures'"));
  EXPECT_THAT(e.message, HasSubstr("enum value set: [x86_64, arm64]"));

  in.architecture = "arm64";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("arm64 is not supported"));

  in = {};
  in.tracing_mode = "Sometimes";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_THAT(e.message, HasSubstr("'tracingConfig.mode'"));

  in = {};
  in.log_format = "XML";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_THAT(e.message, HasSubstr("'loggingConfig.logFormat'"));

  in = {};
  in.layers = std::vector<std::string>{"arn:aws:lambda:us-east-1:123456789012:layer:x:1"};
  e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("Layers"));

  in = {};
  in.package_type = "Image";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("PackageType Image"));
}

TEST(ApplyConfig, LogLevelsNeedJsonFormatAndAreClearedByText) {
  FunctionConfig cfg;
  ConfigInput in;
  in.application_log_level = "INFO";
  auto e = error_of(apply_config(cfg, in, false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("LogFormat must be JSON"));

  in.log_format = "JSON";
  ASSERT_TRUE(apply_config(cfg, in, false));
  EXPECT_EQ(cfg.application_log_level, "INFO");

  // Already JSON: a level alone is accepted.
  in = {};
  in.system_log_level = "DEBUG";
  ASSERT_TRUE(apply_config(cfg, in, false));
  EXPECT_EQ(cfg.system_log_level, "DEBUG");

  in = {};
  in.log_format = "Text";
  ASSERT_TRUE(apply_config(cfg, in, false));
  EXPECT_EQ(cfg.application_log_level, "");
  EXPECT_EQ(cfg.system_log_level, "");

  in = {};
  in.application_log_level = "LOUD";
  in.log_format = "JSON";
  e = error_of(apply_config(cfg, in, false));
  EXPECT_THAT(e.message, HasSubstr("'loggingConfig.applicationLogLevel'"));
}

ConfigInput with_env(std::map<std::string, std::string> env) {
  ConfigInput in;
  in.environment = std::move(env);
  return in;
}

TEST(EnvironmentVariables, KeysFollowLambdaPattern) {
  FunctionConfig cfg;
  EXPECT_TRUE(apply_config(cfg, with_env({{"STAGE", "x"}, {"a1_b", ""}}), false));
  for (const char* bad : {"1ABC", "A", "A-B", "_LEADING", "has space", ""}) {
    const auto e = error_of(apply_config(cfg, with_env({{bad, "v"}}), false));
    EXPECT_EQ(e.code, Errc::kValidation) << bad;
    EXPECT_THAT(e.message, HasSubstr("[a-zA-Z]([a-zA-Z0-9_])+")) << bad;
    EXPECT_THAT(e.message, HasSubstr("key '" + std::string(bad) + "'")) << bad;
  }
}

TEST(EnvironmentVariables, ReservedKeysAreListed) {
  FunctionConfig cfg;
  const auto e = error_of(apply_config(
      cfg, with_env({{"AWS_REGION", "x"}, {"OK_KEY", "1"}, {"AWS_LAMBDA_RUNTIME_API", "y"}}),
      false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("contains reserved keys"));
  EXPECT_THAT(e.message, HasSubstr("Reserved keys used in this request: "
                                   "AWS_LAMBDA_RUNTIME_API,AWS_REGION"));
  for (const char* k : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                        "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"})
    EXPECT_FALSE(apply_config(cfg, with_env({{k, "x"}}), false)) << k;
  // Not reserved: users set these on Lambda.
  EXPECT_TRUE(apply_config(cfg, with_env({{"AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"}}), false));
}

TEST(EnvironmentVariables, TotalSizeLimitIsFourKilobytes) {
  FunctionConfig cfg;
  EXPECT_TRUE(apply_config(cfg, with_env({{"BIG", std::string(3900, 'x')}}), false));
  const auto e = error_of(apply_config(
      cfg, with_env({{"BIG", std::string(2100, 'x')}, {"BIGGER", std::string(2100, 'y')}}), false));
  EXPECT_EQ(e.code, Errc::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr("exceeded the 4KB limit"));
  EXPECT_EQ(cfg.environment.at("BIG").size(), 3900u);  // the refused update changed nothing
}

// ---- parse_function_name ----

struct NameCase {
  std::string raw, name, qualifier;
};

TEST(ParseFunctionName, AcceptsEveryLambdaForm) {
  const std::vector<NameCase> cases = {
      {"my-function", "my-function", ""},
      {"my-function:v1", "my-function", "v1"},
      {"my-function:$LATEST", "my-function", "$LATEST"},
      {"my-function:7", "my-function", "7"},
      {"123456789012:function:my-function", "my-function", ""},
      {"123456789012:function:my-function:prod", "my-function", "prod"},
      {"arn:aws:lambda:us-east-1:123456789012:function:my-function", "my-function", ""},
      {"arn:aws:lambda:us-east-1:123456789012:function:my-function:3", "my-function", "3"},
  };
  for (const auto& c : cases) {
    const auto r = parse_function_name(c.raw, "us-east-1", "123456789012");
    ASSERT_TRUE(r) << c.raw << ": " << r.error().message;
    EXPECT_EQ(r->name, c.name) << c.raw;
    EXPECT_EQ(r->qualifier, c.qualifier) << c.raw;
  }
  const auto cn = parse_function_name(
      "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:$LATEST", "cn-north-1", "123456789012");
  ASSERT_TRUE(cn) << cn.error().message;
  EXPECT_EQ(cn->name, "f");
  EXPECT_EQ(cn->qualifier, "$LATEST");
}

TEST(ParseFunctionName, AnArnOfAnotherRegionIsNotFound) {
  for (const std::string raw : {"arn:aws:lambda:eu-west-1:123456789012:function:f",
                                "arn:aws:lambda:eu-west-1:123456789012:function:f:prod",
                                "arn:aws:lambda:eu-west-1:999999999999:function:f"}) {
    const auto r = parse_function_name(raw, "us-east-1", "123456789012");
    ASSERT_FALSE(r) << "accepted '" << raw << "' as " << r->name;
    EXPECT_EQ(r.error().code, Errc::kNotFound) << raw;
    // Lambda's words (the region is checked before the account).
    EXPECT_EQ(r.error().message,
              "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')");
  }
}

TEST(ParseFunctionName, AnArnOfAnotherAccountIsNotFound) {
  for (const std::string raw : {"arn:aws:lambda:us-east-1:111111111111:function:f",
                                "arn:aws:lambda:us-east-1:111111111111:function:f:1",
                                "111111111111:function:f", "111111111111:function:f:$LATEST"}) {
    const auto r = parse_function_name(raw, "us-east-1", "123456789012");
    ASSERT_FALSE(r) << "accepted '" << raw << "' as " << r->name;
    EXPECT_EQ(r.error().code, Errc::kNotFound) << raw;
    EXPECT_THAT(r.error().message, HasSubstr("Function not found: " + raw)) << raw;
    EXPECT_THAT(r.error().message, HasSubstr("account 111111111111")) << raw;
    EXPECT_THAT(r.error().message, HasSubstr("account 123456789012")) << raw;
  }
}

TEST(ParseFunctionName, MalformedNamesAreValidationErrorsWhateverTheirRegion) {
  // The pattern is checked first: a bad name is a bad name in any region.
  const auto r = parse_function_name("arn:aws:lambda:eu-west-1:123456789012:function:bad!name",
                                     "us-east-1", "123456789012");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kValidation);
}

TEST(ParseFunctionName, RejectsMalformedNames) {
  for (const std::string& bad : {
           std::string(""),
           std::string("a:b:c"),
           std::string("name:"),
           std::string("name:bad!qualifier"),
           std::string("name:$latest"),
           std::string(65, 'n'),
           std::string("name:") + std::string(129, 'q'),
           std::string("arn:aws:s3:us-east-1:123456789012:function:f"),
           std::string("arn:aws:lambda:us-east-1:123456789012:layer:f"),
           std::string("arn:aws:lambda:us-east-1:123456789012:function:"),
           std::string("arn:aws:lambda:us-east-1:123456789012:function:f:1:2"),
           std::string("123456789012:function:"),
           std::string(":function:f"),
           std::string("arn:aws:lambda::123456789012:function:f"),
           std::string("arn:aws:lambda:us-east-1::function:f"),
           std::string("bad name"),
       }) {
    const auto r = parse_function_name(bad, "us-east-1", "123456789012");
    ASSERT_FALSE(r) << "accepted '" << bad << "' as " << r->name << " / " << r->qualifier;
    EXPECT_EQ(r.error().code, Errc::kValidation) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("Value '" + bad + "' at 'functionName'")) << bad;
  }
}

TEST(FunctionRecord, FindsVersionsAndAliases) {
  FunctionRecord rec;
  rec.latest.name = "f";
  FunctionConfig v1 = rec.latest;
  v1.version = "1";
  rec.versions.push_back(v1);
  rec.aliases.push_back(Alias{"live", "1", "", std::nullopt, "rev"});
  EXPECT_EQ(rec.find_version("$LATEST"), &rec.latest);
  ASSERT_NE(rec.find_version("1"), nullptr);
  EXPECT_EQ(rec.find_version("1")->version, "1");
  EXPECT_EQ(rec.find_version("2"), nullptr);
  ASSERT_NE(rec.find_alias("live"), nullptr);
  EXPECT_EQ(rec.find_alias("live")->function_version, "1");
  EXPECT_EQ(rec.find_alias("dead"), nullptr);
}

}  // namespace
}  // namespace lambent::registry
