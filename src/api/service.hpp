// api/service.hpp — the Lambda REST API (and the CloudWatch Logs subset the
// CLI's `logs` commands use), served on the daemon's port.
// Owns: routing, SigV4 checks, request validation into typed inputs, the
// control plane's in-memory copy of the store, the Invoke edge.
// Never: scheduling or sandboxing (engine/), storage details (registry/).
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "artifacts/artifacts.hpp"
#include "core/sigv4.hpp"
#include "engine/engine.hpp"
#include "http/server.hpp"
#include "logs/log_store.hpp"
#include "registry/store.hpp"

namespace lambent::api {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

struct ApiSettings {
  std::string region = "us-east-1";
  std::string account = "000000000000";
  bool auth = true;  // false: --auth none
  Credentials credentials;
  std::string public_endpoint;  // base URL used in GetFunction's Code.Location
  int account_concurrency = 1000;
  std::string python_version, node_version;
  std::map<std::string, std::string> runtime_versions;  // per runtime identifier overrides
};

struct ApiDeps {
  registry::Store& store;
  artifacts::ArtifactStore& artifacts;
  engine::Engine& engine;
  logs::LogStore& logs;
  boost::asio::thread_pool& blocking;  // control-plane work runs here, never on a shard
};

// Thread-safe.
class ApiService {
 public:
  ApiService(ApiDeps deps, ApiSettings settings);

  // Loads every stored function into the engine. Call once before serving.
  Result<void> load();
  // Entry point for every request (on a shard thread).
  void handle(http::Request&& req, http::Responder res);
  // For requests that could not be parsed (too large, malformed).
  http::Response parse_error(const http::Request& partial, std::string_view what,
                             http::ParseFailure why);
  // For requests that declare a large (or chunked) body, before it is read: a refusal when
  // the head alone shows the request must fail — a body over its route's limit, or (with
  // SigV4) no valid credentials — so that an unauthenticated client cannot make the daemon
  // buffer up to the server's 100 MB body limit per connection.
  std::optional<http::Response> check_head(const http::Request& head, std::uint64_t& body_limit);
  // Shutting down: every request from now on is answered 503 ServiceException and its
  // connection closed, so a keep-alive client cannot start new work during the grace period
  // that in-flight invokes get to finish.
  void drain() { draining_.store(true, std::memory_order_relaxed); }

  struct Call;  // one request in flight (defined in service.cpp)

 private:
  // SigV4 against the installation's key; head_only: all but the signature (no body yet).
  Result<sigv4::Identity> verify_signature(const http::Request& req, bool logs,
                                           bool head_only) const;
  void invoke(Call& c, http::Responder res);
  void control_plane(std::shared_ptr<Call> c, http::Responder res);
  http::Response route_control(Call& c);
  http::Response logs_api(Call& c);

  std::atomic<bool> draining_{false};

  // Control plane handlers; run on the blocking pool under cp_mu_.
  http::Response create_function(Call& c);
  http::Response get_function(Call& c, const std::string& name, bool config_only);
  http::Response update_code(Call& c, const std::string& name);
  http::Response update_config(Call& c, const std::string& name);
  http::Response delete_function(Call& c, const std::string& name);
  http::Response list_functions(Call& c);
  http::Response publish_version(Call& c, const std::string& name);
  http::Response list_versions(Call& c, const std::string& name);
  http::Response create_alias(Call& c, const std::string& name);
  http::Response get_alias(Call& c, const std::string& name, const std::string& alias);
  http::Response update_alias(Call& c, const std::string& name, const std::string& alias);
  http::Response delete_alias(Call& c, const std::string& name, const std::string& alias);
  http::Response list_aliases(Call& c, const std::string& name);
  http::Response account_settings(Call& c);
  http::Response put_concurrency(Call& c, const std::string& name);
  http::Response get_concurrency(Call& c, const std::string& name);
  http::Response delete_concurrency(Call& c, const std::string& name);
  http::Response tags(Call& c, const std::string& arn);
  http::Response provisioned(Call& c, const std::string& name, const std::string& qualifier);
  http::Response code_download(Call& c);

  Result<registry::FunctionRecord*> find_locked(const std::string& name);
  // The account's concurrency left unreserved if function `name` claimed `claimed` (its
  // reservation, or its provisioned total when it has none): other functions claim theirs
  // the same way. 64-bit: requests are checked against it before any bound.
  std::int64_t unreserved_left(const std::string& name, std::int64_t claimed) const;
  // Whether every function's provisioned environments, with `next` as it would be stored, fit
  // in the host's memory budget together.
  Result<void> check_provisioned_memory(const registry::FunctionRecord& next) const;
  Result<void> save_locked(registry::FunctionRecord& rec);
  engine::FunctionSnapshot snapshot(const registry::FunctionRecord& rec) const;
  std::string config_json(const registry::FunctionConfig& cfg, bool list_shape) const;
  std::string presigned_code_url(const registry::FunctionConfig& cfg,
                                 const std::string& host) const;
  std::string arn(std::string_view name, std::string_view qualifier = {}) const;

  ApiDeps deps_;
  ApiSettings settings_;
  std::mutex cp_mu_;  // the control plane is serialized; the invoke path never takes it
  std::map<std::string, registry::FunctionRecord> records_;
};

}  // namespace lambent::api
