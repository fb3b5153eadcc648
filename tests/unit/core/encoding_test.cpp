#include "core/encoding.hpp"

#include <gtest/gtest.h>

namespace lambent {
namespace {

TEST(Encoding, Sha256OfEmptyMatchesKnownVector) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Encoding, IncrementalSha256EqualsOneShot) {
  Sha256 h;
  h.update("{\"a\"");
  h.update(":1}");
  EXPECT_EQ(to_hex(h.finish()), "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
}

TEST(Encoding, HmacMatchesRfc4231Case2) {
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Encoding, Base64RoundTripsEveryPaddingLength) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const auto enc = base64_encode(s);
    const auto dec = base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
}

TEST(Encoding, Base64RejectsMalformedInput) {
  EXPECT_FALSE(base64_decode("abc").has_value());
  EXPECT_FALSE(base64_decode("ab=c").has_value());
  EXPECT_FALSE(base64_decode("a!bc").has_value());
  EXPECT_FALSE(base64_decode("=abc").has_value());
  EXPECT_FALSE(base64_decode("a===").has_value());
  EXPECT_FALSE(base64_decode("Zm9v=m9v").has_value());  // padding only at the end
  EXPECT_FALSE(base64_decode("Zm9vYmF\n").has_value());
  EXPECT_FALSE(base64_decode(std::string("Zm9\0", 4)).has_value());
  EXPECT_FALSE(base64_decode("Zm\xff=").has_value());
}

TEST(Encoding, Base64RoundTripsEveryByteValueAtLength) {
  std::string bytes;
  for (int i = 0; i < 3 * 256 + 2; ++i) bytes += static_cast<char>((i * 37 + i / 256) & 0xff);
  for (std::size_t n : {bytes.size() - 2, bytes.size() - 1, bytes.size()}) {
    const std::string s = bytes.substr(0, n);
    const auto dec = base64_decode(base64_encode(s));
    ASSERT_TRUE(dec.has_value()) << n;
    EXPECT_EQ(*dec, s) << n;
  }
  EXPECT_EQ(*base64_decode("Zg=="), "f");
  EXPECT_EQ(*base64_decode("Zm8="), "fo");
  EXPECT_EQ(*base64_decode("+/+/"), "\xfb\xff\xbf");
}

TEST(Encoding, PercentDecodeHandlesEscapesAndRejectsBadOnes) {
  EXPECT_EQ(*percent_decode("f1%3Aprod"), "f1:prod");
  EXPECT_EQ(*percent_decode("%24LATEST"), "$LATEST");
  EXPECT_FALSE(percent_decode("%2").has_value());
  EXPECT_FALSE(percent_decode("%zz").has_value());
}

TEST(Encoding, PercentEncodeKeepsUnreservedOnly) {
  EXPECT_EQ(percent_encode("a:b/c d~", false), "a%3Ab%2Fc%20d~");
  EXPECT_EQ(percent_encode("a:b/c", true), "a%3Ab/c");
}

}  // namespace
}  // namespace lambent
