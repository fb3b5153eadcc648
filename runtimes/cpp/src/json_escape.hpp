// json_escape.hpp — the error documents the runtime posts, without a JSON library.
#pragma once

#include <string>
#include <string_view>

namespace lambent::runtime::detail {

// Appends `text` as a JSON string literal (with quotes). Bytes that are not valid UTF-8 become
// U+FFFD, so an exception message with arbitrary bytes still yields a document every JSON
// parser accepts.
void append_json_string(std::string& out, std::string_view text);

// out = {"errorMessage":…,"errorType":…,"stackTrace":[]} — the aws-lambda-cpp shape (§3.3).
void build_error_body(std::string& out, std::string_view error_type,
                      std::string_view error_message);

}  // namespace lambent::runtime::detail
