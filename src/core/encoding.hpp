// core/encoding.hpp — hashing, HMAC, base64, hex, percent-encoding and JSON text.
// Pure functions, thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lambent {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
// Incremental hashing for large inputs (package blobs).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  Sha256Digest finish();

 private:
  void* ctx_;
};

Sha256Digest hmac_sha256(std::string_view key, std::string_view data);

std::string to_hex(std::string_view bytes);
template <std::size_t N>
std::string to_hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(a.data()), N));  // bytes view
}
inline std::string_view as_bytes(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};  // bytes view of the digest
}

std::string base64_encode(std::string_view bytes);
// Standard alphabet with padding; whitespace is not accepted. nullopt on bad input.
std::optional<std::string> base64_decode(std::string_view text);

// RFC 3986 percent-decoding; '+' is not treated as space. nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s);
// Encodes everything but the unreserved set A-Za-z0-9-_.~ (and '/' when keep_slash).
std::string percent_encode(std::string_view s, bool keep_slash);

// `j` as compact JSON text. Bytes that are not UTF-8 (a function's output, a name
// percent-decoded from a URL, a header a runtime sent) become U+FFFD: nlohmann's
// plain dump() throws on them, which failed whole answers.
std::string json_text(const nlohmann::json& j);

}  // namespace lambent
