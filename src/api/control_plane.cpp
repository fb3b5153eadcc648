// Control-plane operations (LAMBDA-COMPAT.md §1). Each runs on the blocking
// pool with cp_mu_ held: validate → store → publish to the engine, so a
// failed request changes nothing.
#include <fmt/format.h>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <map>

#include "api/call.hpp"
#include "api/errors.hpp"
#include "core/encoding.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace lambent::api {

namespace bhttp = boost::beast::http;
using nlohmann::json;
using registry::FunctionConfig;
using registry::FunctionRecord;

namespace {

constexpr int kListPageMax = 50;

Result<registry::ConfigInput> parse_config_input(const json& j) {
  registry::ConfigInput in;
  auto s = [&](const char* k, std::optional<std::string>& out) -> Result<void> {
    auto v = get_string(j, k);
    if (!v) return fail(std::move(v.error()));
    out = *v;
    return {};
  };
  auto i = [&](const char* k, std::optional<int>& out) -> Result<void> {
    auto v = get_int(j, k);
    if (!v) return fail(std::move(v.error()));
    out = *v;
    return {};
  };
  LAMBENT_TRY(s("Runtime", in.runtime));
  LAMBENT_TRY(s("Handler", in.handler));
  LAMBENT_TRY(s("Role", in.role));
  LAMBENT_TRY(s("Description", in.description));
  LAMBENT_TRY(s("PackageType", in.package_type));
  LAMBENT_TRY(i("Timeout", in.timeout_s));
  LAMBENT_TRY(i("MemorySize", in.memory_mb));
  if (auto e = j.find("Environment"); e != j.end() && !e->is_null()) {
    std::map<std::string, std::string> vars;
    if (!e->is_object()) return fail(Errc::kValidation, "Environment must be an object");
    if (auto v = e->find("Variables"); v != e->end() && !v->is_null()) {
      if (!v->is_object()) return fail(Errc::kValidation, "Environment.Variables must be a map");
      for (auto& [k, val] : v->items()) {
        if (!val.is_string())
          return fail(Errc::kValidation,
                      "Environment variable values must be strings (key '" + k + "')");
        vars[k] = val.get<std::string>();
      }
    }
    in.environment = std::move(vars);
  }
  if (auto e = j.find("EphemeralStorage"); e != j.end() && e->is_object()) {
    auto v = get_int(*e, "Size");
    if (!v) return fail(std::move(v.error()));
    in.ephemeral_mb = *v;
  }
  if (auto a = j.find("Architectures"); a != j.end() && !a->is_null()) {
    if (!a->is_array() || a->size() != 1 || !(*a)[0].is_string())
      return fail(Errc::kValidation,
                  "1 validation error detected: Value at 'architectures' failed to satisfy "
                  "constraint: Member must have length less than or equal to 1");
    in.architecture = (*a)[0].get<std::string>();
  }
  if (auto t = j.find("TracingConfig"); t != j.end() && t->is_object()) {
    auto m = get_string(*t, "Mode");
    if (!m) return fail(std::move(m.error()));
    in.tracing_mode = *m;
  }
  if (auto l = j.find("LoggingConfig"); l != j.end() && l->is_object()) {
    for (auto [k, out] : {std::pair{"LogFormat", &in.log_format},
                          std::pair{"ApplicationLogLevel", &in.application_log_level},
                          std::pair{"SystemLogLevel", &in.system_log_level},
                          std::pair{"LogGroup", &in.log_group}}) {
      auto v = get_string(*l, k);
      if (!v) return fail(std::move(v.error()));
      *out = *v;
    }
  }
  if (auto l = j.find("Layers"); l != j.end() && !l->is_null()) {
    if (!l->is_array()) return fail(Errc::kValidation, "Layers must be a list");
    std::vector<std::string> layers;
    for (const auto& x : *l)
      if (x.is_string()) layers.push_back(x.get<std::string>());
    in.layers = std::move(layers);
  }
  for (const char* unsupported : {"VpcConfig", "FileSystemConfigs", "ImageConfig", "KMSKeyArn",
                                  "CodeSigningConfigArn", "DeadLetterConfig"}) {
    auto it = j.find(unsupported);
    if (it == j.end() || it->is_null()) continue;
    const bool empty =
        (it->is_object() &&
         (it->empty() || (it->contains("SubnetIds") && (*it)["SubnetIds"].empty()))) ||
        (it->is_array() && it->empty()) || (it->is_string() && it->get<std::string>().empty());
    if (!empty)
      return fail(Errc::kInvalidParameter,
                  fmt::format("{} is not supported by Lambent", unsupported));
  }
  return in;
}

// Adds a Tags map of a CreateFunction or TagResource body to `into`, with Lambda's limits:
// string values, keys of 1-128 characters that do not start with "aws:", values of up to
// 256, at most 50 tags on a function. Changes nothing when it fails.
Result<void> merge_tags(const json& tags, std::map<std::string, std::string>& into) {
  if (!tags.is_object()) return fail(Errc::kValidation, "Tags must be a map of strings");
  auto merged = into;
  for (const auto& [k, v] : tags.items()) {
    if (!v.is_string())
      return fail(Errc::kValidation, fmt::format("The value of tag '{}' must be a string", k));
    const auto& value = v.get_ref<const std::string&>();
    if (k.empty() || k.size() > 128 || value.size() > 256)
      return fail(Errc::kValidation,
                  fmt::format("1 validation error detected: tag '{}': keys must have length "
                              "between 1 and 128, values at most 256",
                              k));
    if (k.size() >= 4 && std::equal(k.begin(), k.begin() + 4, "aws:", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))
      return fail(Errc::kInvalidParameter,
                  fmt::format("Tag key '{}' uses the reserved prefix aws:", k));
    merged[k] = value;
  }
  if (merged.size() > 50)
    return fail(Errc::kInvalidParameter, "A function can have at most 50 tags");
  into = std::move(merged);
  return {};
}

// apply_config followed by what only the log store knows: a LogGroup (valid by Lambda's
// pattern) must fit a folder name once logs::encode_name has encoded it.
Result<void> apply_config_input(FunctionConfig& cfg, const registry::ConfigInput& in,
                                bool creating) {
  LAMBENT_TRY(registry::apply_config(cfg, in, creating));
  if (in.log_group) {
    const auto folder = logs::encode_name(*in.log_group).size();
    if (folder > 255)
      return fail(Errc::kInvalidParameter,
                  fmt::format("LogGroup is too long for Lambent's log store: {} bytes as a folder "
                              "name ('/' and '#' count three), at most 255",
                              folder));
  }
  return {};
}

// The package from a Code / UpdateFunctionCode body: only ZipFile is supported.
Result<std::string> zip_bytes(const json& code) {
  auto zf = get_string(code, "ZipFile");
  if (!zf) return fail(std::move(zf.error()));
  if (!*zf) {
    if (code.contains("S3Bucket") || code.contains("S3Key"))
      return fail(Errc::kInvalidParameter,
                  "Code from S3 (S3Bucket/S3Key) is not supported by Lambent; upload the zip "
                  "directly (ZipFile, e.g. --zip-file fileb://function.zip)");
    if (code.contains("ImageUri"))
      return fail(Errc::kInvalidParameter,
                  "Container images (ImageUri) are not supported by Lambent yet");
    return fail(Errc::kInvalidParameter, "Please provide a source for function code (ZipFile).");
  }
  auto bytes = base64_decode(**zf);
  if (!bytes)
    return fail(Errc::kInvalidParameter,
                "Could not unzip uploaded file. ZipFile is not valid base64.");
  return std::move(*bytes);
}

bool same_code_and_config(const FunctionConfig& a, const FunctionConfig& b) {
  return a.code_sha256 == b.code_sha256 && a.runtime == b.runtime && a.handler == b.handler &&
         a.role == b.role && a.description == b.description && a.timeout_s == b.timeout_s &&
         a.memory_mb == b.memory_mb && a.ephemeral_mb == b.ephemeral_mb &&
         a.environment == b.environment && a.tracing_mode == b.tracing_mode &&
         a.log_format == b.log_format && a.application_log_level == b.application_log_level &&
         a.system_log_level == b.system_log_level && a.log_group == b.log_group &&
         a.layers == b.layers && a.network_egress == b.network_egress;
}

Result<void> check_revision(const json& body, const std::string& current) {
  auto rid = get_string(body, "RevisionId");
  if (!rid) return fail(std::move(rid.error()));
  if (*rid && **rid != current)
    return fail(Errc::kPreconditionFailed,
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id");
  return {};
}

std::string encode_marker(std::size_t offset) {
  return base64_encode(fmt::format("lambent:{}", offset));
}

Result<std::size_t> decode_marker(const std::string& marker) {
  if (marker.empty()) return 0;
  auto d = base64_decode(marker);
  if (!d || !d->starts_with("lambent:"))
    return fail(Errc::kInvalidParameter, "Invalid pagination token (Marker)");
  return static_cast<std::size_t>(std::strtoull(d->c_str() + 8, nullptr, 10));
}

Result<int> page_size(const ApiService::Call& c, int max) {
  if (!c.has_q("MaxItems")) return max;
  const auto v = c.q("MaxItems");
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < 1 || n > 10000)
    return fail(Errc::kValidation, "1 validation error detected: Value '" + v +
                                       "' at 'maxItems' failed to satisfy constraint: Member must "
                                       "have value between 1 and 10000");
  return static_cast<int>(std::min<long>(n, max));
}

// One page of a list operation: Marker/MaxItems in, `key` + NextMarker out.
template <class T, class ToJson>
http::Response list_page(const ApiService::Call& c, const char* key, const std::vector<T>& items,
                         ToJson to_json) {
  auto offset = decode_marker(c.q("Marker"));
  if (!offset) return fail_response(c, offset.error());
  auto limit = page_size(c, kListPageMax);
  if (!limit) return fail_response(c, limit.error());
  json out;
  out[key] = json::array();
  std::size_t i = *offset;
  for (; i < items.size() && out[key].size() < static_cast<std::size_t>(*limit); ++i)
    out[key].push_back(to_json(items[i]));
  if (i < items.size()) out["NextMarker"] = encode_marker(i);
  return ok_json(c, 200, out);
}

json alias_json(const std::string& arn, const registry::Alias& a) {
  json j = {{"AliasArn", arn},
            {"Name", a.name},
            {"FunctionVersion", a.function_version},
            {"Description", a.description},
            {"RevisionId", a.revision_id}};
  if (a.routing)
    j["RoutingConfig"] = {{"AdditionalVersionWeights", {{a.routing->version, a.routing->weight}}}};
  return j;
}

}  // namespace

std::string ApiService::config_json(const FunctionConfig& cfg, bool list_shape) const {
  const bool latest = cfg.version == registry::kLatest;
  json j = {
      {"FunctionName", cfg.name},
      {"FunctionArn", latest ? arn(cfg.name) : arn(cfg.name, cfg.version)},
      {"Runtime", cfg.runtime},
      {"Role", cfg.role},
      {"Handler", cfg.handler},
      {"CodeSize", cfg.code_size},
      {"Description", latest ? cfg.description : cfg.description_of_version},
      {"Timeout", cfg.timeout_s},
      {"MemorySize", cfg.memory_mb},
      {"LastModified", lambda_timestamp(cfg.last_modified_ms)},
      {"CodeSha256", cfg.code_sha256},
      {"Version", cfg.version},
      {"TracingConfig", {{"Mode", cfg.tracing_mode}}},
      {"RevisionId", cfg.revision_id},
      {"PackageType", "Zip"},
      {"Architectures", {cfg.architecture}},
      {"EphemeralStorage", {{"Size", cfg.ephemeral_mb}}},
      {"SnapStart", {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
  };
  if (!cfg.environment.empty()) j["Environment"] = {{"Variables", cfg.environment}};
  json logging = {{"LogFormat", cfg.log_format}, {"LogGroup", cfg.effective_log_group()}};
  if (!cfg.application_log_level.empty())
    logging["ApplicationLogLevel"] = cfg.application_log_level;
  if (!cfg.system_log_level.empty()) logging["SystemLogLevel"] = cfg.system_log_level;
  j["LoggingConfig"] = logging;
  if (!list_shape) {
    j["State"] = "Active";
    j["LastUpdateStatus"] = "Successful";
    const bool py = cfg.runtime.starts_with("python");
    const bool node = cfg.runtime.starts_with("nodejs");
    if (py || node) {
      // The interpreter actually used, never a pretended one (GetFunction shows it).
      j["RuntimeVersionConfig"] = {
          {"RuntimeVersionArn",
           fmt::format("arn:aws:lambda:{}::runtime:lambent-{}-{}", settings_.region, cfg.runtime,
                       settings_.runtime_versions.contains(cfg.runtime)
                           ? settings_.runtime_versions.at(cfg.runtime)
                           : (py ? settings_.python_version : settings_.node_version))}};
    }
  }
  return json_text(j);
}

Result<FunctionRecord*> ApiService::find_locked(const std::string& name) {
  auto it = records_.find(name);
  if (it == records_.end()) return fail(Errc::kNotFound, "Function not found: " + arn(name));
  return &it->second;
}

engine::FunctionSnapshot ApiService::snapshot(const FunctionRecord& rec) const {
  // Outbound network is Lambent's own per-function setting, carried by the
  // tag lambent:egress=true|false (Lambda's API has no field for it); unset
  // means the server default (--egress).
  std::optional<bool> egress;
  if (auto t = rec.tags.find("lambent:egress"); t != rec.tags.end()) egress = t->second == "true";
  auto with_egress = [&](const FunctionConfig& c) {
    auto copy = std::make_shared<FunctionConfig>(c);
    if (egress) copy->network_egress = egress;
    return std::shared_ptr<const FunctionConfig>(std::move(copy));
  };
  engine::FunctionSnapshot s;
  s.name = rec.latest.name;
  s.latest = {with_egress(rec.latest), deps_.artifacts.task_root(rec.latest.code_sha256_hex), 0};
  for (const auto& v : rec.versions)
    s.versions[v.version] = {with_egress(v), deps_.artifacts.task_root(v.code_sha256_hex), 0};
  for (const auto& a : rec.aliases) s.aliases[a.name] = a;
  s.reserved_concurrency = rec.reserved_concurrency;
  for (const auto& p : rec.provisioned) {
    std::string version = p.qualifier;
    if (const auto* a = rec.find_alias(p.qualifier)) version = a->function_version;
    s.provisioned[version] += p.requested;
  }
  return s;
}

Result<void> ApiService::save_locked(FunctionRecord& rec) {
  LAMBENT_TRY(deps_.store.put(rec));
  records_[rec.latest.name] = rec;
  deps_.engine.put_function(snapshot(rec));
  return {};
}

Result<void> ApiService::load() {
  auto all = deps_.store.load_all();
  if (!all) return fail(std::move(all.error()));
  std::lock_guard lock(cp_mu_);
  for (auto& rec : *all) {
    // Trees are re-created from blobs if they were removed.
    for (const auto* cfg : [&] {
           std::vector<const FunctionConfig*> v{&rec.latest};
           for (const auto& x : rec.versions) v.push_back(&x);
           return v;
         }()) {
      auto pkg = deps_.artifacts.get(cfg->code_sha256_hex);
      if (!pkg)
        LAMBENT_LOG_WARN("api", "function {}: package {} unavailable: {}", cfg->name,
                         cfg->code_sha256_hex, pkg.error().message);
    }
    deps_.engine.put_function(snapshot(rec));
    records_[rec.latest.name] = std::move(rec);
  }
  LAMBENT_LOG_INFO("api", "loaded {} functions", records_.size());
  return {};
}

http::Response ApiService::route_control(Call& c) {
  const auto& s = c.segs;
  const auto m = c.req.method();
  auto resolve_name = [&](const std::string& raw, std::string& qualifier) -> Result<std::string> {
    auto ref = registry::parse_function_name(raw, settings_.region, settings_.account);
    if (!ref) return fail(std::move(ref.error()));
    qualifier = ref->qualifier;
    if (c.has_q("Qualifier")) {
      if (!qualifier.empty() && qualifier != c.q("Qualifier"))
        return fail(
            Errc::kInvalidParameter,
            "The derived qualifier from the function name does not match the specified qualifier.");
      qualifier = c.q("Qualifier");
    }
    return ref->name;
  };
  auto not_found_route = [&] {
    return fail_response(
        c, make_error(Errc::kNotFound,
                      "Unknown operation: " + std::string(c.req.method_string()) + " " + c.path));
  };
  if (s.empty()) return not_found_route();
  const std::string& api = s[0];

  if (api == "lambent" && s.size() == 3 && s[1] == "code" && m == bhttp::verb::get)
    return code_download(c);
  if (api == "2016-08-19" && s.size() == 2 && s[1] == "account-settings" && m == bhttp::verb::get)
    return account_settings(c);
  if (api == "2017-03-31" && s.size() == 3 && s[1] == "tags") return tags(c, s[2]);

  if (s.size() < 2 || s[1] != "functions") return not_found_route();
  if (api == "2015-03-31" && s.size() == 2) {
    if (m == bhttp::verb::post) return create_function(c);
    if (m == bhttp::verb::get) return list_functions(c);
    return not_found_route();
  }
  if (s.size() < 3) return not_found_route();
  std::string qualifier;
  auto name = resolve_name(s[2], qualifier);
  if (!name) return fail_response(c, name.error());

  if (api == "2015-03-31") {
    if (s.size() == 3) {
      if (m == bhttp::verb::get) return get_function(c, *name, false);
      if (m == bhttp::verb::delete_) return delete_function(c, *name);
    } else if (s.size() == 4) {
      const auto& op = s[3];
      if (op == "configuration" && m == bhttp::verb::get) return get_function(c, *name, true);
      if (op == "configuration" && m == bhttp::verb::put) return update_config(c, *name);
      if (op == "code" && m == bhttp::verb::put) return update_code(c, *name);
      if (op == "versions" && m == bhttp::verb::post) return publish_version(c, *name);
      if (op == "versions" && m == bhttp::verb::get) return list_versions(c, *name);
      if (op == "aliases" && m == bhttp::verb::post) return create_alias(c, *name);
      if (op == "aliases" && m == bhttp::verb::get) return list_aliases(c, *name);
    } else if (s.size() == 5 && s[3] == "aliases") {
      if (m == bhttp::verb::get) return get_alias(c, *name, s[4]);
      if (m == bhttp::verb::put) return update_alias(c, *name, s[4]);
      if (m == bhttp::verb::delete_) return delete_alias(c, *name, s[4]);
    }
  }
  if (api == "2019-09-30" && s.size() == 4 && s[3] == "provisioned-concurrency")
    return provisioned(c, *name, qualifier);
  if (s.size() == 4 && s[3] == "concurrency") {
    if (api == "2017-10-31" && m == bhttp::verb::put) return put_concurrency(c, *name);
    if (api == "2017-10-31" && m == bhttp::verb::delete_) return delete_concurrency(c, *name);
    if (api == "2019-09-30" && m == bhttp::verb::get) return get_concurrency(c, *name);
  }
  return not_found_route();
}

http::Response ApiService::create_function(Call& c) {
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  auto name_field = get_string(*body, "FunctionName");
  if (!name_field) return fail_response(c, name_field.error());
  if (!*name_field)
    return fail_response(c, make_error(Errc::kValidation,
                                       "1 validation error detected: Value null at 'functionName' "
                                       "failed to satisfy constraint: Member must not be null"));
  auto ref = registry::parse_function_name(**name_field, settings_.region, settings_.account);
  if (!ref) return fail_response(c, ref.error());
  if (!ref->qualifier.empty())
    return fail_response(c,
                         make_error(Errc::kInvalidParameter,
                                    "FunctionName must not be qualified when creating a function"));
  if (auto v = registry::validate_function_name(ref->name); !v) return fail_response(c, v.error());
  if (records_.contains(ref->name))
    return fail_response(c, make_error(Errc::kConflict, "Function already exist: " + ref->name));
  if (!body->contains("Role"))
    return fail_response(c,
                         make_error(Errc::kValidation,
                                    "1 validation error detected: Value null at 'role' failed to "
                                    "satisfy constraint: Member must not be null"));
  auto input = parse_config_input(*body);
  if (!input) return fail_response(c, input.error());
  FunctionConfig cfg;
  cfg.name = ref->name;
  if (auto v = apply_config_input(cfg, *input, true); !v) return fail_response(c, v.error());
  auto code = body->find("Code");
  if (code == body->end() || !code->is_object())
    return fail_response(c,
                         make_error(Errc::kValidation,
                                    "1 validation error detected: Value null at 'code' failed to "
                                    "satisfy constraint: Member must not be null"));
  auto zip = zip_bytes(*code);
  if (!zip) return fail_response(c, zip.error());
  auto publish = get_bool(*body, "Publish");
  if (!publish) return fail_response(c, publish.error());
  std::map<std::string, std::string> tags;
  if (auto t = body->find("Tags"); t != body->end() && !t->is_null())
    if (auto ok = merge_tags(*t, tags); !ok) return fail_response(c, ok.error());
  // Every check comes before the package is stored: a refused request leaves nothing behind.
  const bool stored_before = deps_.artifacts.get(to_hex(sha256(*zip))).has_value();
  auto pkg = deps_.artifacts.put_zip(*zip);
  if (!pkg) return fail_response(c, pkg.error());
  cfg.code_sha256_hex = pkg->sha256_hex;
  cfg.code_sha256 = pkg->sha256_base64;
  cfg.code_size = pkg->size;
  cfg.revision_id = new_uuid();
  cfg.last_modified_ms = unix_ms_now();

  FunctionRecord rec;
  rec.latest = cfg;
  rec.tags = std::move(tags);
  if (publish->value_or(false)) {
    FunctionConfig v = cfg;
    v.version = std::to_string(rec.next_version++);
    v.revision_id = new_uuid();
    rec.versions.push_back(v);
  }
  if (auto r = save_locked(rec); !r) {
    if (!stored_before) (void)deps_.artifacts.remove(pkg->sha256_hex);
    return fail_response(c, r.error());
  }
  LAMBENT_LOG_INFO("api", "created function {} ({}, {} bytes)", cfg.name, cfg.runtime,
                   cfg.code_size);
  return ok_raw(c, 201,
                config_json(rec.versions.empty() ? rec.latest : rec.versions.back(), false));
}

http::Response ApiService::get_function(Call& c, const std::string& name, bool config_only) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  const auto qualifier =
      c.q("Qualifier").empty() && c.segs.size() >= 3
          ? registry::parse_function_name(c.segs[2], settings_.region, settings_.account)->qualifier
          : c.q("Qualifier");
  const FunctionConfig* cfg = &(*rec)->latest;
  if (!qualifier.empty()) {
    cfg = (*rec)->find_version(qualifier);
    if (!cfg) {
      if (const auto* a = (*rec)->find_alias(qualifier))
        cfg = (*rec)->find_version(a->function_version);
    }
    if (!cfg)
      return fail_response(
          c, make_error(Errc::kNotFound, "Function not found: " + arn(name, qualifier)));
  }
  if (config_only) return ok_raw(c, 200, config_json(*cfg, false));
  json out;
  out["Configuration"] = json::parse(config_json(*cfg, false));
  out["Code"] = {{"RepositoryType", "S3"},
                 {"Location", presigned_code_url(*cfg, c.header("Host"))}};
  if (!(*rec)->tags.empty()) out["Tags"] = (*rec)->tags;
  if ((*rec)->reserved_concurrency)
    out["Concurrency"] = {{"ReservedConcurrentExecutions", *(*rec)->reserved_concurrency}};
  return ok_json(c, 200, out);
}

std::string ApiService::presigned_code_url(const FunctionConfig& cfg,
                                           const std::string& host) const {
  const auto expires = unix_ms_now() / 1000 + 600;
  const auto sig = to_hex(hmac_sha256(settings_.credentials.secret_access_key,
                                      fmt::format("{}:{}", cfg.code_sha256_hex, expires)));
  // The address the client reached us by, unless a public URL is configured.
  const std::string base =
      !settings_.public_endpoint.empty() ? settings_.public_endpoint : "http://" + host;
  return fmt::format("{}/lambent/code/{}?Expires={}&Signature={}", base, cfg.code_sha256_hex,
                     expires, sig);
}

http::Response ApiService::code_download(Call& c) {
  const auto& hex = c.segs[2];
  const auto expires = c.q("Expires");
  const auto want = to_hex(
      hmac_sha256(settings_.credentials.secret_access_key, fmt::format("{}:{}", hex, expires)));
  if (c.q("Signature") != want || std::strtoll(expires.c_str(), nullptr, 10) < unix_ms_now() / 1000)
    return fail_response(c, make_error(Errc::kSignatureMismatch,
                                       "Request has expired or the signature does not match"));
  auto zip = deps_.artifacts.read_zip(hex);
  if (!zip) return fail_response(c, make_error(Errc::kNotFound, "No such code package"));
  auto res = ok_raw(c, 200, std::move(*zip));
  res.set(bhttp::field::content_type, "application/zip");
  return res;
}

http::Response ApiService::update_code(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  if (auto r = check_revision(*body, (*rec)->latest.revision_id); !r)
    return fail_response(c, r.error());
  auto zip = zip_bytes(*body);
  if (!zip) return fail_response(c, zip.error());
  auto dry = get_bool(*body, "DryRun");
  if (!dry) return fail_response(c, dry.error());
  auto publish = get_bool(*body, "Publish");
  if (!publish) return fail_response(c, publish.error());
  // A dry run validates the package the same way, then leaves no trace of it
  // (unless the same package is stored already for another function).
  const bool stored_before = deps_.artifacts.get(to_hex(sha256(*zip))).has_value();
  auto pkg = deps_.artifacts.put_zip(*zip);
  if (!pkg) return fail_response(c, pkg.error());
  if (dry->value_or(false) && !stored_before) (void)deps_.artifacts.remove(pkg->sha256_hex);
  FunctionRecord next = **rec;
  auto& cfg = next.latest;
  cfg.code_sha256_hex = pkg->sha256_hex;
  cfg.code_sha256 = pkg->sha256_base64;
  cfg.code_size = pkg->size;
  if (dry->value_or(false)) return ok_raw(c, 200, config_json(cfg, false));
  cfg.revision_id = new_uuid();
  cfg.last_modified_ms = unix_ms_now();
  if (publish->value_or(false)) {
    FunctionConfig v = cfg;
    v.version = std::to_string(next.next_version++);
    v.revision_id = new_uuid();
    next.versions.push_back(v);
  }
  if (auto r = save_locked(next); !r) {
    if (!stored_before) (void)deps_.artifacts.remove(pkg->sha256_hex);
    return fail_response(c, r.error());
  }
  return ok_raw(c, 200,
                config_json(publish->value_or(false) ? next.versions.back() : next.latest, false));
}

http::Response ApiService::update_config(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  if (auto r = check_revision(*body, (*rec)->latest.revision_id); !r)
    return fail_response(c, r.error());
  auto input = parse_config_input(*body);
  if (!input) return fail_response(c, input.error());
  FunctionRecord next = **rec;
  if (auto v = apply_config_input(next.latest, *input, false); !v)
    return fail_response(c, v.error());
  next.latest.revision_id = new_uuid();
  next.latest.last_modified_ms = unix_ms_now();
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_raw(c, 200, config_json(next.latest, false));
}

http::Response ApiService::delete_function(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  std::string qualifier = c.q("Qualifier");
  if (qualifier.empty())
    qualifier =
        registry::parse_function_name(c.segs[2], settings_.region, settings_.account)->qualifier;
  if (!qualifier.empty()) {
    if (qualifier == registry::kLatest)
      return fail_response(
          c, make_error(Errc::kInvalidParameter,
                        "$LATEST version cannot be deleted without deleting the function."));
    FunctionRecord next = **rec;
    auto it = std::find_if(next.versions.begin(), next.versions.end(),
                           [&](const FunctionConfig& v) { return v.version == qualifier; });
    if (it == next.versions.end())
      return fail_response(
          c, make_error(Errc::kNotFound, "Function not found: " + arn(name, qualifier)));
    for (const auto& a : next.aliases)
      if (a.function_version == qualifier || (a.routing && a.routing->version == qualifier))
        return fail_response(
            c, make_error(Errc::kConflict,
                          fmt::format("Unable to delete version because the following "
                                      "aliases reference it: [{}]",
                                      a.name)));
    next.versions.erase(it);
    std::erase_if(next.provisioned, [&](const auto& p) { return p.qualifier == qualifier; });
    if (auto r = save_locked(next); !r) return fail_response(c, r.error());
    return ok_raw(c, 204, "");
  }
  if (auto r = deps_.store.remove(name); !r) return fail_response(c, r.error());
  records_.erase(name);
  deps_.engine.remove_function(name);
  LAMBENT_LOG_INFO("api", "deleted function {}", name);
  auto res = ok_raw(c, 204, "");
  return res;
}

http::Response ApiService::list_functions(Call& c) {
  const bool all_versions = c.q("FunctionVersion") == "ALL";
  std::vector<const FunctionConfig*> items;
  for (const auto& [n, rec] : records_) {
    items.push_back(&rec.latest);
    if (all_versions)
      for (const auto& v : rec.versions) items.push_back(&v);
  }
  return list_page(c, "Functions", items,
                   [&](const FunctionConfig* f) { return json::parse(config_json(*f, true)); });
}

http::Response ApiService::publish_version(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  FunctionRecord next = **rec;
  if (auto r = check_revision(*body, next.latest.revision_id); !r)
    return fail_response(c, r.error());
  auto sha = get_string(*body, "CodeSha256");
  if (!sha) return fail_response(c, sha.error());
  if (*sha && **sha != next.latest.code_sha256)
    return fail_response(
        c, make_error(Errc::kPreconditionFailed,
                      fmt::format("CodeSHA256 ({}) is different from current CodeSHA256 "
                                  "in $LATEST ({}). Please try again with the current "
                                  "CodeSHA256.",
                                  **sha, next.latest.code_sha256)));
  // Lambda does not publish a version when nothing changed since the last one.
  if (!next.versions.empty() && same_code_and_config(next.versions.back(), next.latest))
    return ok_raw(c, 201, config_json(next.versions.back(), false));
  auto desc = get_string(*body, "Description");
  if (!desc) return fail_response(c, desc.error());
  FunctionConfig v = next.latest;
  v.version = std::to_string(next.next_version++);
  v.revision_id = new_uuid();
  v.last_modified_ms = unix_ms_now();
  v.description_of_version = desc->value_or(next.latest.description);
  next.versions.push_back(v);
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_raw(c, 201, config_json(v, false));
}

http::Response ApiService::list_versions(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  std::vector<const FunctionConfig*> items{&(*rec)->latest};
  for (const auto& v : (*rec)->versions) items.push_back(&v);
  return list_page(c, "Versions", items,
                   [&](const FunctionConfig* f) { return json::parse(config_json(*f, true)); });
}

namespace {

Result<std::optional<registry::AliasRouting>> parse_routing(const json& body,
                                                            const FunctionRecord& rec) {
  auto rc = body.find("RoutingConfig");
  if (rc == body.end() || rc->is_null()) return std::optional<registry::AliasRouting>{};
  auto w = rc->find("AdditionalVersionWeights");
  if (w == rc->end() || w->is_null() || w->empty()) return std::optional<registry::AliasRouting>{};
  if (!w->is_object() || w->size() > 1)
    return fail(Errc::kInvalidParameter, "RoutingConfig supports at most one additional version");
  const auto first = w->begin();
  const std::string version = first.key();
  const json& weight = first.value();
  if (!weight.is_number() || weight.get<double>() < 0 || weight.get<double>() > 1)
    return fail(Errc::kValidation, "AdditionalVersionWeights values must be between 0.0 and 1.0");
  if (!rec.find_version(version) || version == registry::kLatest)
    return fail(Errc::kInvalidParameter,
                "Version " + version + " of function " + rec.latest.name + " does not exist");
  return std::optional<registry::AliasRouting>{
      registry::AliasRouting{version, weight.get<double>()}};
}

// Provisioned concurrency requested for all of a function's versions and aliases.
std::int64_t provisioned_total(const FunctionRecord& rec) {
  std::int64_t total = 0;
  for (const auto& p : rec.provisioned) total += p.requested;
  return total;
}

// The memory that a function's provisioned environments hold, each the MemorySize of the
// version it runs (an alias's, its target's).
std::int64_t provisioned_memory_mb(const FunctionRecord& rec) {
  std::int64_t total = 0;
  for (const auto& p : rec.provisioned) {
    std::string_view version = p.qualifier;
    if (const auto* a = rec.find_alias(p.qualifier)) version = a->function_version;
    const auto* cfg = rec.find_version(version);
    total += std::int64_t{p.requested} * (cfg ? cfg->memory_mb : rec.latest.memory_mb);
  }
  return total;
}

// What AWS refuses for an alias that has provisioned concurrency (or is about to): routing
// weights, or a target that is not a published version.
Result<void> check_provisioned_alias(const FunctionRecord& rec, const registry::Alias& a) {
  const bool provisioned = std::any_of(rec.provisioned.begin(), rec.provisioned.end(),
                                       [&](const auto& p) { return p.qualifier == a.name; });
  if (!provisioned) return {};
  if (a.function_version == registry::kLatest)
    return fail(Errc::kInvalidParameter,
                "Provisioned Concurrency Configs cannot be applied to unpublished function "
                "versions.");
  if (a.routing)
    return fail(Errc::kInvalidParameter,
                "Alias with weights can not be used with Provisioned Concurrency");
  return {};
}

}  // namespace

http::Response ApiService::create_alias(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  auto alias_name = get_string(*body, "Name");
  auto version = get_string(*body, "FunctionVersion");
  auto desc = get_string(*body, "Description");
  for (auto* r : {&alias_name, &version, &desc})
    if (!*r) return fail_response(c, r->error());
  if (!*alias_name || !*version)
    return fail_response(c, make_error(Errc::kValidation, "Name and FunctionVersion are required"));
  if (auto v = registry::validate_alias_name(**alias_name); !v) return fail_response(c, v.error());
  if ((*rec)->find_alias(**alias_name))
    return fail_response(
        c, make_error(Errc::kConflict, "Alias already exists: " + arn(name, **alias_name)));
  if (!(*rec)->find_version(**version))
    return fail_response(
        c, make_error(Errc::kNotFound, "Function not found: " + arn(name, **version)));
  auto routing = parse_routing(*body, **rec);
  if (!routing) return fail_response(c, routing.error());
  registry::Alias a{**alias_name, **version, desc->value_or(""), *routing, new_uuid()};
  FunctionRecord next = **rec;
  next.aliases.push_back(a);
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_json(c, 201, alias_json(arn(name, a.name), a));
}

http::Response ApiService::get_alias(Call& c, const std::string& name, const std::string& alias) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  const auto* a = (*rec)->find_alias(alias);
  if (!a)
    return fail_response(c, make_error(Errc::kNotFound, "Alias not found: " + arn(name, alias)));
  return ok_json(c, 200, alias_json(arn(name, alias), *a));
}

http::Response ApiService::update_alias(Call& c, const std::string& name,
                                        const std::string& alias) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  if (!(*rec)->find_alias(alias))
    return fail_response(c, make_error(Errc::kNotFound, "Alias not found: " + arn(name, alias)));
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  FunctionRecord next = **rec;
  auto& a = *std::find_if(next.aliases.begin(), next.aliases.end(),
                          [&](const registry::Alias& x) { return x.name == alias; });
  if (auto r = check_revision(*body, a.revision_id); !r) return fail_response(c, r.error());
  auto version = get_string(*body, "FunctionVersion");
  auto desc = get_string(*body, "Description");
  if (!version) return fail_response(c, version.error());
  if (!desc) return fail_response(c, desc.error());
  if (*version) {
    if (!next.find_version(**version))
      return fail_response(
          c, make_error(Errc::kNotFound, "Function not found: " + arn(name, **version)));
    a.function_version = **version;
  }
  if (*desc) a.description = **desc;
  if (body->contains("RoutingConfig")) {
    auto routing = parse_routing(*body, next);
    if (!routing) return fail_response(c, routing.error());
    a.routing = *routing;
  }
  if (auto ok = check_provisioned_alias(next, a); !ok) return fail_response(c, ok.error());
  if (auto ok = check_provisioned_memory(next); !ok) return fail_response(c, ok.error());
  a.revision_id = new_uuid();
  const auto out = alias_json(arn(name, alias), a);
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_json(c, 200, out);
}

http::Response ApiService::delete_alias(Call& c, const std::string& name,
                                        const std::string& alias) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  FunctionRecord next = **rec;
  std::erase_if(next.aliases, [&](const registry::Alias& a) { return a.name == alias; });
  std::erase_if(next.provisioned, [&](const auto& p) { return p.qualifier == alias; });
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_raw(c, 204, "");
}

http::Response ApiService::list_aliases(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  const auto fv = c.q("FunctionVersion");
  std::vector<const registry::Alias*> items;
  for (const auto& a : (*rec)->aliases)
    if (fv.empty() || a.function_version == fv) items.push_back(&a);
  return list_page(c, "Aliases", items,
                   [&](const registry::Alias* a) { return alias_json(arn(name, a->name), *a); });
}

http::Response ApiService::account_settings(Call& c) {
  std::uint64_t total = 0;
  for (const auto& [n, rec] : records_) {
    total += rec.latest.code_size;
    for (const auto& v : rec.versions) total += v.code_size;
  }
  int reserved = 0;
  for (const auto& [n, rec] : records_) reserved += rec.reserved_concurrency.value_or(0);
  json out = {{"AccountLimit",
               {{"TotalCodeSize", 80530636800ull},
                {"CodeSizeUnzipped", 262144000},
                {"CodeSizeZipped", 52428800},
                {"ConcurrentExecutions", settings_.account_concurrency},
                {"UnreservedConcurrentExecutions", settings_.account_concurrency - reserved}}},
              {"AccountUsage", {{"TotalCodeSize", total}, {"FunctionCount", records_.size()}}}};
  return ok_json(c, 200, out);
}

Result<void> ApiService::check_provisioned_memory(const FunctionRecord& next) const {
  // Provisioned environments are never evicted: all of them, of every function, must fit in
  // the host's memory budget together, or some would never be ready and the rest would keep
  // every on-demand environment out.
  const std::int64_t budget = deps_.engine.memory_budget_mb();
  if (budget <= 0) return {};
  std::int64_t wanted = provisioned_memory_mb(next);
  for (const auto& [fn, r] : records_)
    if (fn != next.latest.name) wanted += provisioned_memory_mb(r);
  if (wanted <= budget) return {};
  return fail(Errc::kInvalidParameter,
              fmt::format("Provisioned concurrency would hold {} MB of environments; this host's "
                          "memory budget is {} MB (lambent serve --memory-budget).",
                          wanted, budget));
}

std::int64_t ApiService::unreserved_left(const std::string& name, std::int64_t claimed) const {
  std::int64_t left = std::int64_t{settings_.account_concurrency} - claimed;
  for (const auto& [fn, r] : records_)
    if (fn != name) left -= r.reserved_concurrency ? *r.reserved_concurrency : provisioned_total(r);
  return left;
}

http::Response ApiService::put_concurrency(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  auto n = get_int(*body, "ReservedConcurrentExecutions");
  if (!n) return fail_response(c, n.error());
  if (!*n || **n < 0)
    return fail_response(c,
                         make_error(Errc::kValidation,
                                    "1 validation error detected: Value at "
                                    "'reservedConcurrentExecutions' failed to satisfy constraint: "
                                    "Member must have value greater than or equal to 0"));
  // The function's own provisioned environments come out of its reservation.
  if (const std::int64_t own = provisioned_total(**rec); **n < own)
    return fail_response(
        c, make_error(Errc::kInvalidParameter,
                      fmt::format("Specified ReservedConcurrentExecutions ({}) is less than the "
                                  "function's provisioned concurrency ({}); lower the "
                                  "provisioned concurrency first.",
                                  **n, own)));
  if (unreserved_left(name, **n) < 100)
    return fail_response(
        c, make_error(Errc::kInvalidParameter,
                      fmt::format("Specified ReservedConcurrentExecutions for function decreases "
                                  "account's UnreservedConcurrentExecution below its minimum value "
                                  "of [100].")));
  FunctionRecord next = **rec;
  next.reserved_concurrency = **n;
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_json(c, 200, {{"ReservedConcurrentExecutions", **n}});
}

http::Response ApiService::get_concurrency(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  json out = json::object();
  if ((*rec)->reserved_concurrency)
    out["ReservedConcurrentExecutions"] = *(*rec)->reserved_concurrency;
  return ok_json(c, 200, out);
}

http::Response ApiService::delete_concurrency(Call& c, const std::string& name) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  FunctionRecord next = **rec;
  next.reserved_concurrency.reset();
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_raw(c, 204, "");
}

http::Response ApiService::tags(Call& c, const std::string& resource) {
  auto ref = registry::parse_function_name(resource, settings_.region, settings_.account);
  if (!ref && ref.error().code == Errc::kNotFound) return fail_response(c, ref.error());
  if (!ref || !resource.starts_with("arn:"))
    return fail_response(c, make_error(Errc::kInvalidParameter, "Resource must be a function ARN"));
  auto rec = find_locked(ref->name);
  if (!rec) return fail_response(c, rec.error());
  const auto m = c.req.method();
  if (m == bhttp::verb::get) return ok_json(c, 200, {{"Tags", (*rec)->tags}});
  FunctionRecord next = **rec;
  if (m == bhttp::verb::post) {
    auto body = c.json_body();
    if (!body) return fail_response(c, body.error());
    auto t = body->find("Tags");
    if (t == body->end())
      return fail_response(c, make_error(Errc::kValidation, "Tags must be a map"));
    if (auto ok = merge_tags(*t, next.tags); !ok) return fail_response(c, ok.error());
  } else if (m == bhttp::verb::delete_) {
    auto [lo, hi] = c.query.equal_range("tagKeys");
    for (auto it = lo; it != hi; ++it) next.tags.erase(it->second);
  } else {
    return fail_response(c, make_error(Errc::kNotFound, "Unknown operation"));
  }
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_raw(c, 204, "");
}

}  // namespace lambent::api

namespace lambent::api {

http::Response ApiService::provisioned(Call& c, const std::string& name,
                                       const std::string& qualifier) {
  auto rec = find_locked(name);
  if (!rec) return fail_response(c, rec.error());
  const auto m = c.req.method();
  auto status_json = [&](const registry::ProvisionedConcurrency& p, bool with_arn) {
    std::string version = p.qualifier;
    if (const auto* a = (*rec)->find_alias(p.qualifier)) version = a->function_version;
    auto st = deps_.engine.provisioned_status(name, version);
    json j = {
        {"RequestedProvisionedConcurrentExecutions", p.requested},
        {"AvailableProvisionedConcurrentExecutions", st ? std::min(st->available, p.requested) : 0},
        {"AllocatedProvisionedConcurrentExecutions", st ? std::min(st->allocated, p.requested) : 0},
        {"Status", st ? st->status : "IN_PROGRESS"},
        {"LastModified", lambda_timestamp(p.last_modified_ms)}};
    if (st && !st->reason.empty()) j["StatusReason"] = st->reason;
    if (with_arn) j["FunctionArn"] = arn(name, p.qualifier);
    return j;
  };
  if (m == bhttp::verb::get && qualifier.empty() && c.q("List") == "ALL") {
    return list_page(
        c, "ProvisionedConcurrencyConfigs", (*rec)->provisioned,
        [&](const registry::ProvisionedConcurrency& p) { return status_json(p, true); });
  }
  if (qualifier.empty())
    return fail_response(c, make_error(Errc::kValidation,
                                       "1 validation error detected: Value null at 'qualifier' "
                                       "failed to satisfy constraint: Member must not be null"));
  if (qualifier == registry::kLatest ||
      (!(*rec)->find_alias(qualifier) && !(*rec)->find_version(qualifier)))
    return fail_response(
        c, qualifier == registry::kLatest
               ? make_error(Errc::kInvalidParameter,
                            "Provisioned Concurrency Configs cannot be applied to "
                            "unpublished function versions.")
               : make_error(Errc::kNotFound, "Function not found: " + arn(name, qualifier)));
  auto existing = std::find_if((*rec)->provisioned.begin(), (*rec)->provisioned.end(),
                               [&](const auto& p) { return p.qualifier == qualifier; });
  if (m == bhttp::verb::get) {
    if (existing == (*rec)->provisioned.end()) {
      auto res = fail_response(
          c,
          make_error(Errc::kNotFound, "No Provisioned Concurrency Config found for this function"));
      res.set("x-amzn-ErrorType", "ProvisionedConcurrencyConfigNotFoundException");
      return res;
    }
    return ok_json(c, 200, status_json(*existing, false));
  }
  FunctionRecord next = **rec;
  if (m == bhttp::verb::delete_) {
    std::erase_if(next.provisioned, [&](const auto& p) { return p.qualifier == qualifier; });
    if (auto r = save_locked(next); !r) return fail_response(c, r.error());
    return ok_raw(c, 204, "");
  }
  if (m != bhttp::verb::put)
    return fail_response(c, make_error(Errc::kNotFound, "Unknown operation"));
  auto body = c.json_body();
  if (!body) return fail_response(c, body.error());
  auto n = get_int(*body, "ProvisionedConcurrentExecutions");
  if (!n) return fail_response(c, n.error());
  if (!*n || **n < 1)
    return fail_response(
        c, make_error(Errc::kValidation,
                      "1 validation error detected: Value at "
                      "'provisionedConcurrentExecutions' failed to satisfy "
                      "constraint: Member must have value greater than or equal to 1"));
  std::erase_if(next.provisioned, [&](const auto& p) { return p.qualifier == qualifier; });
  next.provisioned.push_back({qualifier, **n, unix_ms_now()});
  if (const auto* a = next.find_alias(qualifier))
    if (auto ok = check_provisioned_alias(next, *a); !ok) return fail_response(c, ok.error());
  // As on AWS, the function's provisioned environments (all its versions and aliases) come
  // out of its reserved concurrency, or else out of the account's unreserved concurrency,
  // which keeps at least 100. Summed in 64 bits: each request may be up to 2^31 - 1.
  const std::int64_t function_total = provisioned_total(next);
  if (next.reserved_concurrency) {
    if (function_total > *next.reserved_concurrency)
      return fail_response(
          c, make_error(Errc::kInvalidParameter,
                        "Requested Provisioned Concurrency should not be greater than the "
                        "reservedConcurrentExecution for function"));
  } else if (unreserved_left(name, function_total) < 100) {
    return fail_response(
        c, make_error(Errc::kInvalidParameter,
                      "Specified ConcurrentExecutions for function decreases account's "
                      "UnreservedConcurrentExecution below its minimum value of [100]."));
  }
  if (auto ok = check_provisioned_memory(next); !ok) return fail_response(c, ok.error());
  if (auto r = save_locked(next); !r) return fail_response(c, r.error());
  return ok_json(c, 202, status_json(next.provisioned.back(), false));
}

}  // namespace lambent::api
