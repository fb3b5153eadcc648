#include "cli/client.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>

#include "core/credentials.hpp"
#include "core/sigv4.hpp"
#include "core/time.hpp"

namespace lambent::cli {

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Result<Endpoint> parse_endpoint(const std::string& url) {
  std::string rest = url;
  if (rest.starts_with("http://"))
    rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    return fail(Errc::kInvalidParameter, "only http:// endpoints are supported: " + url);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  Endpoint e;
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  } else {
    e.host = rest;
    e.port = "80";
  }
  return e;
}

}  // namespace

Result<ClientConfig> load_client_config(const std::string& data_dir,
                                        const std::optional<std::string>& endpoint) {
  ClientConfig cfg;
  auto url = endpoint ? endpoint : env("LAMBENT_ENDPOINT");
  if (!url) url = env("AWS_ENDPOINT_URL_LAMBDA");
  if (!url) url = env("AWS_ENDPOINT_URL");
  if (url) {
    auto e = parse_endpoint(*url);
    if (!e) return fail(std::move(e.error()));
    cfg.endpoint = *e;
  }
  if (auto r = env("AWS_REGION"))
    cfg.region = *r;
  else if (auto d = env("AWS_DEFAULT_REGION"))
    cfg.region = *d;
  auto key = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (key && secret) {
    cfg.access_key_id = *key;
    cfg.secret_access_key = *secret;
    return cfg;
  }
  auto file = read_credentials_file(data_dir + "/credentials");
  if (!file) {
    if (file.error().code != Errc::kNotFound) return fail(std::move(file.error()));
    return fail(Errc::kUnauthorized,
                "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or start `lambent "
                "serve` once so that " +
                    data_dir + "/credentials exists");
  }
  cfg.access_key_id = file->access_key_id;
  cfg.secret_access_key = file->secret_access_key;
  return cfg;
}

ApiClient::ApiClient(ClientConfig cfg)
    : cfg_(std::move(cfg)), http_(cfg_.endpoint.host, cfg_.endpoint.port) {}

Result<http::ClientResponse> ApiClient::call(
    const std::string& method, const std::string& target, const std::string& body,
    std::vector<std::pair<std::string, std::string>> headers, const std::string& service) {
  sigv4::SigningInput in;
  in.method = method;
  in.host = cfg_.endpoint.host + ":" + cfg_.endpoint.port;
  in.target = target;
  for (const auto& [k, v] : headers) in.headers.push_back({k, v});
  in.body = body;
  in.access_key_id = cfg_.access_key_id;
  in.secret = cfg_.secret_access_key;
  in.region = cfg_.region;
  in.service = service;
  in.now_unix_s = unix_ms_now() / 1000;
  for (auto& h : sigv4::sign(in)) headers.emplace_back(h.name, h.value);
  headers.emplace_back("Host", in.host);
  return http_.request(method, target, headers, body);
}

std::string describe_error(const http::ClientResponse& r) {
  std::string type = r.header("x-amzn-ErrorType");
  if (auto colon = type.find(':'); colon != std::string::npos) type = type.substr(0, colon);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::string msg;
  if (j.is_object()) msg = j.value("message", j.value("Message", ""));
  if (type.empty()) type = "HTTP " + std::to_string(r.status);
  return msg.empty() ? type : type + ": " + msg;
}

}  // namespace lambent::cli
