// tests/unit/artifacts/zip_builder.hpp — hand-assembled zip files for unpacker tests.
// Every field is under the test's control, so that archives can lie (declared sizes),
// carry hostile names, or use entry types no well-behaved writer produces.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lambent::artifacts::testing {

struct ZipEntry {
  std::string name;
  std::string data;              // uncompressed content (the target, for symlinks)
  std::uint32_t mode = 0100644;  // st_mode stored in the external attributes
  bool unix_attrs = true;        // false: "made by" MS-DOS, no mode bits at all
  bool deflate = false;
  std::optional<std::uint32_t> declared_size;  // uncompressed size to claim, if lying
};

inline ZipEntry file(std::string name, std::string data, std::uint32_t perm = 0644) {
  return ZipEntry{std::move(name), std::move(data), 0100000 | perm};
}
inline ZipEntry folder(std::string name) {
  return ZipEntry{std::move(name), "", 040755};
}
inline ZipEntry symlink(std::string name, std::string target) {
  return ZipEntry{std::move(name), std::move(target), 0120777};
}

inline std::string raw_deflate(const std::string& in) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));  // zlib's C API
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());  // zlib's C API
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class ZipBuilder {
 public:
  std::string build(const std::vector<ZipEntry>& entries) {
    std::string out;
    std::string central;
    for (const auto& e : entries) {
      const std::string payload = e.deflate ? raw_deflate(e.data) : e.data;
      const auto crc = static_cast<std::uint32_t>(
          crc32(0, reinterpret_cast<const Bytef*>(e.data.data()),  // zlib's C API
                static_cast<uInt>(e.data.size())));
      const std::uint32_t usize =
          e.declared_size.value_or(static_cast<std::uint32_t>(e.data.size()));
      const auto offset = static_cast<std::uint32_t>(out.size());
      const std::uint16_t method = e.deflate ? 8 : 0;

      u32(out, 0x04034b50);
      u16(out, 20);
      u16(out, 0);  // flags
      u16(out, method);
      u16(out, kDosTime);
      u16(out, kDosDate);
      u32(out, crc);
      u32(out, static_cast<std::uint32_t>(payload.size()));
      u32(out, usize);
      u16(out, static_cast<std::uint16_t>(e.name.size()));
      u16(out, 0);
      out += e.name;
      out += payload;

      u32(central, 0x02014b50);
      u16(central, e.unix_attrs ? (3 << 8) | 20 : 20);
      u16(central, 20);
      u16(central, 0);
      u16(central, method);
      u16(central, kDosTime);
      u16(central, kDosDate);
      u32(central, crc);
      u32(central, static_cast<std::uint32_t>(payload.size()));
      u32(central, usize);
      u16(central, static_cast<std::uint16_t>(e.name.size()));
      u16(central, 0);  // extra
      u16(central, 0);  // comment
      u16(central, 0);  // disk
      u16(central, 0);  // internal attributes
      const bool dos_dir = !e.name.empty() && e.name.back() == '/';
      u32(central, e.unix_attrs ? e.mode << 16 : (dos_dir ? 0x10u : 0x20u));
      u32(central, offset);
      central += e.name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    u32(out, 0x06054b50);
    u16(out, 0);
    u16(out, 0);
    u16(out, static_cast<std::uint16_t>(entries.size()));
    u16(out, static_cast<std::uint16_t>(entries.size()));
    u32(out, static_cast<std::uint32_t>(central.size()));
    u32(out, cd_offset);
    u16(out, 0);
    return out;
  }

 private:
  static constexpr std::uint16_t kDosTime = 0;                         // 00:00:00
  static constexpr std::uint16_t kDosDate = (20 << 9) | (1 << 5) | 1;  // 2000-01-01

  static void u16(std::string& s, std::uint32_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>((v >> 8) & 0xff);
  }
  static void u32(std::string& s, std::uint32_t v) {
    u16(s, v & 0xffff);
    u16(s, v >> 16);
  }
};

inline std::string make_zip(const std::vector<ZipEntry>& entries) {
  return ZipBuilder().build(entries);
}

}  // namespace lambent::artifacts::testing
