#include "artifacts/unzip.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/fd.hpp"

namespace lambent::artifacts {
namespace {

// Bounds that keep every unpacked path usable by path-based tools (remove_all, the
// sandbox's mounts) under PATH_MAX, whatever the store root is.
constexpr std::size_t kMaxPathBytes = 3072;
constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kMaxLinkTargetBytes = 4095;
constexpr std::size_t kMaxShownNameBytes = 200;

enum class Kind { kDir, kFile, kSymlink };

struct Node {
  Kind kind = Kind::kDir;
  std::uint64_t size = 0;  // bytes written, for files
};

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadFree>;

// Entry names come from the uploader and end up in API replies and logs: escape
// control bytes and cap the length.
std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, kMaxShownNameBytes)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f || c == '\'' || c == '\\') {
      out += fmt::format("\\x{:02x}", b);
    } else {
      out += c;
    }
  }
  if (s.size() > kMaxShownNameBytes) out += "...";
  return out;
}

Error bad_zip(std::string_view reason) {
  return make_error(Errc::kInvalidParameter, fmt::format("{} {}", kBadZipPrefix, reason));
}

Error bad_entry(std::string_view entry, std::string_view reason) {
  return bad_zip(fmt::format("Entry '{}' {}.", printable(entry), reason));
}

Error too_big(const Limits& limits) {
  // Lambda's own wording for CodeSizeUnzipped.
  return make_error(
      Errc::kInvalidParameter,
      fmt::format("Unzipped size must be smaller than {} bytes", limits.max_unpacked_bytes));
}

// Splits an entry name into the components below the package root. "." and empty
// components are dropped; an empty result means the root itself.
Result<std::vector<std::string>> split_entry_path(std::string_view path) {
  if (path.empty()) return fail(bad_entry(path, "has an empty name"));
  if (path.front() == '/') return fail(bad_entry(path, "is an absolute path"));
  if (path.size() > kMaxPathBytes) {
    return fail(bad_entry(path, fmt::format("has a name longer than {} bytes", kMaxPathBytes)));
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") return fail(bad_entry(path, "escapes the package root ('..' component)"));
    if (part.size() > kMaxNameBytes) {
      return fail(
          bad_entry(path, fmt::format("has a component longer than {} bytes", kMaxNameBytes)));
    }
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

// A symlink may only point down into the package, or up through real folders that
// this unpacker created. Once a target has named a component, a later '..' is refused:
// that component might itself be a symlink, and "link/.." is then not "." for the
// kernel. With this rule every link resolves inside the tree, by induction over links.
Result<void> check_symlink_target(std::string_view entry, std::string_view target,
                                  std::size_t link_depth) {
  if (target.empty()) return fail(bad_entry(entry, "is a symlink with an empty target"));
  if (target.size() > kMaxLinkTargetBytes) {
    return fail(bad_entry(entry, "is a symlink with a target that is too long"));
  }
  if (target.front() == '/') {
    return fail(
        bad_entry(entry, fmt::format("is a symlink to the absolute path '{}'", printable(target))));
  }
  std::size_t depth = link_depth;
  bool named = false;
  std::size_t start = 0;
  while (start <= target.size()) {
    std::size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    const std::string_view part = target.substr(start, end - start);
    if (part == "..") {
      if (named) {
        return fail(
            bad_entry(entry, fmt::format("is a symlink whose target '{}' has '..' after a name",
                                         printable(target))));
      }
      if (depth == 0) {
        return fail(bad_entry(entry, fmt::format("is a symlink to '{}', which escapes the "
                                                 "package root",
                                                 printable(target))));
      }
      --depth;
    } else if (!part.empty() && part != ".") {
      named = true;
    }
    start = end + 1;
  }
  return {};
}

class Unpacker {
 public:
  Unpacker(int root_fd, const Limits& limits) : root_fd_(root_fd), limits_(limits) {}

  Result<std::uint64_t> run(std::string_view zip) {
    ArchiveReader reader(archive_read_new());
    if (!reader) return fail(Errc::kInternal, "archive_read_new failed");
    archive* a = reader.get();
    // Only the seekable zip reader: it trusts the central directory, so a truncated
    // file (no end-of-central-directory record) is refused instead of half-read by the
    // streaming reader, and no other archive format is ever recognised.
    archive_read_support_format_zip_seekable(a);
    if (archive_read_open_memory(a, zip.data(), zip.size()) != ARCHIVE_OK) {
      return fail(bad_zip(archive_error_string(a) ? archive_error_string(a) : "unreadable"));
    }
    std::uint64_t entries = 0;
    for (;;) {
      archive_entry* entry = nullptr;
      const int r = archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) break;
      // ARCHIVE_WARN is a name-charset conversion note; the raw name is still checked.
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail(archive_failure(a));
      if (++entries > limits_.max_entries) {
        return fail(
            bad_zip(fmt::format("The package has more than {} entries.", limits_.max_entries)));
      }
      LAMBENT_TRY(extract(a, entry));
    }
    return unpacked_;
  }

 private:
  static Error archive_failure(archive* a) {
    const char* msg = archive_error_string(a);
    std::string reason = msg ? msg : "unreadable archive";
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    if (!reason.empty() && reason.back() != '.') reason += '.';
    return bad_zip(reason);
  }

  Result<void> extract(archive* a, archive_entry* entry) {
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(entry);
    if (raw_name == nullptr) return fail(bad_zip("An entry has no name."));
    const std::string name = raw_name;

    if (archive_entry_hardlink(entry) != nullptr) {
      return fail(bad_entry(name, "is a hard link"));
    }
    auto parts = split_entry_path(name);
    if (!parts) return fail(std::move(parts.error()));

    Kind kind;
    switch (archive_entry_filetype(entry)) {
      case AE_IFREG:
        kind = Kind::kFile;
        break;
      case AE_IFDIR:
        kind = Kind::kDir;
        break;
      case AE_IFLNK:
        kind = Kind::kSymlink;
        break;
      default:
        return fail(bad_entry(name, fmt::format("is not a file, folder or symlink (type {:o})",
                                                archive_entry_filetype(entry))));
    }
    if (parts->empty()) {
      if (kind == Kind::kDir) return {};  // "./": the root, which already exists
      return fail(bad_entry(name, "has no file name"));
    }

    auto parent = open_parent(*parts, name);
    if (!parent) return fail(std::move(parent.error()));
    const std::string key = join(*parts, parts->size());
    const std::string& leaf = parts->back();
    LAMBENT_TRY(make_room(*parent, leaf, key, kind, name));

    switch (kind) {
      case Kind::kDir: {
        auto fd = make_dir(*parent, leaf, key, name);
        if (!fd) return fail(std::move(fd.error()));
        return {};
      }
      case Kind::kFile:
        return write_file(a, entry, *parent, leaf, key, name);
      case Kind::kSymlink: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr) target = archive_entry_symlink_utf8(entry);
        if (target == nullptr) return fail(bad_entry(name, "is a symlink without a target"));
        LAMBENT_TRY(check_symlink_target(name, target, parts->size() - 1));
        if (::symlinkat(target, *parent, leaf.c_str()) != 0) {
          return fail(sys_error("creating symlink " + printable(name), errno));
        }
        nodes_[key] = Node{Kind::kSymlink, 0};
        return {};
      }
    }
    return fail(Errc::kInternal, "unreachable entry kind");
  }

  // Returns the fd of the folder that will hold the last component, creating the
  // folders on the way. Each one must be a folder this unpacker made: the map is the
  // authority, O_NOFOLLOW|O_DIRECTORY the second line of defence.
  Result<int> open_parent(const std::vector<std::string>& parts, std::string_view name) {
    const std::size_t depth = parts.size() - 1;
    const std::string parent_key = join(parts, depth);
    if (depth == 0) return root_fd_;
    if (cached_fd_ && cached_key_ == parent_key) return cached_fd_.get();

    UniqueFd current;
    for (std::size_t i = 0; i < depth; ++i) {
      const int at = i == 0 ? root_fd_ : current.get();
      const std::string key = join(parts, i + 1);
      const auto it = nodes_.find(key);
      UniqueFd next;
      if (it == nodes_.end()) {
        auto made = make_dir(at, parts[i], key, name);
        if (!made) return fail(std::move(made.error()));
        next = std::move(*made);
      } else if (it->second.kind == Kind::kSymlink) {
        return fail(
            bad_entry(name, fmt::format("passes through the symlink '{}'", printable(key))));
      } else if (it->second.kind == Kind::kFile) {
        return fail(bad_entry(name, fmt::format("uses the file '{}' as a folder", printable(key))));
      } else {
        next = UniqueFd(
            ::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) return fail(sys_error("opening folder " + printable(key), errno));
      }
      current = std::move(next);
    }
    cached_key_ = parent_key;
    cached_fd_ = std::move(current);
    return cached_fd_.get();
  }

  // Folders keep one type; a later file or symlink with the same name replaces an
  // earlier one (last entry wins, as with `unzip -o`).
  Result<void> make_room(int parent, const std::string& leaf, const std::string& key, Kind kind,
                         std::string_view name) {
    const auto it = nodes_.find(key);
    if (it == nodes_.end()) return {};
    if (it->second.kind == Kind::kDir) {
      if (kind == Kind::kDir) return {};
      return fail(bad_entry(name, "would replace a folder"));
    }
    if (kind == Kind::kDir) return fail(bad_entry(name, "would replace a file with a folder"));
    if (::unlinkat(parent, leaf.c_str(), 0) != 0) {
      return fail(sys_error("replacing " + printable(name), errno));
    }
    unpacked_ -= it->second.size;
    nodes_.erase(it);
    return {};
  }

  Result<UniqueFd> make_dir(int parent, const std::string& leaf, const std::string& key,
                            std::string_view name) {
    if (nodes_.contains(key)) {
      UniqueFd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return fail(sys_error("opening folder " + printable(name), errno));
      return fd;
    }
    if (::mkdirat(parent, leaf.c_str(), 0700) != 0) {
      return fail(sys_error("creating folder " + printable(key), errno));
    }
    nodes_[key] = Node{Kind::kDir, 0};
    UniqueFd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail(sys_error("opening folder " + printable(key), errno));
    // Explicit mode: the umask must not decide what the sandbox user may read.
    if (::fchmod(fd.get(), 0755) != 0) return fail(sys_error("chmod " + printable(key), errno));
    return fd;
  }

  Result<void> write_file(archive* a, archive_entry* entry, int parent, const std::string& leaf,
                          const std::string& key, std::string_view name) {
    // Early refusal on the declared size; the real guard is the count below, since
    // the header can lie.
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0 &&
        static_cast<std::uint64_t>(archive_entry_size(entry)) >
            limits_.max_unpacked_bytes - unpacked_) {
      return fail(too_big(limits_));
    }
    UniqueFd fd(
        ::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return fail(sys_error("creating file " + printable(name), errno));
    Node& node = nodes_[key];
    node = Node{Kind::kFile, 0};

    std::array<char, 64 * 1024> buf;
    for (;;) {
      const la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) return fail(archive_failure(a));
      const auto count = static_cast<std::uint64_t>(n);
      if (count > limits_.max_unpacked_bytes - unpacked_) return fail(too_big(limits_));
      unpacked_ += count;
      node.size += count;
      std::size_t off = 0;
      while (off < count) {
        const ssize_t w = ::write(fd.get(), buf.data() + off, count - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          return fail(sys_error("writing " + printable(name), errno));
        }
        off += static_cast<std::size_t>(w);
      }
    }
    const bool executable = (archive_entry_perm(entry) & 0111) != 0;
    if (::fchmod(fd.get(), executable ? 0755 : 0644) != 0) {
      return fail(sys_error("chmod " + printable(name), errno));
    }
    return {};
  }

  int root_fd_;
  const Limits& limits_;
  std::map<std::string, Node> nodes_;  // relative path -> what this unpacker put there
  std::uint64_t unpacked_ = 0;
  // Zips usually list a folder's files together: keep the last parent folder open.
  std::string cached_key_;
  UniqueFd cached_fd_;
};

}  // namespace

Result<std::uint64_t> unpack_zip(std::string_view zip_bytes, int dest_dir_fd,
                                 const Limits& limits) {
  if (zip_bytes.empty()) return fail(bad_zip("The package is empty."));
  Unpacker unpacker(dest_dir_fd, limits);
  return unpacker.run(zip_bytes);
}

}  // namespace lambent::artifacts
