#include "api/errors.hpp"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "core/encoding.hpp"

namespace lambent::api {

namespace {

struct WireError {
  unsigned status;
  std::string_view type;
  bool capital_message;  // "Message" (ResourceNotFound, Service) vs "message"
};

WireError wire(const Error& e) {
  switch (e.code) {
    case Errc::kInvalidParameter:
      return {400, "InvalidParameterValueException", false};
    case Errc::kValidation:
      return {400, "ValidationException", false};
    case Errc::kInvalidRequestContent:
      return {400, "InvalidRequestContentException", false};
    case Errc::kRequestTooLarge:
      return {413, "RequestTooLargeException", false};
    case Errc::kUnsupportedMediaType:
      return {415, "UnsupportedMediaTypeException", false};
    case Errc::kNotFound:
      return {404, "ResourceNotFoundException", true};
    case Errc::kConflict:
      return {409, "ResourceConflictException", false};
    case Errc::kPreconditionFailed:
      return {412, "PreconditionFailedException", false};
    case Errc::kThrottled:
      return {429, "TooManyRequestsException", false};
    case Errc::kCodeStorageExceeded:
      return {400, "CodeStorageExceededException", false};
    case Errc::kInvalidZip:
      return {400, "InvalidParameterValueException", false};
    case Errc::kUnauthorized:
      if (e.message == "Missing Authentication Token")
        return {403, "MissingAuthenticationTokenException", false};
      return {403, "UnrecognizedClientException", false};
    case Errc::kSignatureMismatch:
      return {403, "InvalidSignatureException", false};
    case Errc::kUnavailable:
      return {503, "ServiceException", true};
    case Errc::kTimeout:
    case Errc::kIo:
    case Errc::kInternal:
      return {500, "ServiceException", true};
  }
  return {500, "ServiceException", true};
}

}  // namespace

http::Response error_response(const Error& e, std::string_view request_id, bool keep_alive) {
  const auto w = wire(e);
  nlohmann::json body = {{"Type", w.status >= 500 ? "Service" : "User"},
                         {w.capital_message ? "Message" : "message", e.message}};
  if (e.code == Errc::kThrottled && !e.detail.empty()) body["Reason"] = e.detail;
  auto res = http::json_response(w.status, json_text(body), keep_alive);
  res.set("x-amzn-ErrorType", w.type);
  res.set("x-amzn-RequestId", request_id);
  if (e.code == Errc::kThrottled) res.set(boost::beast::http::field::retry_after, "1");
  return res;
}

http::Response logs_error_response(const Error& e, std::string_view request_id, bool keep_alive) {
  std::string_view type = "ServiceUnavailableException";
  unsigned status = 500;
  switch (e.code) {
    case Errc::kNotFound:
      type = "ResourceNotFoundException", status = 400;
      break;
    case Errc::kInvalidParameter:
    case Errc::kValidation:
    case Errc::kInvalidRequestContent:
      type = "InvalidParameterException", status = 400;
      break;
    case Errc::kUnauthorized:
      type = "UnrecognizedClientException", status = 400;
      break;
    case Errc::kSignatureMismatch:
      type = "InvalidSignatureException", status = 400;
      break;
    default:
      break;
  }
  nlohmann::json body = {{"__type", type}, {"message", e.message}};
  auto res = http::json_response(status, json_text(body), keep_alive);
  res.set(boost::beast::http::field::content_type, "application/x-amz-json-1.1");
  res.set("x-amzn-RequestId", request_id);
  return res;
}

}  // namespace lambent::api
