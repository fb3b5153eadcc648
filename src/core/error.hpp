// core/error.hpp — the one error value used across component boundaries.
// Owns: error codes, messages a person can act on, errno context.
// Never: HTTP status codes or wire names (api/ maps codes to Lambda errors).
#pragma once

#include <string>
#include <utility>

namespace lambent {

// What went wrong, in terms the caller can act on. api/ maps each code to the
// Lambda exception name and status in exactly one place (api/errors.cpp).
enum class Errc {
  kInvalidParameter,       // a parameter's value is unacceptable (InvalidParameterValue)
  kValidation,             // a parameter breaks a length/range/pattern constraint
  kInvalidRequestContent,  // the request body could not be parsed
  kRequestTooLarge,        // payload over the limit
  kUnsupportedMediaType,   // body content type not acceptable
  kNotFound,               // unknown function, version, alias, …
  kConflict,               // already exists / state conflict
  kPreconditionFailed,     // RevisionId mismatch
  kThrottled,              // concurrency limit reached (detail = Reason)
  kCodeStorageExceeded,    // account code storage full
  kInvalidZip,             // package unusable
  kUnauthorized,           // unknown access key / missing signature
  kSignatureMismatch,      // forged or expired signature
  kUnavailable,            // shutting down, or a dependency is gone
  kTimeout,                // a bounded wait ran out
  kIo,                     // a system call failed (errno set)
  kInternal,               // a bug or an impossible state
};

struct Error {
  Errc code = Errc::kInternal;
  std::string message;  // full sentence with context, e.g. "unpacking package sha256:ab…: …"
  int sys_errno = 0;    // errno of the failed system call, 0 if none
  std::string detail;   // machine-readable extra (throttle Reason, …); may be empty

  // Prefixes context to the message: "unpacking package X: <message>".
  Error&& with_context(std::string_view context) && {
    message = std::string(context) + ": " + message;
    return std::move(*this);
  }
};

inline Error make_error(Errc code, std::string message, std::string detail = {}) {
  return Error{code, std::move(message), 0, std::move(detail)};
}

// Error for a failed system call: message + strerror(errno).
Error sys_error(std::string what, int err);

}  // namespace lambent
