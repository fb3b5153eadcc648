// api/json_check.hpp — validates that bytes are one JSON value (RFC 8259),
// without building anything: Invoke must reject non-JSON payloads
// (InvalidRequestContentException) yet never parse them into a DOM.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lambent::api {

// Returns an empty string when `text` is valid JSON, else a short reason
// ("Unexpected character ('x' (code 120)) at offset 3").
std::string check_json(std::string_view text);

// [begin, end) of a string value's contents in the JSON text.
struct TextSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
};

// check_json, which also lists in `plain_strings` the string values of at least `min_bytes`
// whose text is their value: ASCII without escapes, such as base64.
std::string check_json(std::string_view text, std::size_t min_bytes,
                       std::vector<TextSpan>& plain_strings);

}  // namespace lambent::api
