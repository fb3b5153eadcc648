#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "artifacts/artifacts.hpp"
#include "core/fd.hpp"

namespace lambent::artifacts {
namespace {

// 2000-01-01T00:00:00Z. Zip stores local DOS time, which cannot go below 1980 in any
// time zone; a fixed stamp keeps the bytes (and so CodeSha256) stable across deploys.
constexpr time_t kFixedMtime = 946684800;

struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t append_to_string(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

Error archive_error(archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return make_error(Errc::kIo, fmt::format("{}: {}", what, msg ? msg : "libarchive error"));
}

class DirZipper {
 public:
  explicit DirZipper(archive* a) : a_(a) {}

  // `dir_fd` is the open folder whose relative name in the zip is `prefix`.
  Result<void> add_folder(int dir_fd, const std::string& prefix, const std::string& shown) {
    UniqueFd listing_fd(::dup(dir_fd));
    if (!listing_fd) return fail(sys_error("listing " + shown, errno));
    std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(listing_fd.get()), &::closedir);
    if (!listing) return fail(sys_error("listing " + shown, errno));
    listing_fd.release();  // owned by the DIR now
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* d = ::readdir(listing.get())) {
      const std::string_view name = d->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) return fail(sys_error("listing " + shown, errno));
    std::sort(names.begin(), names.end());

    for (const auto& name : names) {
      const std::string rel = prefix + name;
      const std::string path = shown + "/" + name;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail(sys_error("stat " + path, errno));
      }
      if (S_ISDIR(st.st_mode)) {
        LAMBENT_TRY(write_header(rel + "/", AE_IFDIR, st.st_mode, 0, nullptr));
        UniqueFd sub(
            ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) return fail(sys_error("opening " + path, errno));
        LAMBENT_TRY(add_folder(sub.get(), rel + "/", path));
      } else if (S_ISLNK(st.st_mode)) {
        std::array<char, 4096> target{};
        const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size() - 1);
        if (n < 0) return fail(sys_error("reading link " + path, errno));
        LAMBENT_TRY(write_header(rel, AE_IFLNK, 0777, 0, target.data()));
      } else if (S_ISREG(st.st_mode)) {
        LAMBENT_TRY(add_file(dir_fd, name, rel, path, st));
      } else {
        return fail(Errc::kInvalidParameter,
                    fmt::format("cannot zip {}: not a file, folder or symlink", path));
      }
    }
    return {};
  }

 private:
  Result<void> write_header(const std::string& rel, unsigned type, mode_t mode, std::int64_t size,
                            const char* link_target) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), mode & 0777);
    archive_entry_set_size(e.get(), size);
    archive_entry_set_mtime(e.get(), kFixedMtime, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    if (link_target != nullptr) archive_entry_set_symlink(e.get(), link_target);
    if (archive_write_header(a_, e.get()) < ARCHIVE_WARN) {
      return fail(archive_error(a_, "zipping " + rel));
    }
    return {};
  }

  Result<void> add_file(int dir_fd, const std::string& name, const std::string& rel,
                        const std::string& path, const struct stat& st) {
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail(sys_error("opening " + path, errno));
    LAMBENT_TRY(write_header(rel, AE_IFREG, st.st_mode, st.st_size, nullptr));
    std::array<char, 64 * 1024> buf;
    std::int64_t total = 0;
    for (;;) {
      const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(sys_error("reading " + path, errno));
      }
      if (n == 0) break;
      total += n;
      if (total > st.st_size) break;
      if (archive_write_data(a_, buf.data(), static_cast<size_t>(n)) < 0) {
        return fail(archive_error(a_, "zipping " + path));
      }
    }
    if (total != st.st_size) {
      return fail(Errc::kIo, fmt::format("{} changed size while being zipped", path));
    }
    return {};
  }

  archive* a_;
};

}  // namespace

Result<std::string> zip_directory(const std::string& dir) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail(sys_error("opening folder " + dir, errno));

  std::string out;
  std::unique_ptr<archive, ArchiveWriteFree> writer(archive_write_new());
  if (!writer) return fail(Errc::kInternal, "archive_write_new failed");
  archive* a = writer.get();
  if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
      // No block padding: trailing zeros after the central directory upset strict readers.
      archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
      archive_write_open(a, &out, nullptr, &append_to_string, nullptr) != ARCHIVE_OK) {
    return fail(archive_error(a, "zipping " + dir));
  }
  DirZipper zipper(a);
  LAMBENT_TRY(zipper.add_folder(root.get(), "", dir));
  if (archive_write_close(a) != ARCHIVE_OK) return fail(archive_error(a, "zipping " + dir));
  return out;
}

}  // namespace lambent::artifacts
