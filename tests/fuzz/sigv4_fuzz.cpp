// libFuzzer target for core/sigv4. Build instructions: tests/fuzz/README.md.
//
// Input: newline-separated fields, so the corpus stays readable and editable:
//   method \n target \n Authorization \n X-Amz-Date \n x-amz-content-sha256 \n body...
// An empty Authorization / X-Amz-Date / x-amz-content-sha256 line means "header absent".
//
// Checks: verify() never crashes or trips a sanitizer on untrusted header bytes, and a request
// signed by sign() over the fuzzed method, target and body always verifies (the two sides must
// build the same canonical request for any bytes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/sigv4.hpp"

namespace {

constexpr std::int64_t kNow = 1795741403;  // 2026-11-27T01:03:23Z, the corpus's X-Amz-Date
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

std::string_view next_field(std::string_view& rest) {
  const auto pos = rest.find('\n');
  const auto field = rest.substr(0, pos);
  rest = pos == std::string_view::npos ? std::string_view{} : rest.substr(pos + 1);
  return field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Fuzzer input is raw bytes; the parsers under test take text views of the same bytes.
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const auto method = next_field(rest);
  const auto target = next_field(rest);
  const auto authorization = next_field(rest);
  const auto amz_date = next_field(rest);
  const auto content_sha = next_field(rest);
  const auto body = rest;

  using lambent::sigv4::Header;
  const lambent::sigv4::SecretLookup lookup =
      [](std::string_view key) -> std::optional<std::string> {
    if (key.starts_with("UNKNOWN")) return std::nullopt;
    return std::string(kSecret);
  };
  lambent::sigv4::VerifyOptions opts;
  opts.now_unix_s = kNow;

  std::vector<Header> headers = {{"Host", "127.0.0.1:9999"}};
  if (!authorization.empty()) headers.push_back({"Authorization", std::string(authorization)});
  if (!amz_date.empty()) headers.push_back({"X-Amz-Date", std::string(amz_date)});
  if (!content_sha.empty()) headers.push_back({"x-amz-content-sha256", std::string(content_sha)});
  (void)lambent::sigv4::verify({method, target, &headers, body}, lookup, opts);

  const auto q = target.find('?');
  (void)lambent::sigv4::canonical_uri(target.substr(0, q));
  if (q != std::string_view::npos) (void)lambent::sigv4::canonical_query(target.substr(q + 1));

  lambent::sigv4::SigningInput in;
  in.method = std::string(method);
  in.host = "127.0.0.1:9999";
  in.target = std::string(target);
  in.headers = {{"x-amz-log-type", std::string(content_sha)}};
  in.body = body;
  in.access_key_id = "AKIDEXAMPLE";
  in.secret = std::string(kSecret);
  in.region = "us-east-1";
  in.now_unix_s = kNow;
  std::vector<Header> signed_headers = {{"Host", in.host}, in.headers[0]};
  for (auto& h : lambent::sigv4::sign(in)) signed_headers.push_back(std::move(h));
  if (!lambent::sigv4::verify({method, target, &signed_headers, body}, lookup, opts)) {
    std::abort();  // sign() and verify() disagree on the canonical request
  }
  return 0;
}
