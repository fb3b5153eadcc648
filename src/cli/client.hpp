// cli/client.hpp — a signed Lambda API client for Lambent's own subcommands.
// They use the same HTTP API as the AWS CLI; nothing is special-cased.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "http/client.hpp"

namespace lambent::cli {

struct Endpoint {
  std::string host = "127.0.0.1";
  std::string port = "9000";
};

struct ClientConfig {
  Endpoint endpoint;
  std::string access_key_id, secret_access_key;
  std::string region = "us-east-1";
};

// Reads, in order: LAMBENT_ENDPOINT / AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, else <data_dir>/credentials.
Result<ClientConfig> load_client_config(const std::string& data_dir,
                                        const std::optional<std::string>& endpoint);

class ApiClient {
 public:
  explicit ApiClient(ClientConfig cfg);
  // `target` is already percent-encoded. Adds SigV4 headers for `service`.
  Result<http::ClientResponse> call(const std::string& method, const std::string& target,
                                    const std::string& body = {},
                                    std::vector<std::pair<std::string, std::string>> headers = {},
                                    const std::string& service = "lambda");

 private:
  ClientConfig cfg_;
  http::Client http_;
};

// The error a Lambda error response describes: "ResourceNotFoundException: Function not found: …"
std::string describe_error(const http::ClientResponse& r);

}  // namespace lambent::cli
