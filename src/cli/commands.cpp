#include "cli/commands.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "artifacts/artifacts.hpp"
#include "cli/client.hpp"
#include "core/encoding.hpp"
#include "core/files.hpp"

namespace lambent::cli {

using nlohmann::json;

namespace {

std::string default_data_dir() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.lambent";
}

struct Common {
  std::string data_dir = default_data_dir();
  std::optional<std::string> endpoint;
};

void add_common(CLI::App* sub, Common& c) {
  sub->add_option("--data-dir", c.data_dir, "Lambent data folder (for credentials)");
  sub->add_option("--endpoint", c.endpoint, "Lambent endpoint URL (default http://127.0.0.1:9000)");
}

Result<ApiClient> connect(const Common& c) {
  auto cfg = load_client_config(c.data_dir, c.endpoint);
  if (!cfg) return fail(std::move(cfg.error()));
  return ApiClient(std::move(*cfg));
}

std::string fn_path(const std::string& name) {
  return percent_encode(name, false);
}

int report(const Error& e) {
  std::fprintf(stderr, "lambent: %s\n", e.message.c_str());
  return 1;
}
int report(const http::ClientResponse& r) {
  std::fprintf(stderr, "lambent: %s\n", describe_error(r).c_str());
  return 1;
}

// ---- deploy ----

struct DeployArgs {
  Common common;
  std::string source, name, runtime, handler, role = "arn:aws:iam::000000000000:role/lambent";
  std::optional<int> memory, timeout;
  std::vector<std::string> env;
};

int deploy(const DeployArgs& a) {
  Result<std::string> zip = std::filesystem::is_directory(a.source)
                                ? artifacts::zip_directory(a.source)
                                : read_file(a.source);
  if (!zip) return report(zip.error());
  auto client = connect(a.common);
  if (!client) return report(client.error());
  json cfg = json::object();
  if (!a.runtime.empty()) cfg["Runtime"] = a.runtime;
  if (!a.handler.empty()) cfg["Handler"] = a.handler;
  if (a.memory) cfg["MemorySize"] = *a.memory;
  if (a.timeout) cfg["Timeout"] = *a.timeout;
  if (!a.env.empty()) {
    json vars = json::object();
    for (const auto& kv : a.env) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos)
        return report(
            make_error(Errc::kInvalidParameter, "--env expects KEY=VALUE, got '" + kv + "'"));
      vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    cfg["Environment"] = {{"Variables", vars}};
  }
  auto existing =
      client->call("GET", "/2015-03-31/functions/" + fn_path(a.name) + "/configuration");
  if (!existing) return report(existing.error());
  const std::string b64 = base64_encode(*zip);
  http::ClientResponse last;
  if (existing->status == 404) {
    if (a.runtime.empty() || a.handler.empty())
      return report(
          make_error(Errc::kInvalidParameter, "a new function needs --runtime and --handler"));
    json body = cfg;
    body["FunctionName"] = a.name;
    body["Role"] = a.role;
    body["Code"] = {{"ZipFile", b64}};
    auto r = client->call("POST", "/2015-03-31/functions", body.dump(),
                          {{"content-type", "application/json"}});
    if (!r) return report(r.error());
    if (r->status != 201) return report(*r);
    last = *r;
    std::printf("created %s\n", a.name.c_str());
  } else if (existing->status == 200) {
    auto r = client->call("PUT", "/2015-03-31/functions/" + fn_path(a.name) + "/code",
                          json{{"ZipFile", b64}}.dump(), {{"content-type", "application/json"}});
    if (!r) return report(r.error());
    if (r->status != 200) return report(*r);
    last = *r;
    if (!cfg.empty()) {
      auto u = client->call("PUT", "/2015-03-31/functions/" + fn_path(a.name) + "/configuration",
                            cfg.dump(), {{"content-type", "application/json"}});
      if (!u) return report(u.error());
      if (u->status != 200) return report(*u);
      last = *u;
    }
    std::printf("updated %s\n", a.name.c_str());
  } else {
    return report(*existing);
  }
  auto j = json::parse(last.body, nullptr, false);
  if (j.is_object())
    std::printf("  %s  %s  %s  %d MB  %d s  sha256 %s\n", j.value("FunctionArn", "").c_str(),
                j.value("Runtime", "").c_str(), j.value("Handler", "").c_str(),
                j.value("MemorySize", 0), j.value("Timeout", 0), j.value("CodeSha256", "").c_str());
  return 0;
}

// ---- invoke ----

struct InvokeArgs {
  Common common;
  std::string name, payload = "{}", qualifier;
  bool log = false;
};

int invoke(const InvokeArgs& a) {
  std::string payload = a.payload;
  if (payload.starts_with("@")) {
    auto f = read_file(payload.substr(1));
    if (!f) return report(f.error());
    payload = std::move(*f);
  }
  auto client = connect(a.common);
  if (!client) return report(client.error());
  std::string target = "/2015-03-31/functions/" + fn_path(a.name) + "/invocations";
  if (!a.qualifier.empty()) target += "?Qualifier=" + percent_encode(a.qualifier, false);
  std::vector<std::pair<std::string, std::string>> headers;
  if (a.log) headers.emplace_back("x-amz-log-type", "Tail");
  auto r = client->call("POST", target, payload, headers);
  if (!r) return report(r.error());
  if (r->status != 200) return report(*r);
  if (a.log) {
    if (auto tail = base64_decode(r->header("X-Amz-Log-Result")))
      std::fprintf(stderr, "%s", tail->c_str());
  }
  std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  std::fputc('\n', stdout);
  return r->header("X-Amz-Function-Error").empty() ? 0 : 2;
}

// ---- logs ----

struct LogsArgs {
  Common common;
  std::string name;
  bool follow = false;
  int since_s = 3600;
};

int logs(const LogsArgs& a) {
  auto client = connect(a.common);
  if (!client) return report(client.error());
  std::int64_t start = (std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count()) -
                       static_cast<std::int64_t>(a.since_s) * 1000;
  std::set<std::string> seen;
  for (;;) {
    std::string token;
    std::int64_t newest = start;
    do {
      json body = {{"logGroupName", "/aws/lambda/" + a.name}, {"startTime", start}};
      if (!token.empty()) body["nextToken"] = token;
      auto r = client->call("POST", "/", body.dump(),
                            {{"content-type", "application/x-amz-json-1.1"},
                             {"x-amz-target", "Logs_20140328.FilterLogEvents"}},
                            "logs");
      if (!r) return report(r.error());
      auto j = json::parse(r->body, nullptr, false);
      if (r->status != 200) {
        if (j.is_object() && j.value("__type", "") == "ResourceNotFoundException" && a.follow)
          break;
        std::fprintf(stderr, "lambent: %s\n",
                     j.is_object() ? j.value("message", r->body).c_str() : r->body.c_str());
        return 1;
      }
      for (const auto& e : j["events"]) {
        const auto id = e.value("eventId", "");
        if (!seen.insert(id).second) continue;
        newest = std::max<std::int64_t>(newest, e.value("timestamp", std::int64_t{0}));
        std::printf("%s\n", e.value("message", "").c_str());
      }
      token = j.value("nextToken", "");
    } while (!token.empty());
    std::fflush(stdout);
    if (!a.follow) return 0;
    start = newest;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// ---- functions / rm ----

int functions(const Common& c) {
  auto client = connect(c);
  if (!client) return report(client.error());
  std::string marker;
  std::printf("%-40s %-16s %8s %8s  %s\n", "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED");
  do {
    std::string target = "/2015-03-31/functions";
    if (!marker.empty()) target += "?Marker=" + percent_encode(marker, false);
    auto r = client->call("GET", target);
    if (!r) return report(r.error());
    if (r->status != 200) return report(*r);
    auto j = json::parse(r->body);
    for (const auto& f : j["Functions"])
      std::printf("%-40s %-16s %5d MB %6d s  %s\n", f.value("FunctionName", "").c_str(),
                  f.value("Runtime", "").c_str(), f.value("MemorySize", 0), f.value("Timeout", 0),
                  f.value("LastModified", "").c_str());
    marker = j.value("NextMarker", "");
  } while (!marker.empty());
  return 0;
}

int remove(const Common& c, const std::string& name) {
  auto client = connect(c);
  if (!client) return report(client.error());
  auto r = client->call("DELETE", "/2015-03-31/functions/" + fn_path(name));
  if (!r) return report(r.error());
  if (r->status >= 300) return report(*r);
  std::printf("deleted %s\n", name.c_str());
  return 0;
}

int print_env(const Common& c) {
  auto cfg = load_client_config(c.data_dir, c.endpoint);
  if (!cfg) return report(cfg.error());
  std::printf("export AWS_ENDPOINT_URL=http://%s:%s\n", cfg->endpoint.host.c_str(),
              cfg->endpoint.port.c_str());
  std::printf("export AWS_ACCESS_KEY_ID=%s\n", cfg->access_key_id.c_str());
  std::printf("export AWS_SECRET_ACCESS_KEY=%s\n", cfg->secret_access_key.c_str());
  std::printf("export AWS_DEFAULT_REGION=%s\n", cfg->region.c_str());
  return 0;
}

}  // namespace

void add_client_commands(CLI::App& app, int& exit_code) {
  {
    auto a = std::make_shared<DeployArgs>();
    auto* sub = app.add_subcommand("deploy", "Create or update a function from a folder or a zip");
    add_common(sub, a->common);
    sub->add_option("source", a->source, "folder (zipped for you) or .zip file")->required();
    sub->add_option("--name", a->name, "function name")->required();
    sub->add_option("--runtime", a->runtime, "e.g. python3.12, nodejs20.x, provided.al2023");
    sub->add_option("--handler", a->handler, "e.g. app.handler");
    sub->add_option("--memory", a->memory, "MemorySize in MB (128-10240)");
    sub->add_option("--timeout", a->timeout, "Timeout in seconds (1-900)");
    sub->add_option("--env", a->env, "environment variable KEY=VALUE (repeatable)");
    sub->add_option("--role", a->role, "execution role ARN (recorded, not enforced)");
    sub->callback([a, &exit_code] { exit_code = deploy(*a); });
  }
  {
    auto a = std::make_shared<InvokeArgs>();
    auto* sub = app.add_subcommand("invoke", "Invoke a function and print its result");
    add_common(sub, a->common);
    sub->add_option("name", a->name, "function name or ARN")->required();
    sub->add_option("payload", a->payload, "JSON event, or @file");
    sub->add_option("--qualifier", a->qualifier, "version or alias");
    sub->add_flag("--log", a->log, "print the last 4 KB of the invocation's log to stderr");
    sub->callback([a, &exit_code] { exit_code = invoke(*a); });
  }
  {
    auto a = std::make_shared<LogsArgs>();
    auto* sub = app.add_subcommand("logs", "Print a function's logs");
    add_common(sub, a->common);
    sub->add_option("name", a->name, "function name")->required();
    sub->add_flag("--follow,-f", a->follow, "keep printing new log lines");
    sub->add_option("--since", a->since_s, "seconds of history to show (default 3600)");
    sub->callback([a, &exit_code] { exit_code = logs(*a); });
  }
  {
    auto c = std::make_shared<Common>();
    auto* sub = app.add_subcommand("functions", "List functions");
    add_common(sub, *c);
    sub->callback([c, &exit_code] { exit_code = functions(*c); });
  }
  {
    auto c = std::make_shared<Common>();
    auto name = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("rm", "Delete a function");
    add_common(sub, *c);
    sub->add_option("name", *name, "function name")->required();
    sub->callback([c, name, &exit_code] { exit_code = remove(*c, *name); });
  }
  {
    auto c = std::make_shared<Common>();
    auto* sub = app.add_subcommand("env", "Print shell exports for the AWS CLI and SDKs");
    add_common(sub, *c);
    sub->callback([c, &exit_code] { exit_code = print_env(*c); });
  }
}

}  // namespace lambent::cli
