#include "api/service.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>

#include "api/call.hpp"
#include "api/errors.hpp"
#include "api/json_check.hpp"
#include "core/encoding.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/sigv4.hpp"

namespace lambent::api {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxSyncPayload = 6 * 1024 * 1024;  // 6 MB (6,291,456 bytes)
// Lambda's limit for a request carrying a zip (50 MB base64-encoded, in JSON).
constexpr std::size_t kMaxRequestBytes = 70'167'211;
constexpr std::size_t kMaxClientContext = 3583;

// POST /2015-03-31/functions/{name}/invocations, from the target alone (for answers given
// before the request is routed): exactly four segments, not a name that contains the word.
bool is_invoke(std::string_view target) {
  target = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/2015-03-31/functions/";
  constexpr std::string_view kSuffix = "/invocations";
  if (!target.starts_with(kPrefix) || !target.ends_with(kSuffix)) return false;
  const auto name = target.substr(kPrefix.size(), target.size() - kPrefix.size() - kSuffix.size());
  return !name.empty() && name.find('/') == std::string_view::npos;
}

// percent_decode, without its copy-and-scan when there is nothing to decode (the usual case).
std::optional<std::string> decode_component(std::string_view s) {
  if (s.find('%') == std::string_view::npos) return std::string(s);
  return percent_decode(s);
}

bool split_target(std::string_view target, ApiService::Call& c) {
  const auto qpos = target.find('?');
  c.path = std::string(target.substr(0, qpos));
  c.segs.reserve(8);
  std::size_t start = 1;
  while (start <= c.path.size()) {
    auto end = c.path.find('/', start);
    if (end == std::string::npos) end = c.path.size();
    auto seg = decode_component(std::string_view(c.path).substr(start, end - start));
    if (!seg) return false;
    if (!(end == c.path.size() && seg->empty())) c.segs.push_back(std::move(*seg));
    start = end + 1;
  }
  if (qpos != std::string_view::npos) {
    std::string_view qs = target.substr(qpos + 1);
    while (!qs.empty()) {
      const auto amp = qs.find('&');
      const auto part = qs.substr(0, amp);
      const auto eq = part.find('=');
      auto k = decode_component(part.substr(0, eq));
      auto v =
          decode_component(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
      if (!k || !v) return false;
      if (!k->empty()) c.query.emplace(std::move(*k), std::move(*v));
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  return true;
}

// X-Ray's Root=1-<8 hex seconds>-<24 hex>;Parent=<16 hex>;Sampled=0, built without fmt (every
// invoke has one).
std::string trace_id(std::int64_t unix_s) {
  char secs[8];
  for (int i = 7; i >= 0; --i, unix_s >>= 4) secs[i] = "0123456789abcdef"[unix_s & 0xf];
  std::string out;
  out.reserve(64);
  out.append("Root=1-");
  out.append(secs, sizeof(secs));
  out += '-';
  out.append(random_hex(24));
  out.append(";Parent=");
  out.append(random_hex(16));
  out.append(";Sampled=0");
  return out;
}

}  // namespace

// ---- Call helpers ----

namespace {

// A body this large has its long plain string values (a package's base64) cut out before
// nlohmann parses it: its lexer copies a string a byte at a time (~60 MB/s here, 0.8 s of a
// 40-MB UpdateFunctionCode), where check_json finds them at memory speed.
constexpr std::size_t kLiftBodyBytes = 1 << 20;
constexpr std::size_t kLiftStringBytes = 64 * 1024;

// Puts the lifted strings back: each stands in the parsed tree as "\u0001<nonce>:<index>".
void put_back(json& j, std::string_view body, const std::vector<TextSpan>& spans,
              std::string_view marker) {
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) put_back(v, body, spans, marker);
    return;
  }
  if (!j.is_string()) return;
  const auto& s = j.get_ref<const std::string&>();
  if (!s.starts_with(marker)) return;
  std::size_t i = 0;
  const auto digits = std::string_view(s).substr(marker.size());
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), i);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || i >= spans.size()) return;
  j = std::string(body.substr(spans[i].begin, spans[i].end - spans[i].begin));
}

// nlohmann's parse of `body`, with its long plain strings lifted out first (kLiftBodyBytes).
json parse_lifting_long_strings(std::string_view body) {
  std::vector<TextSpan> spans;
  if (body.size() < kLiftBodyBytes || !check_json(body, kLiftStringBytes, spans).empty() ||
      spans.empty()) {
    return json::parse(body, nullptr, false);
  }
  // A marker no client can have guessed, so no string of its own is taken for a lifted one.
  const std::string nonce = random_hex(16);
  std::string small;
  std::size_t at = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    small.append(body.substr(at, spans[i].begin - at));
    small.append("\\u0001").append(nonce).append(":").append(std::to_string(i));
    at = spans[i].end;
  }
  small.append(body.substr(at));
  auto j = json::parse(small, nullptr, false);
  if (!j.is_discarded()) put_back(j, body, spans, std::string("\x01") + nonce + ":");
  return j;
}

}  // namespace

Result<json> ApiService::Call::json_body() const {
  if (req.body().empty()) return json::object();
  auto j = parse_lifting_long_strings(req.body());
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::kInvalidRequestContent,
                "Could not parse request body into json: the body is not a JSON object");
  return j;
}

http::Response ok_json(const ApiService::Call& c, unsigned status, const json& body) {
  return ok_raw(c, status, json_text(body));
}

http::Response ok_raw(const ApiService::Call& c, unsigned status, std::string body) {
  auto res = http::json_response(status, std::move(body), c.keep_alive);
  res.set("x-amzn-RequestId", c.request_id);
  return res;
}

http::Response fail_response(const ApiService::Call& c, const Error& e) {
  return error_response(e, c.request_id, c.keep_alive);
}

Result<std::optional<std::string>> get_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string())
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value at '{}' must be a string", key));
  return std::optional<std::string>{it->get<std::string>()};
}

Result<std::optional<int>> get_int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int>{};
  if (!it->is_number_integer())
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value at '{}' must be an integer", key));
  const auto v = it->get<long long>();
  if (v < INT32_MIN || v > INT32_MAX)
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value at '{}' is out of range", key));
  return std::optional<int>{static_cast<int>(v)};
}

Result<std::optional<bool>> get_bool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<bool>{};
  if (!it->is_boolean())
    return fail(Errc::kValidation,
                fmt::format("1 validation error detected: Value at '{}' must be a boolean", key));
  return std::optional<bool>{it->get<bool>()};
}

// ---- service ----

ApiService::ApiService(ApiDeps deps, ApiSettings settings)
    : deps_(deps), settings_(std::move(settings)) {}

std::string ApiService::arn(std::string_view name, std::string_view qualifier) const {
  return deps_.engine.function_arn(name, qualifier);
}

http::Response ApiService::parse_error(const http::Request& partial, std::string_view what,
                                       http::ParseFailure why) {
  const auto id = new_uuid();
  if (why == http::ParseFailure::kOverBudget) {
    // A 429 with Retry-After: the SDKs retry it with backoff, as they do Lambda's throttles.
    return error_response(
        make_error(Errc::kThrottled,
                   "Lambent is receiving as many request bodies as --body-budget allows; retry "
                   "later",
                   "CallerRateLimitExceeded"),
        id, false);
  }
  if (why == http::ParseFailure::kBodyTooLarge) {
    const bool invoke = is_invoke(partial.target());
    return error_response(
        make_error(Errc::kRequestTooLarge,
                   invoke ? fmt::format("Request must be smaller than {} bytes for the "
                                        "InvokeFunction operation",
                                        kMaxSyncPayload)
                          : fmt::format("Request must be smaller than {} bytes", kMaxRequestBytes)),
        id, false);
  }
  return error_response(make_error(Errc::kInvalidRequestContent,
                                   "Could not read the HTTP request: " + std::string(what)),
                        id, false);
}

std::optional<http::Response> ApiService::check_head(const http::Request& head,
                                                     std::uint64_t& body_limit) {
  const std::uint64_t route_limit = is_invoke(head.target()) ? kMaxSyncPayload : kMaxRequestBytes;
  std::uint64_t declared = 0;
  if (auto cl = head.find(bhttp::field::content_length); cl != head.end()) {
    const std::string_view v = cl->value();
    std::from_chars(v.data(), v.data() + v.size(), declared);
  }
  if (declared > route_limit)
    return parse_error(head, "body too large", http::ParseFailure::kBodyTooLarge);
  body_limit = std::min(body_limit, route_limit);  // a chunked body says its size only at its end
  if (!settings_.auth) return std::nullopt;
  const bool logs = std::string_view(head["X-Amz-Target"]).starts_with("Logs_20140328.");
  auto ok = verify_signature(head, logs, /*head_only=*/true);
  if (ok) return std::nullopt;
  const auto id = new_uuid();
  return logs ? logs_error_response(ok.error(), id, false) : error_response(ok.error(), id, false);
}

Result<sigv4::Identity> ApiService::verify_signature(const http::Request& req, bool logs,
                                                     bool head_only) const {
  // Views into the parsed request, in a per-thread vector: no copy of any header.
  thread_local std::vector<sigv4::HeaderView> headers;
  if (headers.capacity() > 256) headers = {};  // after a request with very many headers
  headers.clear();
  for (const auto& f : req) headers.push_back({f.name_string(), f.value()});
  const sigv4::SignedRequest sr{req.method_string(), req.target(), nullptr, req.body(), headers};
  const auto& creds = settings_.credentials;
  return sigv4::verify(
      sr,
      [&creds](std::string_view key) -> std::optional<std::string> {
        if (key == creds.access_key_id) return creds.secret_access_key;
        return std::nullopt;
      },
      sigv4::VerifyOptions{logs ? "logs" : "lambda", unix_ms_now() / 1000, 15 * 60, head_only});
}

void ApiService::handle(http::Request&& req, http::Responder res) {
  auto c = std::make_shared<Call>();
  c->request_id = new_uuid();
  c->keep_alive = req.keep_alive();
  c->req = std::move(req);
  if (draining_.load(std::memory_order_relaxed)) {
    c->keep_alive = false;
    res.send(fail_response(*c, make_error(Errc::kUnavailable, "Lambent is shutting down")));
    return;
  }
  if (!split_target(c->req.target(), *c)) {
    res.send(fail_response(
        *c, make_error(Errc::kInvalidParameter, "Malformed percent-encoding in the request URI")));
    return;
  }
  const std::string_view target = c->header_view("X-Amz-Target");
  const bool logs = target.starts_with("Logs_20140328.");
  const bool code_download = c->segs.size() == 3 && c->segs[0] == "lambent" && c->segs[1] == "code";

  if (settings_.auth && !code_download) {
    auto ok = verify_signature(c->req, logs, /*head_only=*/false);
    if (!ok) {
      res.send(logs ? logs_error_response(ok.error(), c->request_id, c->keep_alive)
                    : fail_response(*c, ok.error()));
      return;
    }
  }

  if (logs) {
    boost::asio::post(deps_.blocking, [this, c, res = std::move(res)]() mutable {
      http::Response out;
      try {
        out = logs_api(*c);
      } catch (const nlohmann::json::exception& e) {  // a field of the wrong type
        out = logs_error_response(
            make_error(Errc::kInvalidParameter, std::string("invalid request: ") + e.what()),
            c->request_id, false);
      } catch (const std::exception& e) {
        LAMBENT_LOG_ERROR("api", "logs {} failed: {}", c->path, e.what());
        out = logs_error_response(
            make_error(Errc::kInternal, std::string("internal error: ") + e.what()), c->request_id,
            false);
      }
      res.send(std::move(out));
    });
    return;
  }
  // POST /2015-03-31/functions/{name}/invocations — the hot path stays on this shard.
  if (c->segs.size() == 4 && c->segs[0] == "2015-03-31" && c->segs[1] == "functions" &&
      c->segs[3] == "invocations" && c->req.method() == bhttp::verb::post) {
    invoke(*c, std::move(res));
    return;
  }
  control_plane(std::move(c), std::move(res));
}

void ApiService::control_plane(std::shared_ptr<Call> c, http::Responder res) {
  boost::asio::post(deps_.blocking, [this, c = std::move(c), res = std::move(res)]() mutable {
    http::Response out;
    try {
      std::lock_guard lock(cp_mu_);
      out = route_control(*c);
    } catch (const std::exception& e) {
      LAMBENT_LOG_ERROR("api", "{} {} failed: {}", c->req.method_string(), c->path, e.what());
      out = fail_response(*c,
                          make_error(Errc::kInternal, std::string("internal error: ") + e.what()));
    }
    res.send(std::move(out));
  });
}

void ApiService::invoke(Call& c, http::Responder res) {
  auto ref = registry::parse_function_name(c.segs[2], settings_.region, settings_.account);
  if (!ref) return res.send(fail_response(c, ref.error()));
  std::string qualifier = ref->qualifier;
  if (c.has_q("Qualifier")) {
    const auto q = c.q("Qualifier");
    if (!qualifier.empty() && qualifier != q)
      return res.send(fail_response(c, make_error(Errc::kInvalidParameter,
                                                  "The derived qualifier from the function name "
                                                  "does not match the specified qualifier.")));
    qualifier = q;
    if (auto ok = registry::validate_qualifier(qualifier); !ok)
      return res.send(fail_response(c, ok.error()));
  }
  const std::string_view type = c.header_view("X-Amz-Invocation-Type");
  if (!type.empty() && type != "RequestResponse" && type != "Event" && type != "DryRun")
    return res.send(fail_response(
        c, make_error(Errc::kValidation,
                      "1 validation error detected: Value '" + std::string(type) +
                          "' at 'invocationType' failed to satisfy constraint: Member must satisfy "
                          "enum value set: [Event, RequestResponse, DryRun]")));
  const std::string_view log_type = c.header_view("X-Amz-Log-Type");
  if (!log_type.empty() && log_type != "None" && log_type != "Tail")
    return res.send(fail_response(
        c, make_error(Errc::kValidation,
                      "1 validation error detected: Value '" + std::string(log_type) +
                          "' at 'logType' failed to satisfy constraint: Member must satisfy "
                          "enum value set: [None, Tail]")));
  if (type == "Event")
    return res.send(fail_response(
        c, make_error(Errc::kInvalidParameter,
                      "Asynchronous invocation (InvocationType Event) is not available in this "
                      "Lambent version yet; use RequestResponse")));
  auto& body = c.req.body();
  if (body.size() > kMaxSyncPayload)
    return res.send(fail_response(
        c, make_error(
               Errc::kRequestTooLarge,
               fmt::format("Request must be smaller than {} bytes for the InvokeFunction operation",
                           kMaxSyncPayload))));
  if (body.empty()) {
    body = "{}";
  } else if (auto why = check_json(body); !why.empty()) {
    return res.send(fail_response(c, make_error(Errc::kInvalidRequestContent,
                                                "Could not parse request body into json: " + why)));
  }
  auto inv = std::make_shared<engine::Invocation>();
  const auto cc = c.header_view("X-Amz-Client-Context");
  if (!cc.empty()) {
    auto decoded = cc.size() <= kMaxClientContext ? base64_decode(cc) : std::nullopt;
    const auto first = decoded ? decoded->find_first_not_of(" \t\r\n") : std::string::npos;
    if (!decoded || !check_json(*decoded).empty() || first == std::string::npos ||
        (*decoded)[first] != '{')
      return res.send(fail_response(
          c, make_error(Errc::kInvalidParameter,
                        "Client context must be a valid Base64-encoded JSON object.")));
    // It reaches the runtime as a header value (Lambda-Runtime-Client-Context), where a raw
    // line break would end the header, or the head, and desynchronise the runtime's
    // connection. JSON allows one only as whitespace between tokens, so a space means the same.
    std::replace_if(
        decoded->begin(), decoded->end(), [](char ch) { return ch == '\r' || ch == '\n'; }, ' ');
    inv->client_context = std::move(*decoded);
  }
  const bool dry_run = type == "DryRun";
  inv->request_id = c.request_id;
  inv->want_tail = log_type == "Tail";
  inv->payload = std::move(body);
  inv->accepted_at = std::chrono::steady_clock::now();
  inv->trace_id = trace_id(unix_ms_now() / 1000);
  if (!ref->qualifier.empty() || c.has_q("Qualifier")) inv->invoked_arn = arn(ref->name, qualifier);
  const bool keep_alive = c.keep_alive;
  auto responder = std::make_shared<http::Responder>(std::move(res));
  inv->done = [responder, keep_alive, id = c.request_id, dry_run](engine::InvokeOutcome&& o) {
    if (o.error) {
      responder->send(error_response(*o.error, id, keep_alive));
      return;
    }
    http::Response r{dry_run ? bhttp::status::no_content : bhttp::status::ok, 11};
    r.keep_alive(keep_alive);
    r.set("x-amzn-RequestId", id);
    r.set("X-Amz-Executed-Version", o.executed_version);
    if (!dry_run) {
      r.set(bhttp::field::content_type, "application/json");
      if (o.function_error) r.set("X-Amz-Function-Error", "Unhandled");
      if (!o.log_tail.empty()) r.set("X-Amz-Log-Result", base64_encode(o.log_tail));
      r.body() = std::move(o.payload);
    }
    responder->send(std::move(r));
  };
  if (dry_run) {
    // Validation only: the function and qualifier must exist; nothing runs.
    auto version = deps_.engine.resolve(ref->name, qualifier);
    if (!version) return inv->fail(std::move(version.error()));
    engine::InvokeOutcome o;
    o.executed_version = std::move(*version);
    inv->complete(std::move(o));
    return;
  }
  deps_.engine.invoke(ref->name, qualifier, inv);
}

}  // namespace lambent::api
