// core/ids.hpp — request ids, environment ids, revision ids.
// Thread-safe: each thread has its own generator seeded from getrandom().
#pragma once

#include <string>

namespace lambent {

std::string new_uuid();           // RFC 4122 version 4, lowercase
std::string random_hex(int n);    // n hex characters
std::string random_token(int n);  // n characters of [A-Za-z0-9] (access keys, secrets)

}  // namespace lambent
