#include "core/sigv4.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <utility>
#include <vector>

#include "core/encoding.hpp"

namespace lambent::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::string_view kMsgMissing = "Missing Authentication Token";
constexpr std::string_view kMsgUnknownKey =
    "The security token included in the request is invalid.";
constexpr std::string_view kMsgMismatch =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::size_t kAmzDateLen = 16;  // YYYYMMDDTHHMMSSZ
constexpr std::size_t kSignatureHexLen = 64;
// Bounds on what the per-thread scratch buffers keep between requests, so that one huge request
// does not pin its memory in every API thread for the life of the daemon.
constexpr std::size_t kMaxRetainedBytes = 64 * 1024;
constexpr std::size_t kMaxRetainedPairs = 64;

// The whitespace Python's str.split() (botocore's Trimall) and the JS SDK collapse.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_lower_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Byte order of the lowercased names: SignedHeaders' order.
bool iless(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (lower(a[i]) != lower(b[i])) return lower(a[i]) < lower(b[i]);
  }
  return a.size() < b.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool consume_prefix(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Splits off the text before the first `sep` (or all of it) and drops it from `s`.
std::string_view next_token(std::string_view& s, char sep) {
  const auto pos = s.find(sep);
  const auto token = s.substr(0, pos);
  s = pos == std::string_view::npos ? std::string_view{} : s.substr(pos + 1);
  return token;
}

template <class Headers>
const typename Headers::value_type* find_header(const Headers& headers, std::string_view name,
                                                bool* duplicate = nullptr) {
  const typename Headers::value_type* found = nullptr;
  for (const auto& h : headers) {
    if (!iequals(h.name, name)) continue;
    if (found != nullptr) {
      if (duplicate != nullptr) *duplicate = true;
      break;
    }
    found = &h;
  }
  return found;
}

// ---- time ------------------------------------------------------------------------------------

int parse_digits(std::string_view s) {
  int v = 0;
  for (const char c : s) {
    if (!is_digit(c)) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// X-Amz-Date "YYYYMMDDTHHMMSSZ" to Unix seconds; nullopt unless exactly that shape and valid.
std::optional<std::int64_t> parse_amz_date(std::string_view s) {
  if (s.size() != kAmzDateLen || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  const int y = parse_digits(s.substr(0, 4));
  const int mo = parse_digits(s.substr(4, 2));
  const int d = parse_digits(s.substr(6, 2));
  const int h = parse_digits(s.substr(9, 2));
  const int mi = parse_digits(s.substr(11, 2));
  const int se = parse_digits(s.substr(13, 2));
  if (y < 0 || mo < 0 || d < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const auto days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return static_cast<std::int64_t>(days) * 86400 + h * 3600 + mi * 60 + se;
}

std::string format_amz_date(std::int64_t unix_s) {
  const std::chrono::sys_seconds t{std::chrono::seconds{unix_s}};
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

std::string format_skew(std::int64_t s) {
  return s % 60 == 0 ? fmt::format("{} min.", s / 60) : fmt::format("{} s.", s);
}

// ---- canonical pieces ------------------------------------------------------------------------

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

void append_encoded_byte(std::string& out, unsigned char c) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  if (unreserved(c)) {
    out += static_cast<char>(c);
  } else {
    out += '%';
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes and re-encodes one query component in a single pass, without the temporary
// string percent_decode would allocate. A malformed escape is kept as literal bytes ("%zz" ->
// "%25zz"), which cannot match a conforming client's signature but never fails the parse.
void append_requoted(std::string& out, std::string_view raw) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '%' && i + 2 < raw.size()) {
      const int hi = hex_value(raw[i + 1]);
      const int lo = hex_value(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        c = static_cast<unsigned char>(hi * 16 + lo);
        i += 2;
      }
    }
    append_encoded_byte(out, c);
  }
}

// botocore's remove_dot_segments (RFC 3986 §5.2.4 plus collapsing "//"), then the non-S3 second
// encoding with '/' kept. Segments go through a reused buffer to stay allocation-free.
void append_canonical_uri(std::string& out, std::string_view raw_path) {
  if (raw_path.empty()) {
    out += '/';
    return;
  }
  thread_local std::vector<std::string_view> segments;
  if (segments.capacity() > kMaxRetainedBytes / sizeof(std::string_view)) {
    std::vector<std::string_view>().swap(segments);
  }
  segments.clear();
  std::string_view rest = raw_path;
  do {
    const auto seg = next_token(rest, '/');
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
  } while (!rest.empty());
  if (raw_path.front() == '/') out += '/';
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out += '/';
    for (const char c : segments[i]) append_encoded_byte(out, static_cast<unsigned char>(c));
  }
  if (raw_path.back() == '/' && !segments.empty()) out += '/';
}

void append_canonical_query(std::string& out, std::string_view raw_query) {
  // Reused across calls: assigning into existing strings keeps their capacity, so steady-state
  // verification does not allocate here.
  thread_local std::vector<std::pair<std::string, std::string>> pairs;
  if (pairs.size() > kMaxRetainedPairs) {
    pairs.resize(kMaxRetainedPairs);
    pairs.shrink_to_fit();
  }
  std::size_t n = 0;
  std::string_view rest = raw_query;
  while (!rest.empty()) {
    std::string_view pair = next_token(rest, '&');
    if (pair.empty()) continue;
    const auto key = next_token(pair, '=');
    if (n == pairs.size()) pairs.emplace_back();
    auto& [k, v] = pairs[n++];
    k.clear();
    v.clear();
    append_requoted(k, key);
    append_requoted(v, pair);
  }
  std::sort(pairs.begin(), pairs.begin() + static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += '&';
    out += pairs[i].first;
    out += '=';
    out += pairs[i].second;
  }
}

void append_trimall(std::string& out, std::string_view value) {
  value = trim(value);
  bool in_space = false;
  for (const char c : value) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
}

void append_hex(std::string& out, const Sha256Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (const auto b : d) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
}

void split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  const auto q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  // A fragment is never signed (and never sent by SDKs); drop it like a URL parser would.
  if (const auto f = query.find('#'); f != std::string_view::npos) query = query.substr(0, f);
  if (const auto f = path.find('#'); f != std::string_view::npos) path = path.substr(0, f);
}

// ---- signing key -----------------------------------------------------------------------------

// The kDate/kRegion/kService/kSigning chain is four HMACs per request; every request from one
// client on one day reuses the same key, so a few entries per thread catch nearly all of them.
// Thread-local (not shared) so the invoke hot path takes no lock; it is a pure cache and holds
// nothing that is not also in the secret store.
class SigningKeyCache {
 public:
  const Sha256Digest& get(std::string_view secret, std::string_view date, std::string_view region,
                          std::string_view service) {
    for (auto& e : entries_) {
      if (e.valid && e.date == date && e.region == region && e.service == service &&
          e.secret == secret) {
        return e.key;
      }
    }
    auto& e = entries_[next_];
    next_ = (next_ + 1) % entries_.size();
    scratch_.assign("AWS4");
    scratch_.append(secret);
    const auto k_date = hmac_sha256(scratch_, date);
    const auto k_region = hmac_sha256(as_bytes(k_date), region);
    const auto k_service = hmac_sha256(as_bytes(k_region), service);
    e.key = hmac_sha256(as_bytes(k_service), kTerminator);
    OPENSSL_cleanse(scratch_.data(), scratch_.size());
    ++derivations_;
    e.secret.assign(secret);
    e.date.assign(date);
    e.region.assign(region);
    e.service.assign(service);
    e.valid = true;
    return e.key;
  }

  std::uint64_t derivations() const { return derivations_; }

 private:
  struct Entry {
    std::string secret;
    std::string date;
    std::string region;
    std::string service;
    Sha256Digest key{};
    bool valid = false;
  };
  std::array<Entry, 4> entries_{};
  std::uint64_t derivations_ = 0;
  std::size_t next_ = 0;
  std::string scratch_;
};

SigningKeyCache& key_cache() {
  thread_local SigningKeyCache cache;
  return cache;
}

// SHA-256 and HMAC-SHA-256 of verify(), per thread. EVP_Digest() and HMAC() fetch the
// algorithm and create a context on every call, which made them most of the cost of verifying
// a small request; this keeps one fetched digest and one context per thread.
class Hasher {
 public:
  Hasher() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {}
  ~Hasher() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  // SHA-256 of a followed by b.
  Sha256Digest digest(std::string_view a, std::string_view b = {}) {
    Sha256Digest out{};
    unsigned len = 0;
    if (md_ == nullptr || ctx_ == nullptr || EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 ||
        EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
        EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1) {
      std::string joined(a);  // not expected to happen; the one-shot path is always there
      joined.append(b);
      return sha256(joined);
    }
    return out;
  }

  // RFC 2104 HMAC with a 32-byte key (shorter than SHA-256's 64-byte block: zero-padded).
  Sha256Digest hmac(const Sha256Digest& key, std::string_view msg) {
    std::array<char, 64> pad{};
    for (std::size_t i = 0; i < pad.size(); ++i)
      pad[i] = static_cast<char>((i < key.size() ? key[i] : 0) ^ 0x36);
    const auto inner = digest({pad.data(), pad.size()}, msg);
    for (auto& c : pad) c = static_cast<char>(c ^ (0x36 ^ 0x5c));
    const auto mac = digest({pad.data(), pad.size()}, as_bytes(inner));
    OPENSSL_cleanse(pad.data(), pad.size());
    return mac;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

Hasher& hasher() {
  thread_local Hasher h;
  return h;
}

// hex(HMAC(kSigning, string-to-sign)) into a fixed buffer.
std::array<char, kSignatureHexLen> compute_signature(const Sha256Digest& signing_key,
                                                     std::string_view amz_date,
                                                     std::string_view scope,
                                                     const Sha256Digest& canonical_hash,
                                                     std::string& buf) {
  buf.clear();
  buf += kAlgorithm;
  buf += '\n';
  buf += amz_date;
  buf += '\n';
  buf += scope;
  buf += '\n';
  append_hex(buf, canonical_hash);
  const auto mac = hasher().hmac(signing_key, buf);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::array<char, kSignatureHexLen> out{};
  for (std::size_t i = 0; i < mac.size(); ++i) {
    out[2 * i] = kDigits[mac[i] >> 4];
    out[2 * i + 1] = kDigits[mac[i] & 15];
  }
  return out;
}

// ---- Authorization header --------------------------------------------------------------------

struct AuthFields {
  std::string_view access_key;
  std::string_view date;  // YYYYMMDD
  std::string_view region;
  std::string_view service;
  std::string_view scope;  // date/region/service/aws4_request, a view into the header
  std::string_view signed_headers;
  std::string_view signature;
};

std::unexpected<Error> garbled(std::string_view why) {
  return fail(Errc::kUnauthorized, std::string(why), "IncompleteSignature");
}

Result<AuthFields> parse_authorization(std::string_view header) {
  std::string_view rest = trim(header);
  if (!consume_prefix(rest, kAlgorithm) || rest.empty() || !is_space(rest.front())) {
    return garbled("Authorization header must use the AWS4-HMAC-SHA256 algorithm.");
  }
  AuthFields f;
  std::string_view credential;
  bool have_credential = false, have_signed = false, have_signature = false;
  while (!rest.empty()) {
    const auto part = trim(next_token(rest, ','));
    std::string_view value = part;
    if (consume_prefix(value, "Credential=") && !have_credential) {
      credential = value;
      have_credential = true;
    } else if (consume_prefix(value, "SignedHeaders=") && !have_signed) {
      f.signed_headers = value;
      have_signed = true;
    } else if (consume_prefix(value, "Signature=") && !have_signature) {
      f.signature = value;
      have_signature = true;
    } else {
      return garbled(
          "Authorization header must contain exactly the parameters Credential, SignedHeaders "
          "and Signature, separated by commas.");
    }
  }
  if (!have_credential) return garbled("Authorization header requires 'Credential' parameter.");
  if (!have_signed) return garbled("Authorization header requires 'SignedHeaders' parameter.");
  if (!have_signature) return garbled("Authorization header requires 'Signature' parameter.");

  std::string_view cred = credential;
  f.access_key = next_token(cred, '/');
  f.scope = cred;
  f.date = next_token(cred, '/');
  f.region = next_token(cred, '/');
  f.service = next_token(cred, '/');
  if (f.access_key.empty() || f.date.size() != 8 || parse_digits(f.date) < 0 || f.region.empty() ||
      f.service.empty() || cred != kTerminator) {
    return garbled(
        "Credential must have the form <access key>/<YYYYMMDD>/<region>/<service>/aws4_request.");
  }

  if (f.signed_headers.empty() || f.signed_headers.back() == ';') {
    return garbled("SignedHeaders contains an empty header name.");
  }
  bool signs_host = false;
  std::string_view names = f.signed_headers;
  std::string_view previous;
  while (!names.empty()) {
    const auto name = next_token(names, ';');
    if (name.empty()) return garbled("SignedHeaders contains an empty header name.");
    // The canonical form lists each name once, sorted; verification relies on it (linear in
    // the headers, where an unsorted list with repeats cost names x headers).
    if (!previous.empty() && !iless(previous, name)) {
      return garbled("SignedHeaders must list each header name once, in sorted order.");
    }
    previous = name;
    for (const char c : name) {
      if (c <= ' ' || c == ':' || c == 0x7f) {
        return garbled("SignedHeaders contains an invalid header name.");
      }
    }
    if (iequals(name, "host")) signs_host = true;
  }
  // Without host the signature could be replayed against another endpoint; every SDK signs it.
  if (!signs_host) return garbled("'Host' must be a 'SignedHeader' in the AWS Authorization.");

  if (f.signature.size() != kSignatureHexLen ||
      !std::all_of(f.signature.begin(), f.signature.end(), is_lower_hex)) {
    return garbled("Signature must be 64 lowercase hexadecimal characters.");
  }
  return f;
}

std::unexpected<Error> mismatch(std::string_view reason) {
  return fail(Errc::kSignatureMismatch, std::string(kMsgMismatch), std::string(reason));
}

}  // namespace

std::uint64_t signing_key_derivations_on_this_thread() {
  return key_cache().derivations();
}

std::string canonical_uri(std::string_view raw_path) {
  std::string out;
  out.reserve(raw_path.size() + 16);
  append_canonical_uri(out, raw_path);
  return out;
}

std::string canonical_query(std::string_view raw_query) {
  std::string out;
  out.reserve(raw_query.size() + 16);
  append_canonical_query(out, raw_query);
  return out;
}

namespace {

// Headers: std::vector<Header> or std::span<const HeaderView>.
template <class Headers>
Result<Identity> verify_headers(const SignedRequest& req, const Headers& headers,
                                const SecretLookup& lookup, const VerifyOptions& opts) {
  bool duplicate = false;
  const auto* auth = find_header(headers, "authorization", &duplicate);
  if (auth == nullptr) return fail(Errc::kUnauthorized, std::string(kMsgMissing), "MissingToken");
  if (duplicate) return garbled("Only one Authorization header may be sent.");
  auto fields = parse_authorization(auth->value);
  if (!fields) return std::unexpected(std::move(fields.error()));
  const AuthFields& f = *fields;

  duplicate = false;
  const auto* date_header = find_header(headers, "x-amz-date", &duplicate);
  if (date_header == nullptr) {
    return garbled("Authorization header requires existence of a 'X-Amz-Date' header.");
  }
  const std::string_view amz_date = trim(date_header->value);
  const auto request_time = parse_amz_date(amz_date);
  if (duplicate || !request_time) {
    return garbled("X-Amz-Date must be one date in ISO 8601 basic format (YYYYMMDDTHHMMSSZ).");
  }
  if (amz_date.substr(0, 8) != f.date) {
    return fail(Errc::kSignatureMismatch,
                fmt::format("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                            "version of date from HTTP: '{}' != '{}'",
                            f.date, amz_date.substr(0, 8)),
                "ScopeDate");
  }
  if (f.service != opts.service) {
    return fail(Errc::kSignatureMismatch,
                fmt::format("Credential should be scoped to correct service: '{}'.", opts.service),
                "ScopeService");
  }
  if (*request_time < opts.now_unix_s - opts.max_skew_s) {
    return fail(Errc::kSignatureMismatch,
                fmt::format("Signature expired: {} is now earlier than {} ({} - {})", amz_date,
                            format_amz_date(opts.now_unix_s - opts.max_skew_s),
                            format_amz_date(opts.now_unix_s), format_skew(opts.max_skew_s)),
                "Expired");
  }
  if (*request_time > opts.now_unix_s + opts.max_skew_s) {
    return fail(Errc::kSignatureMismatch,
                fmt::format("Signature not yet current: {} is still later than {} ({} + {})",
                            amz_date, format_amz_date(opts.now_unix_s + opts.max_skew_s),
                            format_amz_date(opts.now_unix_s), format_skew(opts.max_skew_s)),
                "NotYetCurrent");
  }

  const auto secret = lookup(f.access_key);
  if (!secret) return fail(Errc::kUnauthorized, std::string(kMsgUnknownKey), "UnknownKey");
  if (opts.head_only) return Identity{std::string(f.access_key), std::string(f.region)};

  // Payload hash: the client's x-amz-content-sha256 when present (the JS SDK always sends it),
  // but only if it really describes these bytes; otherwise a signed header could vouch for a
  // body that was swapped in transit.
  Sha256Digest body_hash = hasher().digest(req.body);
  std::array<char, kSignatureHexLen> body_hex{};
  {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < body_hash.size(); ++i) {
      body_hex[2 * i] = kDigits[body_hash[i] >> 4];
      body_hex[2 * i + 1] = kDigits[body_hash[i] & 15];
    }
  }
  std::string_view payload_hash{body_hex.data(), body_hex.size()};
  if (const auto* h = find_header(headers, "x-amz-content-sha256"); h != nullptr) {
    const std::string_view claimed = trim(h->value);
    if (claimed != kUnsignedPayload && claimed != payload_hash) {
      return fail(Errc::kSignatureMismatch,
                  "The provided 'x-amz-content-sha256' header does not match what was computed.",
                  "PayloadHash");
    }
    payload_hash = claimed;
  }

  // One buffer per thread, reused: steady-state verification does not allocate for it.
  thread_local std::string buf;
  if (buf.capacity() > kMaxRetainedBytes) std::string().swap(buf);
  buf.clear();
  std::string_view path, query;
  split_target(req.target, path, query);
  buf += req.method;
  buf += '\n';
  append_canonical_uri(buf, path);
  buf += '\n';
  append_canonical_query(buf, query);
  buf += '\n';
  // The headers in the signed names' order (a field's repeats in the order they came), merged
  // with the names, which parse_authorization checked are sorted and unique: linear in them.
  struct Field {
    std::string_view name, value;
    std::size_t at;
  };
  thread_local std::vector<Field> sorted;
  if (sorted.capacity() > 256) std::vector<Field>().swap(sorted);
  sorted.clear();
  for (const auto& h : headers) sorted.push_back({h.name, h.value, sorted.size()});
  std::sort(sorted.begin(), sorted.end(), [](const Field& a, const Field& b) {
    return iless(a.name, b.name) || (!iless(b.name, a.name) && a.at < b.at);
  });
  auto next_header = sorted.begin();
  std::string_view names = f.signed_headers;
  while (!names.empty()) {
    const auto name = next_token(names, ';');
    buf += name;
    buf += ':';
    while (next_header != sorted.end() && iless(next_header->name, name)) ++next_header;
    bool found = false;
    for (; next_header != sorted.end() && iequals(next_header->name, name); ++next_header) {
      if (found) buf += ',';
      append_trimall(buf, next_header->value);
      found = true;
    }
    if (!found) return mismatch("SignedHeaderMissing");
    buf += '\n';
  }
  buf += '\n';
  buf += f.signed_headers;
  buf += '\n';
  buf += payload_hash;

  const auto canonical_hash = hasher().digest(buf);
  const auto& key = key_cache().get(*secret, f.date, f.region, f.service);
  const auto expected = compute_signature(key, amz_date, f.scope, canonical_hash, buf);
  if (CRYPTO_memcmp(expected.data(), f.signature.data(), kSignatureHexLen) != 0) {
    return mismatch("Signature");
  }
  return Identity{std::string(f.access_key), std::string(f.region)};
}

}  // namespace

Result<Identity> verify(const SignedRequest& req, const SecretLookup& lookup,
                        const VerifyOptions& opts) {
  if (req.headers != nullptr) return verify_headers(req, *req.headers, lookup, opts);
  return verify_headers(req, req.header_views, lookup, opts);
}

std::vector<Header> sign(const SigningInput& in) {
  const std::string amz_date = format_amz_date(in.now_unix_s);
  const std::string_view date = std::string_view(amz_date).substr(0, 8);
  const std::string payload_hash = to_hex(sha256(in.body));

  std::vector<std::pair<std::string, std::string>> signed_headers;
  signed_headers.reserve(in.headers.size() + 3);
  signed_headers.emplace_back("host", in.host);
  signed_headers.emplace_back("x-amz-date", amz_date);
  signed_headers.emplace_back("x-amz-content-sha256", payload_hash);
  for (const auto& h : in.headers) {
    std::string name = h.name;
    std::transform(name.begin(), name.end(), name.begin(), lower);
    // The three headers computed here are the ones sent; a caller's copy would be a second value.
    if (name == "host" || name == "x-amz-date" || name == "x-amz-content-sha256" ||
        name == "authorization") {
      continue;
    }
    signed_headers.emplace_back(std::move(name), h.value);
  }
  // Stable: several values of one header are joined in the order they are sent.
  std::stable_sort(signed_headers.begin(), signed_headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string_view path, query;
  split_target(in.target, path, query);
  std::string canonical;
  canonical += in.method;
  canonical += '\n';
  append_canonical_uri(canonical, path);
  canonical += '\n';
  append_canonical_query(canonical, query);
  canonical += '\n';
  std::string names;
  for (std::size_t i = 0; i < signed_headers.size(); ++i) {
    const auto& [name, value] = signed_headers[i];
    const bool continues = i > 0 && signed_headers[i - 1].first == name;
    if (continues) {
      canonical.pop_back();  // the '\n' of the previous value of this header
      canonical += ',';
    } else {
      if (!names.empty()) names += ';';
      names += name;
      canonical += name;
      canonical += ':';
    }
    append_trimall(canonical, value);
    canonical += '\n';
  }
  canonical += '\n';
  canonical += names;
  canonical += '\n';
  canonical += payload_hash;

  const std::string scope = fmt::format("{}/{}/{}/{}", date, in.region, in.service, kTerminator);
  const auto& key = key_cache().get(in.secret, date, in.region, in.service);
  std::string buf;
  const auto signature = compute_signature(key, amz_date, scope, sha256(canonical), buf);

  std::vector<Header> out;
  out.push_back({"X-Amz-Date", amz_date});
  out.push_back({"x-amz-content-sha256", payload_hash});
  out.push_back(
      {"Authorization", fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}",
                                    kAlgorithm, in.access_key_id, scope, names,
                                    std::string_view(signature.data(), signature.size()))});
  return out;
}

}  // namespace lambent::sigv4
