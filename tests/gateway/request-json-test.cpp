// The strict request-body parser and the error-quoting helpers, without a server: each kind of bad
// body is a FrontError(400) whose message says what and where in tinyroute's words; good bodies parse
// exactly as nlohmann::json::parse would.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/utf8.h"
#include "gateway/chat.h"
#include "gateway/request-json.h"

namespace {

using namespace tinyroute::gateway;

std::string error_of(const std::string& body) {
  try {
    (void)parse_request_json(body);
  } catch (const FrontError& e) {
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.type, "invalid_request_error") << body;
    return e.what();
  }
  return "";
}

TEST(RequestJson, EachBadBodyIsA400SayingWhatAndWhere) {
  struct Case {
    std::string body;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "the request body is empty"},
      {"  \n", "the request body is empty"},
      {"{\"a\":\"caf\xC3\"}", "not valid UTF-8: byte 0xC3 at line 1, column 10"},
      {"{\"a\":\n\"\xED\xA0\x80\"}", "not valid UTF-8: byte 0xED at line 2, column 2"},
      {"{\"a\":1e400}", "the number 1e400 is out of range"},
      {"[-1e400]", "the number -1e400 is out of range"},
      {"{\"a\":1,\"a\":2}", "the key \"a\" appears twice in one object"},
      {std::string(129, '[') + std::string(129, ']'), "nests deeper than 128 levels"},
      {"{\"a\":", "the JSON ends before it is complete at line 1, column 6"},
      {"{\"a\":1} x", "unexpected 'x'"},
      {"{\"a\":\"\x01\"}", "unescaped control character"},
      {"{\"a\":\"\\ud800\"}", "unpaired UTF-16 surrogate"},
      {"{\"a\":\"\\q\"}", "unknown escape"},
      {"{\"a\":01}", "unexpected"},
      {"{\"a\":-}", "a number is malformed"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(c.body);
    EXPECT_NE(message.find(c.says), std::string::npos) << "body: " << c.body << "\nmessage: " << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
    EXPECT_EQ(tinyroute::first_invalid_utf8(message), std::string::npos) << message;
  }
}

TEST(RequestJson, GoodBodiesParseAsTheLibraryParsesThem) {
  for (const std::string& body : std::vector<std::string>{
           R"({"model":"auto","messages":[{"role":"user","content":"h\u00e9 \ud83d\ude00"}]})",
           "[1,2.5,-3,true,null]", "\"x\"", "18446744073709551616", "1e-400",
           R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]})", std::string(128, '[') + std::string(128, ']')}) {
    EXPECT_EQ(parse_request_json(body), nlohmann::json::parse(body)) << body;
  }
}

TEST(RequestJson, QuotedInputIsValidUtf8AndBounded) {
  EXPECT_EQ(quote_input("abc"), "abc");
  EXPECT_EQ(quote_input("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  const std::string long_text = std::string(200, 'x');
  EXPECT_EQ(quote_input(long_text, 10), std::string(10, 'x') + "...");
  // Cut between characters: "é" is two bytes, never split.
  const std::string accents = "\xC3\xA9\xC3\xA9\xC3\xA9";
  EXPECT_EQ(quote_input(accents, 3), "\xC3\xA9...");
  EXPECT_EQ(tinyroute::first_invalid_utf8(truncate(accents, 3)), std::string::npos);
  // Rendering never throws on bytes that are not UTF-8.
  EXPECT_EQ(dump_for_client(nlohmann::json{{"e", "a\xFF"}}), "{\"e\":\"a\xEF\xBF\xBD\"}");
}

TEST(RequestJson, IntegerFieldsOutOfRangeAreRefusedNotWrapped) {
  const auto j =
      parse_request_json(R"({"a":4294967296,"b":-2147483649,"c":18446744073709551615,"d":7,"s":1.0e30})");
  EXPECT_THROW((void)opt_int(j, "a", ""), FrontError);
  EXPECT_THROW((void)opt_int(j, "b", ""), FrontError);
  EXPECT_THROW((void)opt_int(j, "c", ""), FrontError);
  EXPECT_EQ(opt_int(j, "d", ""), 7);
  EXPECT_THROW((void)opt_int64(j, "c", ""), FrontError);
  EXPECT_THROW((void)opt_int64(j, "s", ""), FrontError);
  EXPECT_EQ(opt_int64(j, "a", ""), 4294967296LL);
  EXPECT_EQ(upstream_int(j, "a", -5), -5);
  EXPECT_EQ(upstream_int(j, "s", -5), -5);
  EXPECT_EQ(upstream_int(j, "d", -5), 7);
}

} // namespace
