#include "core/ids.hpp"

#include <sys/random.h>

#include <cstdint>

namespace lambent {
namespace {

// xoshiro256** per thread; ids need uniqueness, not secrecy (secrets use random_token).
struct Rng {
  std::uint64_t s[4];
  Rng() {
    while (getrandom(s, sizeof(s), 0) != static_cast<ssize_t>(sizeof(s))) {
    }
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};
thread_local Rng t_rng;
constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string new_uuid() {
  std::uint64_t a = t_rng.next();
  std::uint64_t b = t_rng.next();
  a = (a & ~0xf000ull) | 0x4000ull;        // version 4
  b = (b & ~(3ull << 62)) | (2ull << 62);  // variant 10
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](std::uint64_t v, int nibbles_from, int nibbles_to) {
    for (int i = nibbles_from; i < nibbles_to; ++i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (60 - 4 * i)) & 0xf];
    }
  };
  put(a, 0, 16);
  put(b, 0, 16);
  return out;
}

std::string random_hex(int n) {
  std::string out(n, '0');
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 16 == 0) v = t_rng.next();
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
  return out;
}

std::string random_token(int n) {
  static constexpr char kAlpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(n, 'A');
  unsigned char buf[256];
  for (int i = 0; i < n;) {
    const ssize_t got = getrandom(buf, sizeof(buf), 0);
    for (ssize_t k = 0; k < got && i < n; ++k) {
      if (buf[k] >= 248) continue;  // keep the distribution uniform over 62 symbols
      out[i++] = kAlpha[buf[k] % 62];
    }
  }
  return out;
}

}  // namespace lambent
