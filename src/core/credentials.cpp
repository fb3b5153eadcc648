#include "core/credentials.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>

#include "core/files.hpp"
#include "core/ids.hpp"

namespace lambent {

namespace {
std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}
}  // namespace

Result<AccessKey> read_credentials_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return fail(Errc::kNotFound, path + " does not exist");
    return fail(std::move(text.error()));
  }
  AccessKey key;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const auto k = trim(line.substr(0, eq));
    if (k == "aws_access_key_id") key.access_key_id = trim(line.substr(eq + 1));
    if (k == "aws_secret_access_key") key.secret_access_key = trim(line.substr(eq + 1));
  }
  if (key.access_key_id.empty() || key.secret_access_key.empty())
    return fail(Errc::kInvalidParameter,
                path + " holds no aws_access_key_id / aws_secret_access_key pair");
  return key;
}

Result<AccessKey> create_credentials_file(const std::string& path) {
  AccessKey key;
  key.access_key_id = "LKIA" + random_token(16);
  for (auto& ch : key.access_key_id)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  key.secret_access_key = random_token(40);
  LAMBENT_TRY(write_file_atomic(
      path,
      fmt::format("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                  key.access_key_id, key.secret_access_key),
      0600));
  return key;
}

}  // namespace lambent
