#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

#include "artifacts/artifacts.hpp"
#include "artifacts/unzip.hpp"
#include "core/encoding.hpp"
#include "core/fd.hpp"
#include "core/files.hpp"
#include "core/ids.hpp"

namespace lambent::artifacts {
namespace {

namespace fs = std::filesystem;

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<void> check_key(std::string_view sha256_hex) {
  if (is_sha256_hex(sha256_hex)) return {};
  return fail(Errc::kInvalidParameter,
              fmt::format("'{}' is not a lowercase hex SHA-256", sha256_hex.substr(0, 80)));
}

std::string base64_of_hex(std::string_view hex) {
  std::string raw;
  raw.reserve(hex.size() / 2);
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw += static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1]));
  }
  return base64_encode(raw);
}

bool is_dir_nofollow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Sum of regular file sizes: what unpack_zip reports for the same tree.
Result<std::uint64_t> tree_size(const std::string& dir) {
  std::error_code ec;
  std::uint64_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_regular_file(status)) {
      const auto size = it->file_size(ec);
      if (ec) break;
      total += size;
    }
  }
  if (ec) return fail(sys_error("measuring " + dir, ec.value()));
  return total;
}

Result<void> fsync_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) return fail(sys_error("syncing " + path, errno));
  return {};
}

}  // namespace

ArtifactStore::ArtifactStore(std::string root, Limits limits)
    : root_(fs::absolute(root).lexically_normal().string()), limits_(limits) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string ArtifactStore::task_root(std::string_view sha256_hex) const {
  return root_ + "/tasks/" + std::string(sha256_hex);
}

std::string ArtifactStore::blob_path(std::string_view sha256_hex) const {
  return root_ + "/blobs/" + std::string(sha256_hex) + ".zip";
}

Result<void> ArtifactStore::ensure_layout() const {
  for (const char* sub : {"/blobs", "/tasks", "/tmp"}) {
    LAMBENT_TRY(make_dirs(root_ + sub, 0755));
  }
  return {};
}

Result<void> ArtifactStore::remove_stale_temporaries() {
  LAMBENT_TRY(ensure_layout());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/tmp", ec)) {
    LAMBENT_TRY(remove_tree(e.path().string()));
  }
  if (ec) return fail(sys_error("listing " + root_ + "/tmp", ec.value()));
  for (const auto& e : fs::directory_iterator(root_ + "/blobs", ec)) {
    if (e.path().filename().string().find(".tmp-") != std::string::npos) {
      LAMBENT_TRY(remove_tree(e.path().string()));
    }
  }
  if (ec) return fail(sys_error("listing " + root_ + "/blobs", ec.value()));
  return {};
}

Result<ArtifactStore::Staged> ArtifactStore::stage(std::string_view zip_bytes) const {
  Staged staged{root_ + "/tmp/" + random_hex(16), 0};
  if (::mkdir(staged.path.c_str(), 0700) != 0) {
    return fail(sys_error("creating " + staged.path, errno));
  }
  UniqueFd dir(::open(staged.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  auto discard = [&](Error e) -> Result<Staged> {
    dir.reset();
    (void)remove_tree(staged.path);
    return fail(std::move(e));
  };
  if (!dir) return discard(sys_error("opening " + staged.path, errno));
  auto unpacked = unpack_zip(zip_bytes, dir.get(), limits_);
  if (!unpacked) return discard(std::move(unpacked.error()));
  // The tree must be on disk before its name appears: after a crash a visible tree is
  // a complete tree. syncfs is one call for however many files the package has.
  if (::fchmod(dir.get(), 0755) != 0 || ::syncfs(dir.get()) != 0) {
    return discard(sys_error("committing " + staged.path, errno));
  }
  staged.unpacked = *unpacked;
  return staged;
}

Result<void> ArtifactStore::publish(const std::string& staging,
                                    const std::string& final_dir) const {
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    (void)remove_tree(staging);
    // A concurrent put of the same bytes won the race: its tree is identical.
    if (err != EEXIST && err != ENOTEMPTY) return fail(sys_error("renaming to " + final_dir, err));
  }
  return fsync_dir(root_ + "/tasks");
}

Result<Package> ArtifactStore::put_zip(std::string_view zip_bytes) {
  if (zip_bytes.empty()) {
    return fail(Errc::kInvalidParameter, fmt::format("{} The package is empty.", kBadZipPrefix));
  }
  if (zip_bytes.size() > limits_.max_zipped_bytes) {
    return fail(Errc::kInvalidParameter,
                fmt::format("Zipped size must be smaller than {} bytes", limits_.max_zipped_bytes));
  }
  const Sha256Digest digest = sha256(zip_bytes);
  Package pkg;
  pkg.sha256_hex = to_hex(digest);
  pkg.sha256_base64 = base64_encode(as_bytes(digest));
  pkg.size = zip_bytes.size();
  pkg.task_root = task_root(pkg.sha256_hex);
  LAMBENT_TRY(ensure_layout());

  const std::string blob = blob_path(pkg.sha256_hex);
  if (is_dir_nofollow(pkg.task_root) && ::access(blob.c_str(), F_OK) == 0) {
    auto size = tree_size(pkg.task_root);
    if (!size) return fail(std::move(size.error()));
    pkg.unpacked_size = *size;
    return pkg;
  }
  // Validate (by unpacking) before the blob exists, so a rejected upload leaves
  // nothing; but write the blob before the tree gets its name, so that a visible tree
  // always has its blob.
  auto staged = stage(zip_bytes);
  if (!staged) return fail(std::move(staged.error()));
  if (::access(blob.c_str(), F_OK) != 0) {
    auto written = write_file_atomic(blob, zip_bytes, 0644);
    if (!written) {
      (void)remove_tree(staged->path);
      return fail(std::move(written.error()));
    }
    LAMBENT_TRY(fsync_dir(root_ + "/blobs"));
  }
  LAMBENT_TRY(publish(staged->path, pkg.task_root));
  pkg.unpacked_size = staged->unpacked;
  return pkg;
}
Result<Package> ArtifactStore::get(std::string_view sha256_hex) {
  LAMBENT_TRY(check_key(sha256_hex));
  Package pkg;
  pkg.sha256_hex = std::string(sha256_hex);
  pkg.sha256_base64 = base64_of_hex(sha256_hex);
  pkg.task_root = task_root(sha256_hex);
  const std::string blob = blob_path(sha256_hex);
  struct stat st {};
  if (::stat(blob.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return fail(Errc::kNotFound, fmt::format("package sha256:{} is not stored", sha256_hex));
    }
    return fail(sys_error("stat " + blob, errno));
  }
  pkg.size = static_cast<std::uint64_t>(st.st_size);
  if (is_dir_nofollow(pkg.task_root)) {
    auto size = tree_size(pkg.task_root);
    if (!size) return fail(std::move(size.error()));
    pkg.unpacked_size = *size;
    return pkg;
  }
  auto bytes = read_file(blob);
  if (!bytes) return fail(std::move(bytes.error()));
  if (to_hex(sha256(*bytes)) != sha256_hex) {
    return fail(Errc::kInternal, fmt::format("blob {} does not match its hash", blob));
  }
  auto repacked = put_zip(*bytes);
  if (!repacked) {
    return fail(
        std::move(repacked.error()).with_context("unpacking package sha256:" + pkg.sha256_hex));
  }
  return repacked;
}

Result<std::string> ArtifactStore::read_zip(std::string_view sha256_hex) const {
  LAMBENT_TRY(check_key(sha256_hex));
  auto bytes = read_file(blob_path(sha256_hex));
  if (!bytes && bytes.error().sys_errno == ENOENT) {
    return fail(Errc::kNotFound, fmt::format("package sha256:{} is not stored", sha256_hex));
  }
  return bytes;
}

Result<void> ArtifactStore::remove(std::string_view sha256_hex) {
  LAMBENT_TRY(check_key(sha256_hex));
  LAMBENT_TRY(ensure_layout());
  const std::string tree = task_root(sha256_hex);
  if (is_dir_nofollow(tree)) {
    // Renamed away first so that the tree vanishes at once rather than file by file.
    const std::string doomed = root_ + "/tmp/" + random_hex(16);
    if (::rename(tree.c_str(), doomed.c_str()) != 0) {
      return fail(sys_error("removing " + tree, errno));
    }
    LAMBENT_TRY(remove_tree(doomed));
  }
  const std::string blob = blob_path(sha256_hex);
  if (::unlink(blob.c_str()) != 0 && errno != ENOENT) {
    return fail(sys_error("removing " + blob, errno));
  }
  return {};
}

}  // namespace lambent::artifacts
