// artifacts/artifacts.hpp — deployment packages: content-addressed zip blobs and
// their safely unpacked trees.
// Owns: <data>/blobs/<sha256hex>.zip and <data>/tasks/<sha256hex>/.
// Never: the store, HTTP, running code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace lambent::artifacts {

struct Limits {
  std::uint64_t max_zipped_bytes = 50ull * 1024 * 1024;  // CodeSizeZipped (direct upload)
  std::uint64_t max_unpacked_bytes = 262144000;          // CodeSizeUnzipped (250 MB)
  std::uint64_t max_entries = 100000;
};

struct Package {
  std::string sha256_hex;     // blob key
  std::string sha256_base64;  // CodeSha256 as Lambda reports it
  std::uint64_t size = 0;     // zipped bytes (CodeSize)
  std::uint64_t unpacked_size = 0;
  std::string task_root;  // absolute path of the unpacked tree
};

// Thread-safe: concurrent put() of the same bytes is idempotent (content-addressed
// names, staging folders under <root>/tmp, rename without replace). Several stores may
// share a root. Errors: kInvalidParameter for rejected input (message starts with
// "Could not unzip uploaded file." or names the size limit), kNotFound for an unknown
// hash, kIo for system failures.
class ArtifactStore {
 public:
  ArtifactStore(std::string root, Limits limits);

  // Validates, stores and unpacks a zip. Rejected (Errc::kInvalidParameter, with
  // the offending entry named) and leaving nothing behind: malformed archives,
  // absolute paths, '..' components, symlinks/hardlinks leaving the package,
  // device files, more than max_unpacked_bytes unpacked or max_entries entries.
  // Executable bits are kept; everything is made world-readable.
  Result<Package> put_zip(std::string_view zip_bytes);

  // Package for an already stored blob (after a restart); unpacks again if the tree is missing.
  Result<Package> get(std::string_view sha256_hex);
  std::string task_root(std::string_view sha256_hex) const;
  Result<std::string> read_zip(std::string_view sha256_hex) const;
  // Deletes the blob and its tree (caller guarantees no function uses it).
  Result<void> remove(std::string_view sha256_hex);

  // Deletes staging folders and half-written blobs left by a crash. Call once at
  // startup, before any put(); not safe while another store on this root is working.
  Result<void> remove_stale_temporaries();

 private:
  struct Staged {
    std::string path;
    std::uint64_t unpacked = 0;
  };
  std::string blob_path(std::string_view sha256_hex) const;
  Result<void> ensure_layout() const;
  // Unpacks into a fresh, synced folder under <root>/tmp; on failure nothing is left.
  Result<Staged> stage(std::string_view zip_bytes) const;
  // Gives the staged tree its final name, or discards it if the name is taken.
  Result<void> publish(const std::string& staging, const std::string& final_dir) const;

  std::string root_;
  Limits limits_;
};

// Zips a folder (for `lambent deploy DIR`): regular files, folders and symlinks
// (stored as links, never followed), keeping permission bits. Deterministic: entries
// sorted by name, fixed timestamps and owners, so the same tree gives the same
// CodeSha256. Other file types are refused (kInvalidParameter).
Result<std::string> zip_directory(const std::string& dir);

}  // namespace lambent::artifacts
