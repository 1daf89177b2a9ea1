//===- Json.cpp - Strict JSON value, parser and writer ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A recursive-descent parser over a byte range (RFC 8259 grammar, no
// extensions) and a deterministic writer. The parser never allocates more
// than a small constant factor of its input, bounds its recursion with
// ParseOptions::maxDepth, and reports every failure with the byte offset
// where it was detected.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <unordered_set>

namespace qc {
namespace json {

//===----------------------------------------------------------------------===//
// Value
//===----------------------------------------------------------------------===//

const char *kindName(Kind kind) {
  switch (kind) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "bool";
  case Kind::Number:
    return "number";
  case Kind::String:
    return "string";
  case Kind::Array:
    return "array";
  case Kind::Object:
    return "object";
  }
  return "unknown";
}

// The memory bound promised in Json.h relies on this.
static_assert(sizeof(void *) != 8 || sizeof(Value) == 16,
              "json::Value should stay 16 bytes");

Value::Value(const Value &other) : k(other.k), numFlags(other.numFlags) {
  switch (k) {
  case Kind::String:
    p.s = new std::string(*other.p.s);
    break;
  case Kind::Array:
    p.a = new Array(*other.p.a);
    break;
  case Kind::Object:
    p.o = new Object(*other.p.o);
    break;
  default:
    p = other.p;
  }
}

Value::Value(Value &&other) noexcept
    : k(other.k), numFlags(other.numFlags), p(other.p) {
  other.k = Kind::Null;
  other.numFlags = 0;
}

Value &Value::operator=(const Value &other) {
  if (this != &other) {
    Value copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Value &Value::operator=(Value &&other) noexcept {
  if (this != &other) {
    reset();
    k = other.k;
    numFlags = other.numFlags;
    p = other.p;
    other.k = Kind::Null;
    other.numFlags = 0;
  }
  return *this;
}

Value::~Value() { reset(); }

void Value::reset() noexcept {
  switch (k) {
  case Kind::String:
    delete p.s;
    break;
  case Kind::Array:
    delete p.a;
    break;
  case Kind::Object:
    delete p.o;
    break;
  default:
    break;
  }
  k = Kind::Null;
  numFlags = 0;
  p.u = 0;
}

Value Value::boolean(bool v) {
  Value r;
  r.k = Kind::Bool;
  r.p.b = v;
  return r;
}

Value Value::number(double v) {
  Value r;
  r.k = Kind::Number;
  r.p.d = v;
  return r;
}

Value Value::integer(int64_t v) {
  Value r;
  r.k = Kind::Number;
  r.p.i = v;
  r.numFlags = v >= 0 ? (kHasI64 | kHasU64) : kHasI64;
  return r;
}

Value Value::unsignedInteger(uint64_t v) {
  if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return integer(static_cast<int64_t>(v));
  Value r;
  r.k = Kind::Number;
  r.p.u = v;
  r.numFlags = kHasU64;
  return r;
}

Value Value::string(std::string s) {
  Value r;
  r.p.s = new std::string(std::move(s));
  r.k = Kind::String;
  return r;
}

Value Value::array(Array elements) {
  Value r;
  r.p.a = new Array(std::move(elements));
  r.k = Kind::Array;
  return r;
}

Value Value::object() {
  Value r;
  r.p.o = new Object();
  r.k = Kind::Object;
  return r;
}

double Value::asDouble() const {
  if (k != Kind::Number)
    return 0.0;
  if (numFlags & kHasI64)
    return static_cast<double>(p.i);
  if (numFlags & kHasU64)
    return static_cast<double>(p.u);
  return p.d;
}

int64_t Value::asInt64() const { return isInt64() ? p.i : 0; }

uint64_t Value::asUInt64() const {
  if (!isUInt64())
    return 0;
  // Non-negative int64 values are stored signed (see integer()).
  return (numFlags & kHasI64) ? static_cast<uint64_t>(p.i) : p.u;
}

namespace {
const std::string kEmptyString;
const Value::Array kEmptyArray;
const Value::Object kEmptyObject;
} // namespace

const std::string &Value::asString() const {
  return k == Kind::String ? *p.s : kEmptyString;
}

const Value::Array &Value::asArray() const {
  return k == Kind::Array ? *p.a : kEmptyArray;
}

const Value::Object &Value::asObject() const {
  return k == Kind::Object ? *p.o : kEmptyObject;
}

const Value *Value::find(std::string_view key) const {
  if (k != Kind::Object)
    return nullptr;
  for (const Member &m : *p.o)
    if (m.first == key)
      return &m.second;
  return nullptr;
}

void Value::set(std::string key, Value value) {
  if (k == Kind::Null)
    *this = object();
  if (k != Kind::Object)
    return;
  for (Member &m : *p.o) {
    if (m.first == key) {
      m.second = std::move(value);
      return;
    }
  }
  p.o->emplace_back(std::move(key), std::move(value));
}

void Value::push(Value value) {
  if (k == Kind::Null)
    *this = array();
  if (k != Kind::Array)
    return;
  p.a->push_back(std::move(value));
}

bool Value::operator==(const Value &other) const {
  if (k != other.k)
    return false;
  switch (k) {
  case Kind::Null:
    return true;
  case Kind::Bool:
    return p.b == other.p.b;
  case Kind::Number:
    if (isInt64() && other.isInt64())
      return asInt64() == other.asInt64();
    if (isUInt64() && other.isUInt64())
      return asUInt64() == other.asUInt64();
    return asDouble() == other.asDouble();
  case Kind::String:
    return *p.s == *other.p.s;
  case Kind::Array:
    return *p.a == *other.p.a;
  case Kind::Object:
    return *p.o == *other.p.o;
  }
  return false;
}

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

/// Length of the well-formed UTF-8 sequence at `s[0, n)` (n >= 1), or 0 if
/// it is ill-formed. Follows the RFC 3629 table, which excludes overlong
/// forms, UTF-16 surrogates (ED A0..BF) and code points above U+10FFFF.
static size_t utf8SequenceLength(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && s[i] >= lo && s[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF)
    return cont(1) ? 2 : 0;
  if (c == 0xE0)
    return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
    return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED)
    return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0)
    return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3)
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4)
    return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

bool isValidUtf8(const char *data, size_t size, size_t *badOffset) {
  const auto *s = reinterpret_cast<const unsigned char *>(data);
  size_t i = 0;
  while (i < size) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = utf8SequenceLength(s + i, size - i);
    if (len == 0) {
      if (badOffset)
        *badOffset = i;
      return false;
    }
    i += len;
  }
  return true;
}

/// Appends code point `cp` (<= U+10FFFF, not a surrogate) as UTF-8.
static void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

static const char kHexDigits[] = "0123456789abcdef";

/// Appends the JSON escape of a byte that must not appear raw in a string.
static void appendControlEscape(std::string &out, unsigned char c) {
  switch (c) {
  case '"':
    out += "\\\"";
    return;
  case '\\':
    out += "\\\\";
    return;
  case '\b':
    out += "\\b";
    return;
  case '\f':
    out += "\\f";
    return;
  case '\n':
    out += "\\n";
    return;
  case '\r':
    out += "\\r";
    return;
  case '\t':
    out += "\\t";
    return;
  default:
    out += "\\u00";
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 0xF];
  }
}

/// True for bytes that JSON requires to be escaped inside a string.
static bool needsEscape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\';
}

std::string quote(std::string_view text, size_t maxBytes) {
  const auto *s = reinterpret_cast<const unsigned char *>(text.data());
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size() && i < maxBytes) {
    unsigned char c = s[i];
    if (c < 0x80) {
      if (needsEscape(c))
        appendControlEscape(out, c);
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = utf8SequenceLength(s + i, text.size() - i);
    if (len == 0) {
      // Not JSON, but the exact byte is what the user needs to see.
      out += "\\x";
      out += kHexDigits[c >> 4];
      out += kHexDigits[c & 0xF];
      ++i;
      continue;
    }
    if (i + len > maxBytes)
      break;
    out.append(text.data() + i, len);
    i += len;
  }
  out += '"';
  if (i < text.size())
    out += "...";
  return out;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

/// Recursive-descent parser state over one input. Every parse function
/// either consumes a complete production or returns an error; `pos` is only
/// meaningful on success.
class Parser {
public:
  Parser(std::string_view text, const ParseOptions &options)
      : s(text.data()), n(text.size()), maxDepth(options.maxDepth) {}

  /// Parses the whole input as one value surrounded by optional whitespace.
  Status run(Value &out, size_t *errorOffset) {
    errOffsetOut = errorOffset;
    skipWhitespace();
    QC_RETURN_IF_ERROR(parseValue(out));
    skipWhitespace();
    if (pos != n)
      return fail(pos, "unexpected " + describe(pos) + " after the JSON value");
    return Status::ok();
  }

private:
  const char *s;
  size_t n;
  size_t pos = 0;
  unsigned depth = 0;
  unsigned maxDepth;
  size_t *errOffsetOut = nullptr;

  /// Builds the error for a problem found at byte `at`.
  Status fail(size_t at, const std::string &what) {
    if (errOffsetOut)
      *errOffsetOut = at;
    return Status::error("JSON error at byte " + std::to_string(at) + ": " +
                         what);
  }

  /// Human description of the byte at `at` for "unexpected X" messages.
  std::string describe(size_t at) const {
    if (at >= n)
      return "end of input";
    unsigned char c = static_cast<unsigned char>(s[at]);
    if (c >= 0x21 && c < 0x7F)
      return std::string("character '") + static_cast<char>(c) + "'";
    std::string r = "byte 0x";
    r += kHexDigits[c >> 4];
    r += kHexDigits[c & 0xF];
    return r;
  }

  void skipWhitespace() {
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' ||
                       s[pos] == '\r'))
      ++pos;
  }

  Status parseValue(Value &out) {
    if (pos >= n)
      return fail(pos, "unexpected end of input, expected a value");
    switch (s[pos]) {
    case '{':
      return parseObject(out);
    case '[':
      return parseArray(out);
    case '"':
      out = Value::string(std::string());
      return parseString(*out.p.s);
    case 't':
      return parseLiteral("true", Value::boolean(true), out);
    case 'f':
      return parseLiteral("false", Value::boolean(false), out);
    case 'n':
      return parseLiteral("null", Value(), out);
    default:
      if (s[pos] == '-' || (s[pos] >= '0' && s[pos] <= '9'))
        return parseNumber(out);
      return fail(pos, "unexpected " + describe(pos) + ", expected a value");
    }
  }

  Status parseLiteral(std::string_view word, Value value, Value &out) {
    if (n - pos < word.size() || std::string_view(s + pos, word.size()) != word)
      return fail(pos, "invalid literal, expected '" + std::string(word) + "'");
    pos += word.size();
    out = std::move(value);
    return Status::ok();
  }

  /// Guards recursion before descending into an array or object.
  Status enter() {
    if (++depth > maxDepth)
      return fail(pos, "nesting deeper than the limit of " +
                           std::to_string(maxDepth) + " levels");
    return Status::ok();
  }

  Status parseArray(Value &out) {
    QC_RETURN_IF_ERROR(enter());
    out = Value::array();
    ++pos; // '['
    skipWhitespace();
    if (pos < n && s[pos] == ']') {
      ++pos;
      --depth;
      return Status::ok();
    }
    while (true) {
      skipWhitespace();
      out.p.a->emplace_back();
      QC_RETURN_IF_ERROR(parseValue(out.p.a->back()));
      skipWhitespace();
      if (pos < n && s[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < n && s[pos] == ']') {
        ++pos;
        --depth;
        return Status::ok();
      }
      return fail(pos, "unexpected " + describe(pos) +
                           " in array, expected ',' or ']'");
    }
  }

  Status parseObject(Value &out) {
    QC_RETURN_IF_ERROR(enter());
    out = Value::object();
    ++pos; // '{'
    skipWhitespace();
    if (pos < n && s[pos] == '}') {
      ++pos;
      --depth;
      return Status::ok();
    }
    // Small objects (the common case: a tensor entry has three members) use
    // a linear scan; a hash set takes over once the object grows, keeping a
    // header with many tensors O(n).
    constexpr size_t kLinearScanLimit = 16;
    std::unordered_set<std::string> seen;
    Value::Object &members = *out.p.o;
    while (true) {
      skipWhitespace();
      if (pos >= n || s[pos] != '"')
        return fail(pos, "unexpected " + describe(pos) +
                             ", expected a string object key");
      size_t keyOffset = pos;
      std::string key;
      QC_RETURN_IF_ERROR(parseString(key));
      bool duplicate = false;
      if (members.size() < kLinearScanLimit) {
        for (const Value::Member &m : members)
          duplicate = duplicate || m.first == key;
      } else {
        if (seen.empty())
          for (const Value::Member &m : members)
            seen.insert(m.first);
        duplicate = !seen.insert(key).second;
      }
      if (duplicate)
        return fail(keyOffset, "duplicate object key " + quote(key));
      skipWhitespace();
      if (pos >= n || s[pos] != ':')
        return fail(pos, "unexpected " + describe(pos) +
                             " after object key, expected ':'");
      ++pos;
      skipWhitespace();
      members.emplace_back(std::move(key), Value());
      QC_RETURN_IF_ERROR(parseValue(members.back().second));
      skipWhitespace();
      if (pos < n && s[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < n && s[pos] == '}') {
        ++pos;
        --depth;
        return Status::ok();
      }
      return fail(pos, "unexpected " + describe(pos) +
                           " in object, expected ',' or '}'");
    }
  }

  /// Reads four hex digits at `pos` into `unit`.
  Status parseHex4(uint32_t &unit) {
    if (n - pos < 4)
      return fail(pos, "truncated \\u escape");
    unit = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s[pos + i];
      uint32_t v;
      if (c >= '0' && c <= '9')
        v = c - '0';
      else if (c >= 'a' && c <= 'f')
        v = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v = c - 'A' + 10;
      else
        return fail(pos + i, "invalid hex digit in \\u escape");
      unit = unit * 16 + v;
    }
    pos += 4;
    return Status::ok();
  }

  /// Parses a \u escape (pos is at the 'u'); a high surrogate must be
  /// followed by an escaped low surrogate, and lone surrogates are rejected
  /// because they cannot be represented in UTF-8.
  Status parseUnicodeEscape(std::string &out) {
    size_t escapeStart = pos - 1;
    ++pos; // 'u'
    uint32_t unit = 0;
    QC_RETURN_IF_ERROR(parseHex4(unit));
    if (unit >= 0xDC00 && unit <= 0xDFFF)
      return fail(escapeStart, "lone low surrogate in \\u escape");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      if (n - pos < 2 || s[pos] != '\\' || s[pos + 1] != 'u')
        return fail(escapeStart, "high surrogate not followed by a low "
                                 "surrogate \\u escape");
      pos += 2;
      uint32_t low = 0;
      QC_RETURN_IF_ERROR(parseHex4(low));
      if (low < 0xDC00 || low > 0xDFFF)
        return fail(escapeStart, "high surrogate not followed by a low "
                                 "surrogate \\u escape");
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    appendUtf8(out, unit);
    return Status::ok();
  }

  Status parseString(std::string &out) {
    size_t start = pos;
    ++pos; // opening quote
    const auto *u = reinterpret_cast<const unsigned char *>(s);
    while (true) {
      // Copy the longest run of bytes that need no interpretation.
      size_t runStart = pos;
      while (pos < n && u[pos] >= 0x20 && u[pos] < 0x80 && u[pos] != '"' &&
             u[pos] != '\\')
        ++pos;
      out.append(s + runStart, pos - runStart);
      if (pos >= n)
        return fail(start, "unterminated string");
      unsigned char c = u[pos];
      if (c == '"') {
        ++pos;
        return Status::ok();
      }
      if (c < 0x20)
        return fail(pos, "unescaped control character in string");
      if (c >= 0x80) {
        size_t len = utf8SequenceLength(u + pos, n - pos);
        if (len == 0)
          return fail(pos, "invalid UTF-8 in string");
        out.append(s + pos, len);
        pos += len;
        continue;
      }
      // Backslash.
      if (pos + 1 >= n)
        return fail(start, "unterminated string");
      char e = s[pos + 1];
      const char *simple = nullptr;
      switch (e) {
      case '"':
        simple = "\"";
        break;
      case '\\':
        simple = "\\";
        break;
      case '/':
        simple = "/";
        break;
      case 'b':
        simple = "\b";
        break;
      case 'f':
        simple = "\f";
        break;
      case 'n':
        simple = "\n";
        break;
      case 'r':
        simple = "\r";
        break;
      case 't':
        simple = "\t";
        break;
      case 'u':
        ++pos;
        QC_RETURN_IF_ERROR(parseUnicodeEscape(out));
        continue;
      default:
        return fail(pos, "invalid escape sequence in string");
      }
      out += simple;
      pos += 2;
    }
  }

  /// True if the digits of a number literal overflowed a double (rather
  /// than underflowed): from_chars reports both as result_out_of_range. The
  /// literal's magnitude is 0.d1d2... * 10^(exp + k), where k counts the
  /// significant integer digits (or minus the leading fractional zeros), so
  /// the sign of exp + k tells the two apart.
  static bool overflowsDouble(std::string_view lit) {
    size_t i = lit[0] == '-' ? 1 : 0;
    int64_t k = 0;
    bool seenNonZero = false;
    for (; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
      seenNonZero = seenNonZero || lit[i] != '0';
      if (seenNonZero)
        ++k;
    }
    if (i < lit.size() && lit[i] == '.') {
      for (++i; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
        if (!seenNonZero && lit[i] == '0')
          --k;
        seenNonZero = seenNonZero || lit[i] != '0';
      }
    }
    int64_t exp = 0;
    if (i < lit.size() && (lit[i] == 'e' || lit[i] == 'E')) {
      ++i;
      bool neg = false;
      if (lit[i] == '+' || lit[i] == '-')
        neg = lit[i++] == '-';
      for (; i < lit.size(); ++i)
        exp = std::min<int64_t>(exp * 10 + (lit[i] - '0'), 1000000000);
      if (neg)
        exp = -exp;
    }
    return exp + k > 0;
  }

  Status parseNumber(Value &out) {
    size_t start = pos;
    bool negative = false;
    if (s[pos] == '-') {
      negative = true;
      ++pos;
    }
    auto isDigit = [&](size_t i) {
      return i < n && s[i] >= '0' && s[i] <= '9';
    };
    if (!isDigit(pos))
      return fail(pos, "invalid number: expected a digit");
    // Exact integer magnitude, tracked while it fits in 64 bits.
    uint64_t mag = 0;
    bool magOverflow = false;
    if (s[pos] == '0') {
      ++pos;
      if (isDigit(pos))
        return fail(start, "invalid number: leading zeros are not allowed");
    } else {
      while (isDigit(pos)) {
        uint64_t digit = static_cast<uint64_t>(s[pos] - '0');
        if (mag > (std::numeric_limits<uint64_t>::max() - digit) / 10)
          magOverflow = true;
        else
          mag = mag * 10 + digit;
        ++pos;
      }
    }
    bool integral = true;
    if (pos < n && s[pos] == '.') {
      integral = false;
      ++pos;
      if (!isDigit(pos))
        return fail(pos, "invalid number: expected a digit after '.'");
      while (isDigit(pos))
        ++pos;
    }
    if (pos < n && (s[pos] == 'e' || s[pos] == 'E')) {
      integral = false;
      ++pos;
      if (pos < n && (s[pos] == '+' || s[pos] == '-'))
        ++pos;
      if (!isDigit(pos))
        return fail(pos, "invalid number: expected a digit in the exponent");
      while (isDigit(pos))
        ++pos;
    }
    std::string_view lit(s + start, pos - start);
    double value = 0.0;
    auto res = std::from_chars(lit.data(), lit.data() + lit.size(), value);
    if (res.ec == std::errc::result_out_of_range) {
      if (overflowsDouble(lit))
        return fail(start, "number " + std::string(lit.substr(0, 40)) +
                               " is out of the range of a double");
      value = negative ? -0.0 : 0.0;
    } else if (res.ec != std::errc() || res.ptr != lit.data() + lit.size()) {
      return fail(start, "invalid number");
    }
    out = Value::number(value);
    if (integral && !magOverflow) {
      constexpr uint64_t kInt64Max =
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      // "-0" stays the double -0.0 (as serde_json reads it), so that it is
      // neither a valid unsigned dim nor silently stripped of its sign.
      if (!negative)
        out = Value::unsignedInteger(mag);
      else if (mag != 0 && mag <= kInt64Max)
        out = Value::integer(-static_cast<int64_t>(mag));
      else if (mag == kInt64Max + 1) // -(2^63) fits although +2^63 does not
        out = Value::integer(std::numeric_limits<int64_t>::min());
    }
    return Status::ok();
  }
};

Status parse(std::string_view text, Value &out, const ParseOptions &options,
             size_t *errorOffset) {
  Parser parser(text, options);
  Value result;
  QC_RETURN_IF_ERROR(parser.run(result, errorOffset));
  out = std::move(result);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

namespace {

/// Serialises one value tree into a string buffer.
class Writer {
public:
  Writer(const WriteOptions &options) : opts(options) {}

  void value(const Value &v, unsigned level) {
    switch (v.kind()) {
    case Kind::Null:
      out += "null";
      return;
    case Kind::Bool:
      out += v.asBool() ? "true" : "false";
      return;
    case Kind::Number:
      number(v);
      return;
    case Kind::String:
      string(v.asString());
      return;
    case Kind::Array:
      array(v.asArray(), level);
      return;
    case Kind::Object:
      object(v.asObject(), level);
      return;
    }
  }

  std::string out;

private:
  const WriteOptions &opts;

  void newline(unsigned level) {
    if (!opts.pretty)
      return;
    out += '\n';
    out.append(static_cast<size_t>(level) * opts.indent, ' ');
  }

  void number(const Value &v) {
    char buf[64];
    std::to_chars_result r;
    if (v.isInt64()) {
      r = std::to_chars(buf, buf + sizeof(buf), v.asInt64());
    } else if (v.isUInt64()) {
      r = std::to_chars(buf, buf + sizeof(buf), v.asUInt64());
    } else if (!std::isfinite(v.asDouble())) {
      out += "null";
      return;
    } else {
      // Shortest round-trip form; locale independent, unlike printf.
      r = std::to_chars(buf, buf + sizeof(buf), v.asDouble());
    }
    out.append(buf, r.ptr);
  }

  void string(const std::string &str) {
    const auto *u = reinterpret_cast<const unsigned char *>(str.data());
    out += '"';
    size_t i = 0;
    while (i < str.size()) {
      unsigned char c = u[i];
      if (c < 0x80) {
        if (needsEscape(c))
          appendControlEscape(out, c);
        else
          out += static_cast<char>(c);
        ++i;
        continue;
      }
      size_t len = utf8SequenceLength(u + i, str.size() - i);
      if (len == 0) {
        out += "\xEF\xBF\xBD"; // U+FFFD keeps the output valid UTF-8.
        ++i;
        continue;
      }
      out.append(str.data() + i, len);
      i += len;
    }
    out += '"';
  }

  void array(const Value::Array &elems, unsigned level) {
    out += '[';
    if (elems.empty()) {
      out += ']';
      return;
    }
    for (size_t i = 0; i < elems.size(); ++i) {
      if (i)
        out += ',';
      newline(level + 1);
      value(elems[i], level + 1);
    }
    newline(level);
    out += ']';
  }

  void object(const Value::Object &members, unsigned level) {
    out += '{';
    if (members.empty()) {
      out += '}';
      return;
    }
    for (size_t i = 0; i < members.size(); ++i) {
      if (i)
        out += ',';
      newline(level + 1);
      string(members[i].first);
      out += opts.pretty ? ": " : ":";
      value(members[i].second, level + 1);
    }
    newline(level);
    out += '}';
  }
};

} // namespace

std::string write(const Value &value, const WriteOptions &options) {
  Writer w(options);
  w.value(value, 0);
  return std::move(w.out);
}

} // namespace json
} // namespace qc
