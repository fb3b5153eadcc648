// api/call.hpp — one API request being served, with its parsed path and query.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/service.hpp"
#include "core/result.hpp"

namespace lambent::api {

struct ApiService::Call {
  http::Request req;
  std::string request_id;
  std::string path;                               // raw, before '?'
  std::vector<std::string> segs;                  // percent-decoded path segments
  std::multimap<std::string, std::string> query;  // percent-decoded
  bool keep_alive = true;

  std::string q(const std::string& key) const {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  }
  bool has_q(const std::string& key) const { return query.contains(key); }
  std::string header(std::string_view name) const { return std::string(header_view(name)); }
  // Valid while `req` is.
  std::string_view header_view(std::string_view name) const {
    auto it = req.find(name);
    return it == req.end() ? std::string_view() : std::string_view(it->value());
  }
  Result<nlohmann::json> json_body() const;
};

// Builds responses for a call.
http::Response ok_json(const ApiService::Call& c, unsigned status, const nlohmann::json& body);
http::Response ok_raw(const ApiService::Call& c, unsigned status, std::string body);
http::Response fail_response(const ApiService::Call& c, const Error& e);

// Typed readers for request JSON members: absent → nullopt; wrong type → ValidationException.
Result<std::optional<std::string>> get_string(const nlohmann::json& j, const char* key);
Result<std::optional<int>> get_int(const nlohmann::json& j, const char* key);
Result<std::optional<bool>> get_bool(const nlohmann::json& j, const char* key);

}  // namespace lambent::api
