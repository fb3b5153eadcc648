// core/credentials.hpp — the installation's access key pair, stored as an
// AWS shared-credentials file (<data>/credentials, mode 0600), so it can also
// be used as AWS_SHARED_CREDENTIALS_FILE.
#pragma once

#include <string>

#include "core/result.hpp"

namespace lambent {

struct AccessKey {
  std::string access_key_id;
  std::string secret_access_key;
};

// Errc::kNotFound when the file does not exist; Errc::kInvalidParameter when it
// holds no aws_access_key_id / aws_secret_access_key pair.
Result<AccessKey> read_credentials_file(const std::string& path);
// Creates a new random pair and writes it (0600).
Result<AccessKey> create_credentials_file(const std::string& path);

}  // namespace lambent
