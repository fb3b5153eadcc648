// api/json_check.hpp — validates that bytes are one JSON value (RFC 8259),
// without building anything: Invoke must reject non-JSON payloads
// (InvalidRequestContentException) yet never parse them into a DOM.
#pragma once

#include <string>
#include <string_view>

namespace lambent::api {

// Returns an empty string when `text` is valid JSON, else a short reason
// ("Unexpected character ('x' (code 120)) at offset 3").
std::string check_json(std::string_view text);

}  // namespace lambent::api
