// api/errors.hpp — the one place where an Error becomes a Lambda wire error:
// status, x-amzn-ErrorType and the JSON body the AWS SDKs parse
// (LAMBDA-COMPAT.md §2.3, §2.4, §11.4).
#pragma once

#include <string_view>

#include "core/error.hpp"
#include "http/server.hpp"

namespace lambent::api {

http::Response error_response(const Error& e, std::string_view request_id, bool keep_alive);
// For the CloudWatch Logs JSON 1.1 protocol: {"__type": …, "message": …}.
http::Response logs_error_response(const Error& e, std::string_view request_id, bool keep_alive);

}  // namespace lambent::api
