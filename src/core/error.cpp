#include "core/error.hpp"

#include <cstring>

namespace lambent {

Error sys_error(std::string what, int err) {
  Error e{Errc::kIo, std::move(what), err, {}};
  e.message += ": ";
  e.message += std::strerror(err);
  return e;
}

}  // namespace lambent
