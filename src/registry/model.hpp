// registry/model.hpp — the Function / Version / Alias model.
// Owns: what a function is, and the rules a valid one follows.
// Never: HTTP, JSON wire shapes (api/ maps these to Lambda's shapes), running code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace lambent::registry {

inline constexpr std::string_view kLatest = "$LATEST";

// One version's configuration. Immutable once published; $LATEST is replaced
// as a whole on every update (a new RevisionId each time).
struct FunctionConfig {
  std::string name;
  std::string version{kLatest};
  std::string runtime;
  std::string handler;
  std::string role;
  std::string description;
  int timeout_s = 3;
  int memory_mb = 128;
  int ephemeral_mb = 512;
  std::map<std::string, std::string> environment;
  std::string architecture = "x86_64";
  std::string tracing_mode = "PassThrough";
  std::string log_format = "Text";    // Text | JSON
  std::string application_log_level;  // JSON format only
  std::string system_log_level;
  std::string log_group;  // default /aws/lambda/<name>
  std::vector<std::string> layers;
  std::optional<bool> network_egress;  // unset: the server default
  // Code
  std::string code_sha256_hex;  // artifact key
  std::string code_sha256;      // base64, as Lambda reports CodeSha256
  std::uint64_t code_size = 0;
  // Bookkeeping
  std::string revision_id;
  std::int64_t last_modified_ms = 0;
  std::string description_of_version;  // PublishVersion Description

  std::string effective_log_group() const {
    return log_group.empty() ? "/aws/lambda/" + name : log_group;
  }
};

struct AliasRouting {
  std::string version;
  double weight = 0;  // 0..1 share routed to `version`
};

struct Alias {
  std::string name;
  std::string function_version;
  std::string description;
  std::optional<AliasRouting> routing;
  std::string revision_id;
};

struct ProvisionedConcurrency {
  std::string qualifier;  // version number or alias name
  int requested = 0;
  std::int64_t last_modified_ms = 0;
};

// Everything stored about one function.
struct FunctionRecord {
  FunctionConfig latest;
  std::vector<FunctionConfig> versions;  // published, ascending
  std::vector<Alias> aliases;
  std::map<std::string, std::string> tags;
  std::optional<int> reserved_concurrency;
  std::vector<ProvisionedConcurrency> provisioned;
  int next_version = 1;

  const FunctionConfig* find_version(std::string_view v) const;
  const Alias* find_alias(std::string_view a) const;
};

// Fields a Create/UpdateFunctionConfiguration request may set. Validated by
// apply_config(); unset fields leave the current value.
struct ConfigInput {
  std::optional<std::string> runtime, handler, role, description;
  std::optional<int> timeout_s, memory_mb, ephemeral_mb;
  std::optional<std::map<std::string, std::string>> environment;
  std::optional<std::string> architecture, tracing_mode;
  std::optional<std::string> log_format, application_log_level, system_log_level, log_group;
  std::optional<std::vector<std::string>> layers;
  std::optional<std::string> package_type;
};

// Validation as Lambda does it (LAMBDA-COMPAT.md §1.3, §6.1). Errors are
// Errc::kInvalidParameter with Lambda's wording where known.
Result<void> validate_function_name(std::string_view name);
Result<void> validate_alias_name(std::string_view name);
// A version number, an alias name or $LATEST (empty: none given).
Result<void> validate_qualifier(std::string_view qualifier);
bool is_supported_runtime(std::string_view runtime);
Result<void> apply_config(FunctionConfig& cfg, const ConfigInput& in, bool creating);

// Splits "name", "name:qualifier", partial and full ARNs into (name, qualifier).
// Errors: kValidation when `raw` breaks Lambda's pattern; kNotFound when it is an ARN of another
// region than `region` or another account than `account` (the server's own).
struct FunctionRef {
  std::string name;
  std::string qualifier;  // empty when none given
};
Result<FunctionRef> parse_function_name(std::string_view raw, std::string_view region,
                                        std::string_view account);

}  // namespace lambent::registry
