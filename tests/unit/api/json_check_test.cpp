// check_json: Invoke accepts exactly one RFC 8259 value and explains a refusal.
#include "api/json_check.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace lambent::api {
namespace {

using ::testing::HasSubstr;

TEST(JsonCheck, AcceptsEveryKindOfValue) {
  for (const char* ok :
       {"{}", "[]", "null", "true", "false", "0", "-0", "12", "-12.5e+3", "1E-2", "0.5", R"("")",
        R"("plain")", R"("esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00")",
        R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})", " \t\r\n{ \"a\" : [ 1 , 2 ] }\n ",
        "\"\xc3\xa9 UTF-8 passes through\"", R"([[[[[]]]]])"}) {
    EXPECT_EQ(check_json(ok), "") << ok;
  }
}

TEST(JsonCheck, RejectsWhatIsNotOneValue) {
  for (const char* bad : {"",
                          "   ",
                          "{",
                          "}",
                          "[1,]",
                          "[1 2]",
                          R"({"a"})",
                          R"({"a":})",
                          R"({"a":1,})",
                          R"({a:1})",
                          "'single'",
                          "tru",
                          "nul",
                          "True",
                          "01",
                          "1.",
                          ".5",
                          "-",
                          "1e",
                          "+1",
                          "NaN",
                          "Infinity",
                          R"("unterminated)",
                          R"("bad \x escape")",
                          R"("\u12G4")",
                          "\"raw\ttab\"",
                          "{} {}",
                          "1 2",
                          "[1] x",
                          "/* comment */ {}"}) {
    EXPECT_NE(check_json(bad), "") << "accepted: " << bad;
  }
}

TEST(JsonCheck, MessagesNameTheCharacterAndOffset) {
  EXPECT_EQ(check_json("{x}"),
            "Unexpected character ('x' (code 120)) at offset 1 (expected a field name)");
  EXPECT_EQ(check_json("[1,2"), "Unexpected end-of-input at offset 4");
  EXPECT_EQ(check_json(R"({"a" 1})"),
            "Unexpected character ('1' (code 49)) at offset 5 (expected ':')");
  EXPECT_EQ(check_json("hello"), "Unexpected character ('h' (code 104)) at offset 0");
  EXPECT_EQ(check_json("{} x"),
            "Unexpected character ('x' (code 120)) at offset 3 after the JSON value");
  EXPECT_EQ(check_json(R"("abc)"), "Unexpected end-of-input in a string at offset 4");
  EXPECT_THAT(check_json("\"a\x01\""), HasSubstr("control characters must be escaped"));
  EXPECT_THAT(check_json("\"a\x01\""), HasSubstr("(code 1)"));
  // Non-printable bytes are shown as '?' so the message stays readable.
  EXPECT_EQ(check_json("\x80"), "Unexpected character ('?' (code 128)) at offset 0");
}

TEST(JsonCheck, DepthIsLimited) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(check_json(nested(500)), "");
  EXPECT_EQ(check_json(nested(10000)), "JSON nested too deeply");
  std::string objects;
  for (int i = 0; i < 10000; ++i) objects += R"({"a":)";
  objects += "1";
  objects += std::string(10000, '}');
  EXPECT_EQ(check_json(objects), "JSON nested too deeply");
}

TEST(JsonCheck, LargeFlatPayloadIsAccepted) {
  std::string big = "[";
  for (int i = 0; i < 100000; ++i) big += (i ? ",\"item\"" : "\"item\"");
  big += "]";
  EXPECT_EQ(check_json(big), "");
}

// Strings are scanned 8 bytes at a time: a quote, backslash or control character must be found
// at every position of a word, with the same message as a byte-by-byte scan would give.
TEST(JsonCheck, EveryPositionOfALongStringIsChecked) {
  for (std::size_t k = 0; k < 24; ++k) {
    const std::string plain(k, 'a');
    const std::string tail(11, 'b');
    EXPECT_EQ(check_json("\"" + plain + "\x1f" + tail + "\""),
              "Unexpected character ('?' (code 31)) at offset " + std::to_string(k + 1) +
                  " inside a string (control characters must be escaped)")
        << k;
    EXPECT_EQ(check_json("\"" + plain + "\"" + tail + "\""),
              "Unexpected character ('b' (code 98)) at offset " + std::to_string(k + 2) +
                  " after the JSON value")
        << k;
    EXPECT_EQ(check_json("[\"" + plain + "\\q" + tail + "\"]"),
              "Unexpected character ('q' (code 113)) at offset " + std::to_string(k + 3) +
                  " (bad escape)")
        << k;
    EXPECT_EQ(check_json("\"" + plain + "\\\"\xc3\xa9\x7f\xff" + tail + "\""), "") << k;
    EXPECT_EQ(check_json("\"" + plain),
              "Unexpected end-of-input in a string at offset " + std::to_string(k + 1))
        << k;
  }
}

TEST(CheckJson, ListsLongPlainStringValues) {
  const std::string b64(100, 'A');
  const std::string text = R"({"Code":{"ZipFile":")" + b64 + R"("},"k":["short",")" + b64 +
                           R"("],")" + b64 + R"(":1,"esc":")" + b64 + R"(\/","hi":")" + b64 +
                           "\xc3\xa9\"}";
  std::vector<TextSpan> spans;
  ASSERT_EQ(check_json(text, 50, spans), "");
  // The two plain values; not the short one, the key, the escaped one or the non-ASCII one.
  ASSERT_EQ(spans.size(), 2u);
  for (const auto& s : spans) EXPECT_EQ(text.substr(s.begin, s.end - s.begin), b64);
  EXPECT_EQ(text.substr(spans[0].begin - 11, 11), R"("ZipFile":")");
  EXPECT_EQ(text[spans[1].begin - 2], ',');

  spans.clear();
  EXPECT_NE(check_json(text + ",", 50, spans), "");  // still a checker
  spans.clear();
  ASSERT_EQ(check_json(text, 101, spans), "");
  EXPECT_TRUE(spans.empty());
}

}  // namespace
}  // namespace lambent::api
