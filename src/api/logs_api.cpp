// The subset of the CloudWatch Logs API (JSON 1.1, X-Amz-Target
// Logs_20140328.*) that `aws logs tail/get-log-events/filter-log-events`
// and `lambent logs` use, over the function log store.
#include <boost/beast/http.hpp>

#include "api/call.hpp"
#include "api/errors.hpp"

namespace lambent::api {

using nlohmann::json;

namespace {

json event_json(const logs::LogEvent& e, bool with_stream) {
  json j = {
      {"timestamp", e.timestamp_ms}, {"ingestionTime", e.ingestion_ms}, {"message", e.message}};
  if (with_stream) {
    j["logStreamName"] = e.stream;
    // Unique per event (`aws logs tail --follow` drops ids it has seen): the same line
    // printed twice in one millisecond is two events.
    j["eventId"] = std::to_string(e.timestamp_ms) + "-" +
                   std::to_string(std::hash<std::string>{}(e.stream)) + "-" +
                   std::to_string(e.line);
  }
  return j;
}

}  // namespace

http::Response ApiService::logs_api(Call& c) {
  const std::string op = c.header("X-Amz-Target").substr(std::string("Logs_20140328.").size());
  auto reply = [&](const json& j) {
    auto res = ok_json(c, 200, j);
    res.set(boost::beast::http::field::content_type, "application/x-amz-json-1.1");
    return res;
  };
  auto err = [&](const Error& e) { return logs_error_response(e, c.request_id, c.keep_alive); };
  auto body = json::parse(c.req.body().empty() ? "{}" : c.req.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return err(make_error(Errc::kInvalidRequestContent, "the request body is not a JSON object"));

  if (op == "DescribeLogGroups") {
    auto groups = deps_.logs.groups();
    if (!groups) return err(groups.error());
    const auto prefix = body.value("logGroupNamePrefix", "");
    json out = {{"logGroups", json::array()}};
    for (const auto& g : *groups)
      if (g.starts_with(prefix))
        out["logGroups"].push_back({{"logGroupName", g},
                                    {"arn", "arn:aws:logs:" + settings_.region + ":" +
                                                settings_.account + ":log-group:" + g + ":*"},
                                    {"storedBytes", 0}});
    return reply(out);
  }
  const auto group = body.value("logGroupName", "");
  if (group.empty()) return err(make_error(Errc::kInvalidParameter, "logGroupName is required"));
  if (op == "DescribeLogStreams") {
    auto streams = deps_.logs.streams(group);
    if (!streams) return err(streams.error());
    const auto prefix = body.value("logStreamNamePrefix", "");
    std::vector<logs::StreamInfo> list;
    for (auto& s : *streams)
      if (s.name.starts_with(prefix)) list.push_back(std::move(s));
    if (body.value("orderBy", "LogStreamName") == "LastEventTime")
      std::sort(list.begin(), list.end(),
                [](const auto& a, const auto& b) { return a.last_event_ms < b.last_event_ms; });
    if (body.value("descending", false)) std::reverse(list.begin(), list.end());
    json out = {{"logStreams", json::array()}};
    const auto limit = body.value("limit", 50);
    if (limit < 1 || limit > 50)
      return err(make_error(Errc::kInvalidParameter,
                            "1 validation error detected: Value at 'limit' failed to satisfy "
                            "constraint: Member must have value between 1 and 50"));
    for (const auto& s : list) {
      if (static_cast<int>(out["logStreams"].size()) >= limit) break;
      out["logStreams"].push_back({{"logStreamName", s.name},
                                   {"firstEventTimestamp", s.first_event_ms},
                                   {"lastEventTimestamp", s.last_event_ms},
                                   {"lastIngestionTime", s.last_event_ms},
                                   {"storedBytes", s.stored_bytes}});
    }
    return reply(out);
  }
  // CloudWatch's bounds; a query holds at most this many events in memory.
  const auto lim = body.find("limit");
  const std::int64_t limit = lim == body.end()          ? 10000
                             : lim->is_number_integer() ? lim->get<std::int64_t>()
                                                        : 0;
  if (limit < 1 || limit > 10000)
    return err(make_error(Errc::kInvalidParameter, "limit must be between 1 and 10000"));
  logs::FilterQuery q;
  q.group = group;
  q.limit = static_cast<std::size_t>(limit);
  q.start_ms = body.value("startTime", std::int64_t{0});
  q.end_ms = body.value("endTime", std::int64_t{0});
  q.next_token = body.value("nextToken", "");
  if (op == "GetLogEvents") {
    const auto stream = body.value("logStreamName", "");
    if (stream.empty())
      return err(make_error(Errc::kInvalidParameter, "logStreamName is required"));
    q.streams = {stream};
    q.from_head = body.value("startFromHead", false);
    if (q.next_token.size() >= 2 && (q.next_token[0] == 'f' || q.next_token[0] == 'b') &&
        q.next_token[1] == '/')
      q.next_token = q.next_token.substr(2);
    auto r = deps_.logs.filter(q);
    if (!r) return err(r.error());
    json out = {{"events", json::array()}};
    for (const auto& e : r->events) out["events"].push_back(event_json(e, false));
    // The forward token follows the last event returned; with none, CloudWatch returns the
    // token it was given, so a reader polling at the end of a stream sees each event once.
    const auto tok =
        !r->last_cursor.empty() ? r->last_cursor : (q.next_token.empty() ? "0" : q.next_token);
    out["nextForwardToken"] = "f/" + tok;
    out["nextBackwardToken"] = "b/0";
    return reply(out);
  }
  if (op == "FilterLogEvents") {
    if (auto names = body.find("logStreamNames"); names != body.end() && names->is_array())
      for (const auto& n : *names)
        if (n.is_string()) q.streams.push_back(n.get<std::string>());
    q.stream_prefix = body.value("logStreamNamePrefix", "");
    q.pattern = body.value("filterPattern", "");
    auto r = deps_.logs.filter(q);
    if (!r) return err(r.error());
    json out = {{"events", json::array()}, {"searchedLogStreams", json::array()}};
    for (const auto& e : r->events) out["events"].push_back(event_json(e, true));
    if (!r->next_token.empty()) out["nextToken"] = r->next_token;
    return reply(out);
  }
  return err(make_error(Errc::kInvalidParameter, "Unsupported CloudWatch Logs operation: " + op));
}

}  // namespace lambent::api
