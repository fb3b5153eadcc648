// The one mapping from Error to Lambda's wire errors (LAMBDA-COMPAT.md §2.3, §2.4).
#include "api/errors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace lambent::api {
namespace {

using nlohmann::json;

struct Expect {
  Errc code;
  unsigned status;
  std::string type;
  std::string message_key;  // "message" or "Message"
  std::string kind;         // "User" or "Service"
};

std::string header(const http::Response& res, std::string_view name) {
  const auto it = res.find(name);
  return it == res.end() ? std::string() : std::string(it->value());
}

TEST(ErrorResponse, MapsEveryCodeToStatusTypeAndBody) {
  const std::vector<Expect> table = {
      {Errc::kInvalidParameter, 400, "InvalidParameterValueException", "message", "User"},
      {Errc::kValidation, 400, "ValidationException", "message", "User"},
      {Errc::kInvalidRequestContent, 400, "InvalidRequestContentException", "message", "User"},
      {Errc::kRequestTooLarge, 413, "RequestTooLargeException", "message", "User"},
      {Errc::kUnsupportedMediaType, 415, "UnsupportedMediaTypeException", "message", "User"},
      {Errc::kNotFound, 404, "ResourceNotFoundException", "Message", "User"},
      {Errc::kConflict, 409, "ResourceConflictException", "message", "User"},
      {Errc::kPreconditionFailed, 412, "PreconditionFailedException", "message", "User"},
      {Errc::kThrottled, 429, "TooManyRequestsException", "message", "User"},
      {Errc::kCodeStorageExceeded, 400, "CodeStorageExceededException", "message", "User"},
      {Errc::kInvalidZip, 400, "InvalidParameterValueException", "message", "User"},
      {Errc::kUnauthorized, 403, "UnrecognizedClientException", "message", "User"},
      {Errc::kSignatureMismatch, 403, "InvalidSignatureException", "message", "User"},
      {Errc::kUnavailable, 503, "ServiceException", "Message", "Service"},
      {Errc::kTimeout, 500, "ServiceException", "Message", "Service"},
      {Errc::kIo, 500, "ServiceException", "Message", "Service"},
      {Errc::kInternal, 500, "ServiceException", "Message", "Service"},
  };
  for (const auto& t : table) {
    SCOPED_TRACE(t.type + " " + std::to_string(t.status));
    const auto res = error_response(make_error(t.code, "what \"went\" wrong"), "req-1", true);
    EXPECT_EQ(res.result_int(), t.status);
    EXPECT_EQ(header(res, "x-amzn-ErrorType"), t.type);
    EXPECT_EQ(header(res, "x-amzn-RequestId"), "req-1");
    EXPECT_EQ(header(res, "Content-Type"), "application/json");
    EXPECT_TRUE(res.keep_alive());
    const auto body = json::parse(res.body());
    EXPECT_EQ(body.at("Type"), t.kind);
    EXPECT_EQ(body.at(t.message_key), "what \"went\" wrong");
    const std::string other = t.message_key == "message" ? "Message" : "message";
    EXPECT_FALSE(body.contains(other));
    if (t.code != Errc::kThrottled) {
      EXPECT_EQ(header(res, "Retry-After"), "");
      EXPECT_FALSE(body.contains("Reason"));
    }
  }
}

TEST(ErrorResponse, MissingTokenHasItsOwnType) {
  const auto res =
      error_response(make_error(Errc::kUnauthorized, "Missing Authentication Token"), "r", false);
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_EQ(header(res, "x-amzn-ErrorType"), "MissingAuthenticationTokenException");
  EXPECT_FALSE(res.keep_alive());
}

TEST(ErrorResponse, ThrottlingCarriesReasonAndRetryAfter) {
  const auto res = error_response(make_error(Errc::kThrottled, "Rate Exceeded.",
                                             "ReservedFunctionConcurrentInvocationLimitExceeded"),
                                  "r", true);
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(header(res, "Retry-After"), "1");
  const auto body = json::parse(res.body());
  EXPECT_EQ(body.at("Reason"), "ReservedFunctionConcurrentInvocationLimitExceeded");
  EXPECT_EQ(body.at("message"), "Rate Exceeded.");
  EXPECT_EQ(body.at("Type"), "User");

  // Without a reason the body has none, but the client is still told when to retry.
  const auto bare = error_response(make_error(Errc::kThrottled, "Rate Exceeded."), "r", true);
  EXPECT_EQ(header(bare, "Retry-After"), "1");
  EXPECT_FALSE(json::parse(bare.body()).contains("Reason"));
}

TEST(ErrorResponse, DetailOfOtherErrorsIsNotLeaked) {
  const auto res =
      error_response(make_error(Errc::kInternal, "boom", "internal detail"), "r", true);
  EXPECT_EQ(res.body().find("internal detail"), std::string::npos);
}

TEST(LogsErrorResponse, UsesJson11Shape) {
  struct Case {
    Errc code;
    unsigned status;
    std::string type;
  };
  for (const auto& c : std::vector<Case>{
           {Errc::kNotFound, 400, "ResourceNotFoundException"},
           {Errc::kInvalidParameter, 400, "InvalidParameterException"},
           {Errc::kValidation, 400, "InvalidParameterException"},
           {Errc::kInvalidRequestContent, 400, "InvalidParameterException"},
           {Errc::kUnauthorized, 400, "UnrecognizedClientException"},
           {Errc::kSignatureMismatch, 400, "InvalidSignatureException"},
           {Errc::kInternal, 500, "ServiceUnavailableException"},
           {Errc::kIo, 500, "ServiceUnavailableException"},
       }) {
    SCOPED_TRACE(c.type);
    const auto res = logs_error_response(make_error(c.code, "msg"), "rid", true);
    EXPECT_EQ(res.result_int(), c.status);
    EXPECT_EQ(header(res, "Content-Type"), "application/x-amz-json-1.1");
    EXPECT_EQ(header(res, "x-amzn-RequestId"), "rid");
    const auto body = json::parse(res.body());
    EXPECT_EQ(body.at("__type"), c.type);
    EXPECT_EQ(body.at("message"), "msg");
  }
}

}  // namespace
}  // namespace lambent::api
