//===- Json.h - Strict JSON value, parser and writer ------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A small JSON library for the headers and configs the runtime reads from
// untrusted files: safetensors headers, Hugging Face config.json and
// model.safetensors.index.json. The parser is strict on purpose (see
// ../shared/docs/RELIABILITY.md, section 2.2 rows 3 and 8): duplicate object
// keys, invalid UTF-8, lone surrogates, excessive nesting and trailing
// garbage are errors that carry a byte offset. The writer is deterministic so
// that files we emit are byte-for-byte reproducible.
//
// Why qc keeps its own parser instead of llvm::json (which the compiler has
// at hand): every JSON file qc parses, in the runtime and in the compiler's
// importers and exporters (quantization_config, quantize_config.json,
// tokenizer.json, tokenizer_config.json), comes from a downloaded
// checkpoint, so it is untrusted. llvm::json::parse (LLVM 22) recurses
// without a depth limit -- 10^6 nested '[' (2 MB) overflow the stack and
// crash the process -- and it silently keeps the last of duplicate keys,
// both of which RELIABILITY.md forbids. The runtime must not depend on LLVM
// anyway. The writer keeps object members in insertion order, so a copied
// config.json keeps its key order (llvm::json sorts keys).
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_JSON_H
#define QC_RUNTIME_JSON_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qc {
namespace json {

/// The six JSON value kinds.
enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

/// Returns "null", "bool", "number", "string", "array" or "object"; used in
/// "expected X, found Y" messages.
const char *kindName(Kind kind);

/// A JSON document node. Objects keep their members in insertion order (so
/// a parsed document is written back in the same order) and never hold two
/// members with the same key when produced by the parser.
///
/// Numbers keep the exact int64 or uint64 value when the literal was an
/// integer that fits, and a double otherwise: safetensors shapes and offsets
/// are u64 and must not go through a double (2^53 is not enough).
///
/// A Value is 16 bytes (strings, arrays and objects live on the heap) so
/// that parsing amplifies memory by a bounded factor: the worst case, an
/// array of single-digit numbers, takes 8x the input (up to 16x while the
/// array grows), which matters for a 100 MB safetensors header.
class Value {
public:
  /// Element storage of an array.
  using Array = std::vector<Value>;
  /// One object member: key and value.
  using Member = std::pair<std::string, Value>;
  /// Member storage of an object, in insertion order.
  using Object = std::vector<Member>;

  /// A null value.
  Value() noexcept { p.u = 0; }
  /// Deep copy.
  Value(const Value &other);
  /// Takes over `other`'s payload and leaves `other` null.
  Value(Value &&other) noexcept;
  /// Deep copy assignment.
  Value &operator=(const Value &other);
  /// Move assignment; leaves `other` null.
  Value &operator=(Value &&other) noexcept;
  /// Frees the heap payload, if any.
  ~Value();

  /// A bool value.
  static Value boolean(bool b);
  /// A number that is not known to be an integer; integral doubles are still
  /// written without a fraction by the writer.
  static Value number(double d);
  /// An exact signed integer.
  static Value integer(int64_t i);
  /// An exact unsigned integer (values above INT64_MAX are kept exactly).
  static Value unsignedInteger(uint64_t u);
  /// A string value; `s` should be UTF-8 (see write()).
  static Value string(std::string s);
  /// An array value.
  static Value array(Array elements = {});
  /// An empty object value; add members with set().
  static Value object();

  /// This value's kind.
  Kind kind() const { return k; }
  bool isNull() const { return k == Kind::Null; }     ///< kind() == Null
  bool isBool() const { return k == Kind::Bool; }     ///< kind() == Bool
  bool isNumber() const { return k == Kind::Number; } ///< kind() == Number
  bool isString() const { return k == Kind::String; } ///< kind() == String
  bool isArray() const { return k == Kind::Array; }   ///< kind() == Array
  bool isObject() const { return k == Kind::Object; } ///< kind() == Object

  /// True if this is a number whose exact value fits in int64_t.
  bool isInt64() const { return k == Kind::Number && (numFlags & kHasI64); }
  /// True if this is a number whose exact value fits in uint64_t.
  bool isUInt64() const { return k == Kind::Number && (numFlags & kHasU64); }

  /// The bool; false unless isBool().
  bool asBool() const { return k == Kind::Bool && p.b; }
  /// The number as a double (nearest); 0 unless isNumber().
  double asDouble() const;
  /// The exact integer; 0 unless isInt64().
  int64_t asInt64() const;
  /// The exact unsigned integer; 0 unless isUInt64().
  uint64_t asUInt64() const;
  /// The string; empty unless isString().
  const std::string &asString() const;
  /// The elements; empty unless isArray().
  const Array &asArray() const;
  /// The members in insertion order; empty unless isObject().
  const Object &asObject() const;

  /// Object lookup: the value stored under `key`, or nullptr if this is not
  /// an object or has no such member. Linear in the member count.
  const Value *find(std::string_view key) const;

  /// Object update: replaces the value under `key` or appends a new member,
  /// keeping keys unique. Turns a null value into an object first; does
  /// nothing on any other kind.
  void set(std::string key, Value value);

  /// Array append. Turns a null value into an array first; does nothing on
  /// any other kind.
  void push(Value value);

  /// Deep structural equality. Numbers compare by exact integer when both
  /// sides have one, by double otherwise; object member order matters.
  bool operator==(const Value &other) const;
  /// Negation of operator==.
  bool operator!=(const Value &other) const { return !(*this == other); }

private:
  /// numFlags bits: which exact integer forms the number has. With either
  /// set, the payload holds the integer and the double is derived from it
  /// (both conversions round to nearest, so they agree).
  static constexpr uint8_t kHasI64 = 1, kHasU64 = 2;

  /// Releases any heap payload and becomes null.
  void reset() noexcept;

  Kind k = Kind::Null;  ///< which payload member is live
  uint8_t numFlags = 0; ///< kHasI64/kHasU64 for numbers
  /// The payload; the pointers are owned (see reset()).
  union Payload {
    bool b;         ///< Kind::Bool
    double d;       ///< Kind::Number without an exact integer
    int64_t i;      ///< Kind::Number with kHasI64
    uint64_t u;     ///< Kind::Number with only kHasU64
    std::string *s; ///< Kind::String
    Array *a;       ///< Kind::Array
    Object *o;      ///< Kind::Object
  } p;

  /// The parser fills strings, arrays and objects in place.
  friend class Parser;
};

/// Limits applied while parsing untrusted text.
struct ParseOptions {
  /// Maximum nesting of arrays and objects. Deeper documents are rejected
  /// rather than risking stack exhaustion in the recursive parser.
  unsigned maxDepth = 128;
};

/// Parses exactly one JSON value from `text` (leading and trailing
/// whitespace allowed, anything else after the value is an error) into
/// `out`. The error message has the form "JSON error at byte N: ..." and,
/// when `errorOffset` is non-null, N is also stored there. Numbers whose
/// magnitude overflows a double are rejected; ones that underflow become 0.
Status parse(std::string_view text, Value &out,
             const ParseOptions &options = {}, size_t *errorOffset = nullptr);

/// Formatting choices for write().
struct WriteOptions {
  /// Multi-line output with `indent` spaces per level; otherwise no
  /// whitespace at all (the compact form the safetensors header uses).
  bool pretty = false;
  /// Spaces per nesting level when pretty.
  unsigned indent = 2;
};

/// Serialises `value`. Deterministic: members are written in insertion order
/// and numbers in the shortest form that reads back to the same double (exact
/// integers as integers). JSON cannot express NaN or infinity, so non-finite
/// numbers are written as `null`, as JavaScript's JSON.stringify does.
/// Invalid UTF-8 inside strings is replaced by U+FFFD so that the output is
/// always valid JSON. No trailing newline is added.
std::string write(const Value &value, const WriteOptions &options = {});

/// Returns true if `data[0, size)` is well-formed UTF-8 (no overlong forms,
/// no surrogates, nothing above U+10FFFF). On failure, when `badOffset` is
/// non-null, stores the offset of the first byte of the bad sequence.
bool isValidUtf8(const char *data, size_t size, size_t *badOffset = nullptr);

/// Renders untrusted text (a key or tensor name) for an error message: a
/// JSON-quoted string with control and non-UTF-8 bytes escaped, cut to at
/// most `maxBytes` bytes of content followed by "..." when longer.
std::string quote(std::string_view text, size_t maxBytes = 120);

} // namespace json
} // namespace qc

#endif // QC_RUNTIME_JSON_H
