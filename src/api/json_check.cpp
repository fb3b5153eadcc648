#include "api/json_check.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstring>

namespace lambent::api {

namespace {

constexpr int kMaxDepth = 512;

class Checker {
 public:
  explicit Checker(std::string_view s, std::size_t min_plain = 0,
                   std::vector<TextSpan>* plain = nullptr)
      : s_(s), min_plain_(min_plain), plain_(plain) {}

  std::string run() {
    skip_ws();
    if (!value(0)) return error_;
    skip_ws();
    if (i_ != s_.size()) return unexpected("after the JSON value");
    return {};
  }

 private:
  std::string unexpected(std::string_view where = {}) {
    if (i_ >= s_.size()) return fmt::format("Unexpected end-of-input at offset {}", i_);
    const auto c = static_cast<unsigned char>(s_[i_]);
    return fmt::format("Unexpected character ('{}' (code {})) at offset {}{}{}",
                       c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : "?", c, i_,
                       where.empty() ? "" : " ", where);
  }
  bool failed(std::string msg) {
    error_ = std::move(msg);
    return false;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return failed(unexpected());
    i_ += word.size();
    return true;
  }
  // Advances to the next byte that ends or escapes a string or is a control character (or
  // to the last 7 bytes), 8 bytes at a time: the check is the Invoke path's only per-byte work,
  // and payloads are mostly string contents. Per byte of a 64-bit word, (x - 0x01..) & ~x has
  // the high bit set where x's byte is 0, and (w - 0x20..) & ~w where w's byte is below 0x20;
  // wrongly set bits only appear above a rightly set one, so the lowest set bit is exact.
  void skip_plain() {
    constexpr std::uint64_t kOnes = 0x0101010101010101ull;
    constexpr std::uint64_t kHighs = 0x8080808080808080ull;
    while (s_.size() - i_ >= 8) {
      std::uint64_t w;
      std::memcpy(&w, s_.data() + i_, sizeof(w));
      const std::uint64_t quote = w ^ (kOnes * '"');
      const std::uint64_t backslash = w ^ (kOnes * '\\');
      const std::uint64_t special = (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) |
                                     ((backslash - kOnes) & ~backslash)) &
                                    kHighs;
      if (special == 0) {
        i_ += 8;
        continue;
      }
      // Memory order: the first byte is the lowest on a little-endian machine.
      if constexpr (std::endian::native == std::endian::little)
        i_ += static_cast<std::size_t>(std::countr_zero(special)) / 8;
      return;
    }
  }
  // All bytes of s_[begin, end) below 0x80, 8 at a time.
  bool ascii(std::size_t begin, std::size_t end) const {
    constexpr std::uint64_t kHighs = 0x8080808080808080ull;
    std::uint64_t any = 0;
    for (; end - begin >= 8; begin += 8) {
      std::uint64_t w;
      std::memcpy(&w, s_.data() + begin, sizeof(w));
      any |= w;
    }
    for (; begin < end; ++begin) any |= static_cast<unsigned char>(s_[begin]);
    return (any & kHighs) == 0;
  }
  bool string(bool is_value = false) {
    ++i_;  // opening quote
    const std::size_t begin = i_;
    bool escaped = false;
    for (skip_plain(); i_ < s_.size(); skip_plain()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        if (plain_ != nullptr && is_value && !escaped && i_ - begin >= min_plain_ &&
            ascii(begin, i_)) {
          plain_->push_back({begin, i_});
        }
        ++i_;
        return true;
      }
      if (c < 0x20)
        return failed(unexpected("inside a string (control characters must be escaped)"));
      if (c == '\\') {
        escaped = true;
        ++i_;
        if (i_ >= s_.size()) break;
        const char e = s_[i_];
        if (e == 'u') {
          for (int k = 1; k <= 4; ++k) {
            if (i_ + k >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) {
              i_ += k;
              return failed(unexpected("in a \\u escape"));
            }
          }
          i_ += 4;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return failed(unexpected("(bad escape)"));
        }
      }
      ++i_;
    }
    return failed(fmt::format("Unexpected end-of-input in a string at offset {}", i_));
  }
  bool digits() {
    const auto start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start || failed(unexpected("(expected a digit)"));
  }
  bool number() {
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool value(int depth) {
    if (depth > kMaxDepth) return failed("JSON nested too deeply");
    if (i_ >= s_.size()) return failed(unexpected());
    switch (s_[i_]) {
      case '{': {
        ++i_;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        for (;;) {
          skip_ws();
          if (i_ >= s_.size() || s_[i_] != '"')
            return failed(unexpected("(expected a field name)"));
          if (!string()) return false;
          skip_ws();
          if (i_ >= s_.size() || s_[i_] != ':') return failed(unexpected("(expected ':')"));
          ++i_;
          skip_ws();
          if (!value(depth + 1)) return false;
          skip_ws();
          if (i_ < s_.size() && s_[i_] == ',') {
            ++i_;
            continue;
          }
          if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
          return failed(unexpected("(expected ',' or '}')"));
        }
      }
      case '[': {
        ++i_;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        for (;;) {
          skip_ws();
          if (!value(depth + 1)) return false;
          skip_ws();
          if (i_ < s_.size() && s_[i_] == ',') {
            ++i_;
            continue;
          }
          if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
          return failed(unexpected("(expected ',' or ']')"));
        }
      }
      case '"':
        return string(/*is_value=*/true);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        if (s_[i_] == '-' || (s_[i_] >= '0' && s_[i_] <= '9')) return number();
        return failed(unexpected());
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;
  std::size_t min_plain_;
  std::vector<TextSpan>* plain_;
};

}  // namespace

std::string check_json(std::string_view text) {
  return Checker(text).run();
}

std::string check_json(std::string_view text, std::size_t min_bytes,
                       std::vector<TextSpan>& plain_strings) {
  return Checker(text, min_bytes, &plain_strings).run();
}

}  // namespace lambent::api
