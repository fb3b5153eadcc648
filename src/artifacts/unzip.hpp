// artifacts/unzip.hpp — the safe unpacker behind ArtifactStore (internal to artifacts/).
// Owns: turning untrusted zip bytes into a tree below one directory fd.
// Never: naming, storing or removing packages (artifact_store.cpp does that).
#pragma once

#include <cstdint>
#include <string_view>

#include "artifacts/artifacts.hpp"
#include "core/result.hpp"

namespace lambent::artifacts {

// Unpacks `zip_bytes` into the empty directory `dest_dir_fd` and returns the number of
// file bytes actually written (the unpacked size). Only the zip format is accepted.
//
// Contract: nothing is ever created outside dest_dir_fd — no path is resolved through a
// symlink and every parent folder is one this call created. Symlinks are kept only if
// their target stays inside the tree. Folders get 0755, files 0755 if any x bit is set
// in the entry's mode, else 0644.
//
// On error (Errc::kInvalidParameter for bad input, kIo for system failures) the
// directory may hold a partial tree: the caller owns it and must remove it.
// Thread-compatible; independent calls may run concurrently.
Result<std::uint64_t> unpack_zip(std::string_view zip_bytes, int dest_dir_fd, const Limits& limits);

// The message prefix Lambda uses for packages it cannot unzip.
inline constexpr std::string_view kBadZipPrefix = "Could not unzip uploaded file.";

}  // namespace lambent::artifacts
