//===- JsonTest.cpp - Tests for the strict JSON parser/writer ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Grammar, strictness (duplicate keys, UTF-8, surrogates, depth, trailing
// garbage), exact integers, error offsets and the deterministic writer.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace qc;
using qc::json::Value;

namespace {

/// Parses `text`, expecting success.
Value parseOk(const std::string &text) {
  Value v;
  Status s = json::parse(text, v);
  EXPECT_TRUE(s.isOk()) << text << " -> " << s.message();
  return v;
}

/// Parses `text`, expecting failure at byte `offset` with a message
/// containing `fragment`.
void expectError(const std::string &text, size_t offset,
                 const std::string &fragment) {
  Value v;
  size_t at = 12345;
  Status s = json::parse(text, v, {}, &at);
  ASSERT_FALSE(s.isOk()) << "accepted: " << text;
  EXPECT_EQ(at, offset) << s.message();
  EXPECT_NE(s.message().find("at byte " + std::to_string(offset)),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

} // namespace

TEST(JsonParse, Scalars) {
  EXPECT_TRUE(parseOk("null").isNull());
  EXPECT_TRUE(parseOk("true").asBool());
  EXPECT_TRUE(parseOk("false").isBool());
  EXPECT_FALSE(parseOk("false").asBool());
  EXPECT_EQ(parseOk("\"hi\"").asString(), "hi");
  EXPECT_DOUBLE_EQ(parseOk("-12.5e-1").asDouble(), -1.25);
  EXPECT_DOUBLE_EQ(parseOk("0.1").asDouble(), 0.1);
  EXPECT_DOUBLE_EQ(parseOk("1E3").asDouble(), 1000.0);
  Value fraction = parseOk("2.0");
  EXPECT_TRUE(fraction.isNumber());
  EXPECT_FALSE(fraction.isInt64()) << "a literal with a fraction is not an "
                                      "exact integer";
}

TEST(JsonParse, ExactIntegers) {
  // 2^53 + 1 is not representable as a double: the exact value must survive.
  Value big = parseOk("9007199254740993");
  ASSERT_TRUE(big.isInt64());
  EXPECT_EQ(big.asInt64(), 9007199254740993LL);
  Value u = parseOk("18446744073709551615");
  EXPECT_FALSE(u.isInt64());
  ASSERT_TRUE(u.isUInt64());
  EXPECT_EQ(u.asUInt64(), 18446744073709551615ULL);
  Value mn = parseOk("-9223372036854775808");
  ASSERT_TRUE(mn.isInt64());
  EXPECT_EQ(mn.asInt64(), INT64_MIN);
  EXPECT_FALSE(mn.isUInt64());
  Value negZero = parseOk("-0");
  EXPECT_FALSE(negZero.isInt64()) << "-0 keeps its sign as a double";
  EXPECT_TRUE(std::signbit(negZero.asDouble()));
  EXPECT_EQ(json::write(negZero), "-0");
  EXPECT_TRUE(parseOk("0").isUInt64());
  Value neg = parseOk("-3");
  EXPECT_EQ(neg.asInt64(), -3);
  EXPECT_FALSE(neg.isUInt64());
  Value tooBig = parseOk("18446744073709551616");
  EXPECT_FALSE(tooBig.isUInt64());
  EXPECT_FALSE(tooBig.isInt64());
  EXPECT_DOUBLE_EQ(tooBig.asDouble(), 18446744073709551616.0);
  EXPECT_FALSE(parseOk("-9223372036854775809").isInt64());
}

TEST(JsonParse, NumberGrammarIsStrict) {
  expectError("01", 0, "leading zeros");
  expectError("1.", 2, "after '.'");
  expectError(".5", 0, "expected a value");
  expectError("+1", 0, "expected a value");
  expectError("-", 1, "expected a digit");
  expectError("1e", 2, "exponent");
  expectError("1e+", 3, "exponent");
  expectError("0x10", 1, "after the JSON value");
  expectError("NaN", 0, "expected a value");
  expectError("Infinity", 0, "expected a value");
  expectError("[1,]", 3, "expected a value");
}

TEST(JsonParse, NumberRange) {
  expectError("[1e400]", 1, "out of the range");
  expectError("-1000000000000000000000000000000000e300", 0, "out of the range");
  Value tiny = parseOk("1e-400");
  EXPECT_EQ(tiny.asDouble(), 0.0);
  // Many fractional zeros and a large positive exponent is still small.
  EXPECT_NEAR(parseOk("0.000001e5").asDouble(), 0.1, 1e-15);
  EXPECT_EQ(parseOk("5e-324").asDouble(), 5e-324);
}

TEST(JsonParse, DuplicateKeysRejectedWithKeyAndOffset) {
  expectError("{\"a\":1,\"b\":2,\"a\":3}", 13, "duplicate object key \"a\"");
  // Large objects take the hash-set path; the check must still fire there.
  std::string text = "{";
  for (int i = 0; i < 40; ++i)
    text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  size_t dupAt = text.size();
  text += "\"k7\":0}";
  expectError(text, dupAt, "duplicate object key \"k7\"");
  // The same key in different objects is fine.
  Value v = parseOk("{\"a\":{\"x\":1},\"b\":{\"x\":2}}");
  EXPECT_EQ(v.find("b")->find("x")->asInt64(), 2);
}

TEST(JsonParse, DepthCap) {
  std::string ok(128, '[');
  ok += std::string(128, ']');
  EXPECT_TRUE(parseOk(ok).isArray());
  std::string deep(129, '[');
  deep += std::string(129, ']');
  expectError(deep, 128, "nesting deeper than the limit of 128");
  json::ParseOptions opts;
  opts.maxDepth = 2;
  Value v;
  EXPECT_TRUE(json::parse("[[1]]", v, opts).isOk());
  EXPECT_FALSE(json::parse("[[[1]]]", v, opts).isOk());
  EXPECT_FALSE(json::parse("{\"a\":{\"b\":{}}}", v, opts).isOk());
  // A hostile depth must fail cleanly rather than exhaust the stack.
  std::string hostile(1000000, '[');
  EXPECT_FALSE(json::parse(hostile, v).isOk());
}

TEST(JsonParse, Utf8Validation) {
  EXPECT_EQ(parseOk("\"\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\"").asString(),
            "\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E");
  expectError("\"ab\xC0\x80\"", 3, "invalid UTF-8");       // overlong NUL
  expectError("\"\xED\xA0\x80\"", 1, "invalid UTF-8");     // UTF-16 surrogate
  expectError("\"\xF4\x90\x80\x80\"", 1, "invalid UTF-8"); // > U+10FFFF
  expectError("\"\xF5\x80\x80\x80\"", 1, "invalid UTF-8");
  expectError("\"\xE2\x82\"", 1, "invalid UTF-8");     // truncated
  expectError("\"\x80\"", 1, "invalid UTF-8");         // lone continuation
  expectError("\"\xE0\x80\xAF\"", 1, "invalid UTF-8"); // overlong '/'
  // Outside strings any non-ASCII byte is a syntax error.
  expectError("[\xC3\xA9]", 1, "byte 0xc3");
}

TEST(JsonParse, UnicodeEscapes) {
  EXPECT_EQ(parseOk("\"\\u00e9\"").asString(), "\xC3\xA9");
  EXPECT_EQ(parseOk("\"\\u20AC\"").asString(), "\xE2\x82\xAC");
  EXPECT_EQ(parseOk("\"\\ud834\\udd1e\"").asString(), "\xF0\x9D\x84\x9E");
  EXPECT_EQ(parseOk("\"\\u0000\"").asString(), std::string(1, '\0'));
  EXPECT_EQ(parseOk("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"").asString(),
            "\"\\/\b\f\n\r\t");
  expectError("\"\\ud834\"", 1, "high surrogate");
  expectError("\"\\ud834\\u0041\"", 1, "high surrogate");
  expectError("\"x\\udd1e\"", 2, "lone low surrogate");
  expectError("\"\\u12G4\"", 5, "invalid hex digit");
  expectError("\"\\u12\"", 3, "truncated \\u escape");
  expectError("\"\\q\"", 1, "invalid escape");
}

TEST(JsonParse, StringsAndStructure) {
  expectError("\"a\nb\"", 2, "control character");
  EXPECT_EQ(parseOk("\"\x7F\"").asString(), "\x7F");
  expectError("\"abc", 0, "unterminated string");
  expectError("[1, 2", 5, "expected ',' or ']'");
  expectError("{\"a\" 1}", 5, "expected ':'");
  expectError("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
  expectError("{1:2}", 1, "string object key");
  expectError("", 0, "unexpected end of input");
  expectError(" \n\t ", 4, "unexpected end of input");
  expectError("tru", 0, "invalid literal");
  expectError("nul", 0, "invalid literal");
}

TEST(JsonParse, WhitespaceAndTrailingGarbage) {
  EXPECT_TRUE(parseOk(" \r\n\t{} \t\r\n").isObject());
  expectError("{} x", 3, "after the JSON value");
  expectError("{}{}", 2, "after the JSON value");
  expectError("1 2", 2, "after the JSON value");
  // Form feed and vertical tab are not JSON whitespace.
  expectError("\f{}", 0, "expected a value");
}

TEST(JsonParse, ObjectKeepsInsertionOrder) {
  Value v = parseOk("{\"zeta\":1,\"alpha\":2,\"mid\":3}");
  ASSERT_EQ(v.asObject().size(), 3u);
  EXPECT_EQ(v.asObject()[0].first, "zeta");
  EXPECT_EQ(v.asObject()[1].first, "alpha");
  EXPECT_EQ(v.asObject()[2].first, "mid");
  EXPECT_EQ(json::write(v), "{\"zeta\":1,\"alpha\":2,\"mid\":3}");
  EXPECT_EQ(v.find("alpha")->asInt64(), 2);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(Value::integer(3).find("x"), nullptr);
}

TEST(JsonValue, SetAndPush) {
  Value o;
  o.set("b", Value::integer(1));
  o.set("a", Value::integer(2));
  o.set("b", Value::string("x")); // replaces in place, keeps position
  ASSERT_TRUE(o.isObject());
  EXPECT_EQ(json::write(o), "{\"b\":\"x\",\"a\":2}");
  Value a;
  a.push(Value::boolean(true));
  a.push(Value());
  EXPECT_EQ(json::write(a), "[true,null]");
  Value s = Value::string("x");
  s.push(Value::integer(1)); // no effect on a non-array
  EXPECT_EQ(json::write(s), "\"x\"");
}

TEST(JsonValue, Equality) {
  EXPECT_EQ(parseOk("{\"a\":[1,2.5,\"x\",null,true]}"),
            parseOk(" { \"a\" : [ 1 , 2.5 , \"x\" , null , true ] } "));
  EXPECT_NE(parseOk("{\"a\":1,\"b\":2}"), parseOk("{\"b\":2,\"a\":1}"));
  EXPECT_NE(parseOk("9007199254740993"), parseOk("9007199254740992"));
  EXPECT_EQ(parseOk("1"), Value::integer(1));
  EXPECT_NE(parseOk("1"), Value::string("1"));
}

TEST(JsonValue, CopyIsDeepAndMoveLeavesNull) {
  Value a = parseOk("{\"k\":[1,\"two\",{\"x\":null}]}");
  Value b = a;
  b.set("k", Value::string("changed"));
  EXPECT_EQ(json::write(a), "{\"k\":[1,\"two\",{\"x\":null}]}");
  EXPECT_EQ(json::write(b), "{\"k\":\"changed\"}");
  Value c = std::move(a);
  EXPECT_TRUE(a.isNull()); // NOLINT(bugprone-use-after-move): documented
  EXPECT_EQ(c.find("k")->asArray().size(), 3u);
  Value &alias = c;
  c = alias; // self-assignment keeps the value
  EXPECT_EQ(c.find("k")->asArray()[1].asString(), "two");
  b = c;
  EXPECT_EQ(b, c);
  // Accessors on the wrong kind return neutral values instead of crashing.
  EXPECT_EQ(Value::integer(1).asString(), "");
  EXPECT_TRUE(Value::string("x").asArray().empty());
  EXPECT_TRUE(Value().asObject().empty());
  EXPECT_EQ(Value::string("x").asDouble(), 0.0);
  // Compact nodes keep a hostile header's memory bounded (see Json.h).
  EXPECT_EQ(sizeof(Value), 16u);
}

TEST(JsonWrite, Numbers) {
  EXPECT_EQ(json::write(Value::number(0.1)), "0.1");
  EXPECT_EQ(json::write(Value::number(3.0)), "3");
  EXPECT_EQ(json::write(Value::number(1e21)), "1e+21");
  EXPECT_EQ(json::write(Value::number(-2.5e-7)), "-2.5e-07");
  EXPECT_EQ(json::write(Value::integer(-5)), "-5");
  EXPECT_EQ(json::write(Value::integer(INT64_MIN)), "-9223372036854775808");
  EXPECT_EQ(json::write(Value::unsignedInteger(UINT64_MAX)),
            "18446744073709551615");
  EXPECT_EQ(json::write(Value::number(NAN)), "null");
  EXPECT_EQ(json::write(Value::number(-INFINITY)), "null");
  // Shortest round-trip: the written text parses back to the same double.
  for (double d :
       {1.0 / 3.0, 1e-5, 6.02214076e23, 5e-324, 1.7976931348623157e308}) {
    Value back = parseOk(json::write(Value::number(d)));
    EXPECT_EQ(back.asDouble(), d);
  }
}

TEST(JsonWrite, StringEscapes) {
  EXPECT_EQ(json::write(Value::string("a\"b\\c\n\t\x01/")),
            "\"a\\\"b\\\\c\\n\\t\\u0001/\"");
  EXPECT_EQ(json::write(Value::string("\xC3\xA9")), "\"\xC3\xA9\"");
  // Invalid UTF-8 never reaches the output.
  EXPECT_EQ(json::write(Value::string("a\xFF"
                                      "b")),
            "\"a\xEF\xBF\xBD"
            "b\"");
  std::string nul(1, '\0');
  EXPECT_EQ(json::write(Value::string(nul)), "\"\\u0000\"");
}

TEST(JsonWrite, CompactAndPretty) {
  Value v = parseOk("{\"a\":[1,{\"b\":null}],\"c\":{},\"d\":[]}");
  EXPECT_EQ(json::write(v), "{\"a\":[1,{\"b\":null}],\"c\":{},\"d\":[]}");
  json::WriteOptions pretty;
  pretty.pretty = true;
  EXPECT_EQ(json::write(v, pretty), "{\n"
                                    "  \"a\": [\n"
                                    "    1,\n"
                                    "    {\n"
                                    "      \"b\": null\n"
                                    "    }\n"
                                    "  ],\n"
                                    "  \"c\": {},\n"
                                    "  \"d\": []\n"
                                    "}");
  pretty.indent = 4;
  EXPECT_EQ(json::write(parseOk("[1]"), pretty), "[\n    1\n]");
}

TEST(JsonWrite, RoundTrip) {
  const char *docs[] = {
      "{\"name\":\"t\\u00e9st\",\"shape\":[2,18446744073709551614],"
      "\"x\":-0.5,\"ok\":true,\"n\":null,\"nested\":{\"deep\":[[],[{}]]}}",
      "[\"\\ud83d\\ude00\",\"\\u001f\",1e-300,-9223372036854775808]",
  };
  for (const char *doc : docs) {
    Value v = parseOk(doc);
    Value again = parseOk(json::write(v));
    EXPECT_EQ(v, again) << doc;
    json::WriteOptions pretty;
    pretty.pretty = true;
    EXPECT_EQ(v, parseOk(json::write(v, pretty)));
    // Writing is deterministic.
    EXPECT_EQ(json::write(v), json::write(again));
  }
}

TEST(JsonUtf8, IsValidUtf8ReportsOffset) {
  size_t bad = 0;
  EXPECT_TRUE(json::isValidUtf8("abc\xC3\xA9", 5, &bad));
  EXPECT_FALSE(json::isValidUtf8("abc\xC3", 4, &bad));
  EXPECT_EQ(bad, 3u);
  EXPECT_FALSE(json::isValidUtf8("ok\xED\xBF\xBF", 5, &bad));
  EXPECT_EQ(bad, 2u);
  EXPECT_TRUE(json::isValidUtf8("", 0, &bad));
}

TEST(JsonQuote, EscapesAndTruncates) {
  EXPECT_EQ(json::quote("model.norm.weight"), "\"model.norm.weight\"");
  EXPECT_EQ(json::quote("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(json::quote("a\xFF"), "\"a\\xff\"");
  EXPECT_EQ(json::quote(std::string(10, 'x'), 4), "\"xxxx\"...");
  // Never cuts a multi-byte character in half.
  EXPECT_EQ(json::quote("ab\xE2\x82\xAC", 3), "\"ab\"...");
}
