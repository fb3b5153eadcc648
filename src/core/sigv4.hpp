// core/sigv4.hpp — AWS Signature Version 4: verification (daemon) and signing (CLI).
// Pure functions, thread-safe. Follows LAMBDA-COMPAT.md §8: the canonical URI is
// the raw path as received, percent-encoded once more (non-S3 double encoding);
// the payload hash is x-amz-content-sha256 when present (and must then match the
// body), else the SHA-256 of the body.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace lambent::sigv4 {

struct Header {
  std::string name;   // as received (any case)
  std::string value;  // as received
};

struct SignedRequest {
  std::string_view method;   // "POST"
  std::string_view target;   // raw request target as received: path?query, still percent-encoded
  const std::vector<Header>* headers = nullptr;
  std::string_view body;     // de-chunked body bytes
};

struct VerifyOptions {
  std::string_view service = "lambda";
  std::int64_t now_unix_s = 0;            // current time, for the clock-skew check
  std::int64_t max_skew_s = 15 * 60;      // AWS rejects |now - X-Amz-Date| > 15 min
};

struct Identity {
  std::string access_key_id;
  std::string region;  // from the credential scope
};

// Returns the secret for an access key id, or nullopt when unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

// Errc::kUnauthorized  — no/garbled Authorization header, unknown access key
//                       (message matches AWS: "The security token included in the request is invalid.")
// Errc::kSignatureMismatch — signature does not match, wrong service, date skew, body hash mismatch
Result<Identity> verify(const SignedRequest& req, const SecretLookup& lookup,
                        const VerifyOptions& opts);

struct SigningInput {
  std::string method;
  std::string host;           // value of the Host header, with port if non-default
  std::string target;         // path?query exactly as it will be sent (already percent-encoded)
  std::vector<Header> headers;  // extra headers to sign (content-type, x-amz-*), lowercase names
  std::string_view body;
  std::string access_key_id;
  std::string secret;
  std::string region;
  std::string service = "lambda";
  std::int64_t now_unix_s = 0;
};

// Returns the headers to add: X-Amz-Date, x-amz-content-sha256 and Authorization.
std::vector<Header> sign(const SigningInput& in);

// Exposed for unit tests.
std::string canonical_uri(std::string_view raw_path);
std::string canonical_query(std::string_view raw_query);

}  // namespace lambent::sigv4
