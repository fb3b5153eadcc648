// core/files.hpp — small filesystem helpers with Result errors.
#pragma once

#include <string>

#include "core/result.hpp"

namespace lambent {

Result<std::string> read_file(const std::string& path);
// Writes via a temporary file + fsync + rename, so readers never see a partial file.
Result<void> write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);
Result<void> make_dirs(const std::string& path, int mode = 0755);
// rm -rf; missing path is success.
Result<void> remove_tree(const std::string& path);

}  // namespace lambent
