// core/result.hpp — Result<T> = std::expected<T, Error>.
#pragma once

#include <expected>

#include "core/error.hpp"

namespace lambent {

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(Errc code, std::string message, std::string detail = {}) {
  return std::unexpected(make_error(code, std::move(message), std::move(detail)));
}
inline std::unexpected<Error> fail(Error e) {
  return std::unexpected(std::move(e));
}

}  // namespace lambent

// Propagates an error from a Result-returning expression.
#define LAMBENT_TRY(expr)                                                           \
  do {                                                                              \
    auto&& lambent_try_r_ = (expr);                                                 \
    if (!lambent_try_r_) return std::unexpected(std::move(lambent_try_r_.error())); \
  } while (0)
