// bench/baselines/http_min.hpp — the least HTTP/1.1 a baseline server needs: find the end of a
// request head, read Content-Length, the method and target, and whether the client asked to
// close. Deliberately no validation: the baselines measure the floor of the exchange, not a
// server anyone should expose. Requests with a chunked body are not supported (the load
// generator and the runtime clients always send Content-Length).
#pragma once

#include <cstddef>
#include <string_view>

namespace lambent::bench {

struct RequestHead {
  std::string_view method;
  std::string_view target;
  std::size_t head_size = 0;       // bytes up to and including the blank line
  std::size_t content_length = 0;  // 0 when absent
  bool close = false;              // "Connection: close" was sent
};

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Returns false while the head is incomplete.
inline bool parse_head(std::string_view buf, RequestHead& out) {
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  out = RequestHead{};
  out.head_size = end + 4;
  std::string_view head = buf.substr(0, end);
  auto line_end = head.find("\r\n");
  std::string_view first = head.substr(0, line_end);
  const auto sp1 = first.find(' ');
  const auto sp2 = first.find(' ', sp1 + 1);
  out.method = first.substr(0, sp1);
  out.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  while (line_end != std::string_view::npos) {
    head.remove_prefix(line_end + 2);
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') break;
        n = n * 10 + static_cast<std::size_t>(c - '0');
      }
      out.content_length = n;
    } else if (iequals(name, "connection")) {
      out.close = iequals(value, "close");
    }
  }
  return true;
}

}  // namespace lambent::bench
