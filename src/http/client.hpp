// http/client.hpp — a small synchronous HTTP/1.1 client (the CLI's transport).
// Thread-compatible: one Client per thread. Keeps the connection alive.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace lambent::http {

struct ClientResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
};

class Client {
 public:
  Client(std::string host, std::string port);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Result<ClientResponse> request(const std::string& method, const std::string& target,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 const std::string& body, int timeout_s = 0);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lambent::http
