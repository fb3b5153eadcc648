// core/sigv4.hpp — AWS Signature Version 4: verification (daemon) and signing (CLI).
// Pure functions, thread-safe. Follows LAMBDA-COMPAT.md §8: the canonical URI is
// the raw path as received, percent-encoded once more (non-S3 double encoding);
// the payload hash is x-amz-content-sha256 when present (and must then match the
// body), else the SHA-256 of the body.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
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

// A header of a request that already holds its bytes (the daemon's parsed request).
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

struct SignedRequest {
  std::string_view method;  // "POST"
  std::string_view target;  // raw request target as received: path?query, still percent-encoded
  const std::vector<Header>* headers = nullptr;
  std::string_view body;  // de-chunked body bytes
  // Used instead of `headers` when that is null: lets the daemon verify every request without
  // copying its headers into strings.
  std::span<const HeaderView> header_views{};
};

struct VerifyOptions {
  std::string_view service = "lambda";
  std::int64_t now_unix_s = 0;        // current time, for the clock-skew check
  std::int64_t max_skew_s = 15 * 60;  // AWS rejects |now - X-Amz-Date| > 15 min
  // Checks only what the head shows — the header's shape, the access key, the date and the
  // scope — and not the signature, which covers the body: for refusing a request before its
  // body is read. The full check must still follow.
  bool head_only = false;
};

struct Identity {
  std::string access_key_id;
  std::string region;  // from the credential scope
};

// Returns the secret for an access key id, or nullopt when unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

// Checks the Authorization header of one request (LAMBDA-COMPAT.md §8.2).
// Errc::kUnauthorized — no Authorization header ("Missing Authentication Token"), a garbled
//     one (bad shape, duplicate header, host not signed, missing/garbled X-Amz-Date), or an
//     unknown access key ("The security token included in the request is invalid.").
// Errc::kSignatureMismatch — signature does not match (AWS's "The request signature we
//     calculated does not match…"), a signed header is absent, wrong service in the scope,
//     scope date != X-Amz-Date day, |now - X-Amz-Date| > max_skew_s ("Signature expired: …"),
//     or x-amz-content-sha256 that is neither the body's hash nor UNSIGNED-PAYLOAD.
// Error::detail carries a short machine-readable reason (e.g. "Expired", "UnknownKey") for logs.
// Thread-safe; keeps per-thread scratch buffers and a small per-thread signing-key cache, so a
// warm thread verifies without heap allocation beyond the lookup and the returned Identity.
Result<Identity> verify(const SignedRequest& req, const SecretLookup& lookup,
                        const VerifyOptions& opts);

struct SigningInput {
  std::string method;
  std::string host;             // value of the Host header, with port if non-default
  std::string target;           // path?query exactly as it will be sent (already percent-encoded)
  std::vector<Header> headers;  // extra headers to sign (content-type, x-amz-*), lowercase names
  std::string_view body;
  std::string access_key_id;
  std::string secret;
  std::string region;
  std::string service = "lambda";
  std::int64_t now_unix_s = 0;
};

// Returns the headers to add: X-Amz-Date, x-amz-content-sha256 and Authorization (the JS SDK
// v3 style). Signs host, x-amz-date, x-amz-content-sha256 and every header in `in.headers`
// (names lowercased; repeated names joined in order). Thread-safe.
std::vector<Header> sign(const SigningInput& in);

// Exposed for unit tests.
std::string canonical_uri(std::string_view raw_path);
std::string canonical_query(std::string_view raw_query);
// How many times this thread derived a signing key (kDate..kSigning) instead of reusing a cached
// one; lets tests see that the per-thread cache works.
std::uint64_t signing_key_derivations_on_this_thread();

}  // namespace lambent::sigv4
