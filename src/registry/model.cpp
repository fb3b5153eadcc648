#include "registry/model.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace lambent::registry {

namespace {

constexpr std::array<std::string_view, 14> kRuntimes = {
    "provided",   "provided.al2", "provided.al2023", "python3.9",  "python3.10",
    "python3.11", "python3.12",   "python3.13",      "python3.14", "nodejs18.x",
    "nodejs20.x", "nodejs22.x",   "nodejs24.x",      "nodejs16.x"};

// Set by the platform; a user cannot override them (LAMBDA-COMPAT.md §4.1).
constexpr std::array<std::string_view, 18> kReservedEnv = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

Result<void> range(std::string_view field, int v, int lo, int hi) {
  if (v < lo)
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy "
                            "constraint: Member must have value greater than or equal to {}",
                            v, field, lo));
  if (v > hi)
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy "
                            "constraint: Member must have value less than or equal to {}",
                            v, field, hi));
  return {};
}

Result<void> one_of(std::string_view field, const std::string& v,
                    std::initializer_list<std::string_view> allowed) {
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return {};
  std::string set;
  for (auto a : allowed) set += (set.empty() ? "" : ", ") + std::string(a);
  return fail(Errc::kValidation,
              fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy "
                          "constraint: Member must satisfy enum value set: [{}]",
                          v, field, set));
}

Result<void> validate_environment(const std::map<std::string, std::string>& env) {
  std::size_t total = 0;
  std::vector<std::string> reserved;
  for (const auto& [k, v] : env) {
    const bool ok = k.size() >= 2 &&
                    ((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')) &&
                    std::all_of(k.begin(), k.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '_';
                    });
    if (!ok)
      return fail(Errc::kValidation,
                  fmt::format("1 validation error detected: Value at 'environment.variables' "
                              "failed to satisfy constraint: Map keys must satisfy constraint: "
                              "[Member must satisfy regular expression pattern: "
                              "[a-zA-Z]([a-zA-Z0-9_])+] (key '{}')",
                              k));
    if (std::find(kReservedEnv.begin(), kReservedEnv.end(), k) != kReservedEnv.end())
      reserved.push_back(k);
    total += k.size() + v.size();
  }
  if (!reserved.empty()) {
    std::string list;
    for (const auto& r : reserved) list += (list.empty() ? "" : ",") + r;
    return fail(Errc::kInvalidParameter,
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains reserved keys that are "
                "currently not supported for modification. Reserved keys used in this request: " +
                    list);
  }
  if (total > 4096)
    return fail(Errc::kInvalidParameter,
                fmt::format("Lambda was unable to configure your environment variables because the "
                            "environment variables you have provided exceeded the 4KB limit. "
                            "String measured: {} bytes",
                            total));
  return {};
}

}  // namespace

const FunctionConfig* FunctionRecord::find_version(std::string_view v) const {
  if (v == kLatest) return &latest;
  for (const auto& c : versions)
    if (c.version == v) return &c;
  return nullptr;
}

const Alias* FunctionRecord::find_alias(std::string_view a) const {
  for (const auto& x : aliases)
    if (x.name == a) return &x;
  return nullptr;
}

Result<void> validate_function_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), is_name_char))
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at 'functionName' failed to "
                            "satisfy constraint: Member must satisfy regular expression pattern: "
                            "[a-zA-Z0-9-_]+ and have length less than or equal to 64",
                            name));
  return {};
}

Result<void> validate_alias_name(std::string_view name) {
  const bool all_digits =
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (name.empty() || name.size() > 128 || all_digits ||
      !std::all_of(name.begin(), name.end(), is_name_char))
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at 'name' failed to satisfy "
                            "constraint: Member must satisfy regular expression pattern: "
                            "(?!^[0-9]+$)([a-zA-Z0-9-_]+)",
                            name));
  return {};
}

Result<void> validate_qualifier(std::string_view q) {
  // The pattern Lambda states; a qualifier that matches it but names nothing is a 404 later.
  if (q.size() > 128 ||
      !std::all_of(q.begin(), q.end(), [](char c) { return is_name_char(c) || c == '$'; }))
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at 'qualifier' failed to "
                            "satisfy constraint: Member must satisfy regular expression pattern: "
                            "(|[a-zA-Z0-9$_-]+)",
                            q));
  return {};
}

bool is_supported_runtime(std::string_view runtime) {
  return std::find(kRuntimes.begin(), kRuntimes.end(), runtime) != kRuntimes.end();
}

Result<void> apply_config(FunctionConfig& cfg, const ConfigInput& in, bool creating) {
  if (in.package_type && *in.package_type != "Zip")
    return fail(Errc::kInvalidParameter,
                "PackageType " + *in.package_type + " is not supported by Lambent yet; use Zip");
  if (in.runtime) {
    // Lambda's enum: anything else is a ValidationException; values Lambda
    // knows but Lambent cannot run are InvalidParameterValue.
    static constexpr std::string_view kLambdaRuntimes[] = {
        "nodejs",         "nodejs4.3",     "nodejs6.10", "nodejs8.10",    "nodejs10.x",
        "nodejs12.x",     "nodejs14.x",    "nodejs16.x", "nodejs18.x",    "nodejs20.x",
        "nodejs22.x",     "nodejs24.x",    "java8",      "java8.al2",     "java11",
        "java17",         "java21",        "java25",     "python2.7",     "python3.6",
        "python3.7",      "python3.8",     "python3.9",  "python3.10",    "python3.11",
        "python3.12",     "python3.13",    "python3.14", "dotnetcore1.0", "dotnetcore2.0",
        "dotnetcore2.1",  "dotnetcore3.1", "dotnet6",    "dotnet8",       "dotnet10",
        "nodejs4.3-edge", "go1.x",         "ruby2.5",    "ruby2.7",       "ruby3.2",
        "ruby3.3",        "ruby3.4",       "ruby4.0",    "provided",      "provided.al2",
        "provided.al2023"};
    if (std::find(std::begin(kLambdaRuntimes), std::end(kLambdaRuntimes), *in.runtime) ==
        std::end(kLambdaRuntimes))
      return fail(Errc::kValidation,
                  fmt::format("1 validation error detected: Value '{}' at 'runtime' failed to "
                              "satisfy constraint: Member must satisfy enum value set: [{}]",
                              *in.runtime, fmt::join(kLambdaRuntimes, ", ")));
    if (!is_supported_runtime(*in.runtime))
      return fail(Errc::kInvalidParameter,
                  "The runtime parameter of " + *in.runtime +
                      " is not supported by Lambent. Supported runtimes: provided, provided.al2, "
                      "provided.al2023, python3.9 to python3.14, nodejs18.x to nodejs24.x.");
  } else if (creating) {
    return fail(Errc::kInvalidParameter,
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages.");
  }
  if (in.handler) {
    if (in.handler->empty() || in.handler->size() > 128 ||
        std::any_of(in.handler->begin(), in.handler->end(),
                    [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }))
      return fail(Errc::kValidation,
                  fmt::format("1 validation error detected: Value '{}' at 'handler' failed to "
                              "satisfy constraint: Member must satisfy regular expression "
                              "pattern: [^\\s]+ and have length between 1 and 128",
                              *in.handler));
  } else if (creating) {
    return fail(Errc::kInvalidParameter,
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages.");
  }
  if (in.role && (in.role->rfind("arn:", 0) != 0 || in.role->find(":role/") == std::string::npos))
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value '{}' at 'role' failed to satisfy "
                            "constraint: Member must satisfy regular expression pattern: "
                            "arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                            *in.role));
  if (in.description && in.description->size() > 256)
    return fail(Errc::kValidation,
                "1 validation error detected: Value at 'description' failed to "
                "satisfy constraint: Member must have length less than or "
                "equal to 256");
  if (in.timeout_s) LAMBENT_TRY(range("timeout", *in.timeout_s, 1, 900));
  if (in.memory_mb) LAMBENT_TRY(range("memorySize", *in.memory_mb, 128, 10240));
  if (in.ephemeral_mb) LAMBENT_TRY(range("ephemeralStorage.size", *in.ephemeral_mb, 512, 10240));
  if (in.environment) LAMBENT_TRY(validate_environment(*in.environment));
  if (in.architecture) LAMBENT_TRY(one_of("architectures", *in.architecture, {"x86_64", "arm64"}));
  if (in.architecture && *in.architecture != "x86_64")
    return fail(Errc::kInvalidParameter,
                "Architecture arm64 is not supported on this x86_64 host.");
  if (in.tracing_mode)
    LAMBENT_TRY(one_of("tracingConfig.mode", *in.tracing_mode, {"Active", "PassThrough"}));
  if (in.log_format)
    LAMBENT_TRY(one_of("loggingConfig.logFormat", *in.log_format, {"JSON", "Text"}));
  if (in.application_log_level)
    LAMBENT_TRY(one_of("loggingConfig.applicationLogLevel", *in.application_log_level,
                       {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}));
  if (in.system_log_level)
    LAMBENT_TRY(
        one_of("loggingConfig.systemLogLevel", *in.system_log_level, {"DEBUG", "INFO", "WARN"}));
  if (in.log_group) {
    const auto& g = *in.log_group;
    const bool ok = !g.empty() && g.size() <= 512 && std::all_of(g.begin(), g.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
             c == '/' || c == '#';
    });
    if (!ok)
      return fail(
          Errc::kValidation,
          fmt::format("1 validation error detected: Value '{}' at 'loggingConfig.logGroup' "
                      "failed to satisfy constraint: Member must satisfy regular expression "
                      "pattern: [\\.\\-_/#A-Za-z0-9]+ and have length between 1 and 512",
                      g));
  }
  const std::string fmt_after = in.log_format.value_or(cfg.log_format);
  if (fmt_after != "JSON" && (in.application_log_level || in.system_log_level))
    return fail(Errc::kInvalidParameter,
                "To set ApplicationLogLevel or SystemLogLevel, LogFormat must be JSON.");
  if (in.layers && !in.layers->empty())
    return fail(Errc::kInvalidParameter, "Layers are not supported by Lambent yet.");

  if (in.runtime) cfg.runtime = *in.runtime;
  if (in.handler) cfg.handler = *in.handler;
  if (in.role) cfg.role = *in.role;
  if (in.description) cfg.description = *in.description;
  if (in.timeout_s) cfg.timeout_s = *in.timeout_s;
  if (in.memory_mb) cfg.memory_mb = *in.memory_mb;
  if (in.ephemeral_mb) cfg.ephemeral_mb = *in.ephemeral_mb;
  if (in.environment) cfg.environment = *in.environment;
  if (in.architecture) cfg.architecture = *in.architecture;
  if (in.tracing_mode) cfg.tracing_mode = *in.tracing_mode;
  if (in.log_format) {
    cfg.log_format = *in.log_format;
    if (cfg.log_format == "Text") cfg.application_log_level.clear(), cfg.system_log_level.clear();
  }
  if (in.application_log_level) cfg.application_log_level = *in.application_log_level;
  if (in.system_log_level) cfg.system_log_level = *in.system_log_level;
  if (in.log_group) cfg.log_group = *in.log_group;
  if (in.layers) cfg.layers = *in.layers;
  return {};
}

Result<FunctionRef> parse_function_name(std::string_view raw, std::string_view region,
                                        std::string_view account) {
  // Forms: name[:q] | account:function:name[:q] |
  // arn:partition:lambda:region:account:function:name[:q]
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= raw.size(); ++i) {
    if (i == raw.size() || raw[i] == ':') {
      parts.push_back(raw.substr(start, i - start));
      start = i + 1;
    }
  }
  auto bad = [&] {
    return fail(
        Errc::kValidation,
        fmt::format(
            "1 validation error detected: Value '{}' at 'functionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:)?"
            "(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            raw));
  };
  std::size_t i = 0;
  std::string_view named_region, named_account;  // empty: the name does not say
  if (parts.size() >= 6 && parts[0] == "arn") {
    if (parts[2] != "lambda" || parts[5] != "function" || parts[3].empty() || parts[4].empty())
      return bad();
    named_region = parts[3];
    named_account = parts[4];
    i = 6;
  } else if (parts.size() >= 3 && parts[1] == "function") {
    if (parts[0].empty()) return bad();
    named_account = parts[0];
    i = 2;
  }
  if (i >= parts.size() || parts.size() - i > 2) return bad();
  FunctionRef ref{std::string(parts[i]), i + 1 < parts.size() ? std::string(parts[i + 1]) : ""};
  if (ref.name.empty() || ref.name.size() > 64 ||
      !std::all_of(ref.name.begin(), ref.name.end(),
                   [](char c) { return is_name_char(c) || c == '.'; }))
    return bad();
  // In a function name Lambda's pattern is stricter than for the Qualifier parameter:
  // (:($LATEST|[a-zA-Z0-9-_]+))?
  if (i + 1 < parts.size()) {
    const auto& q = ref.qualifier;
    if (q.empty() || q.size() > 128 ||
        !(q == kLatest || std::all_of(q.begin(), q.end(), is_name_char)))
      return bad();
  }
  // A well-formed name of another region's or account's function is not one of ours: Lambda
  // answers ResourceNotFoundException, never the local function of the same name.
  if (!named_region.empty() && named_region != region)
    return fail(Errc::kNotFound,
                fmt::format("Functions from '{}' are not reachable in this region ('{}')",
                            named_region, region));
  if (!named_account.empty() && named_account != account)
    return fail(Errc::kNotFound,
                fmt::format("Function not found: {}. It belongs to account {}; this server holds "
                            "the functions of account {} only",
                            raw, named_account, account));
  return ref;
}

}  // namespace lambent::registry
