//===- Npy.cpp - NumPy .npy files, read strictly and written --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "Npy.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

namespace qc::npy {

namespace {

/// Reads larger than this are refused before allocating.
constexpr uint64_t kMaxBytes = uint64_t(1) << 36;

const std::map<std::string, DType> &dtypeNames() {
  static const std::map<std::string, DType> m = {
      {"bool", {'b', 1}},    {"f16", {'f', 2}},     {"float16", {'f', 2}},
      {"f32", {'f', 4}},     {"float32", {'f', 4}}, {"f64", {'f', 8}},
      {"float64", {'f', 8}}, {"i8", {'i', 1}},      {"int8", {'i', 1}},
      {"i16", {'i', 2}},     {"int16", {'i', 2}},   {"i32", {'i', 4}},
      {"int32", {'i', 4}},   {"i64", {'i', 8}},     {"int64", {'i', 8}},
      {"u8", {'u', 1}},      {"uint8", {'u', 1}},   {"u16", {'u', 2}},
      {"uint16", {'u', 2}},  {"u32", {'u', 4}},     {"uint32", {'u', 4}},
      {"u64", {'u', 8}},     {"uint64", {'u', 8}},
  };
  return m;
}

/// A strict parser of the header dict, e.g.
///   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
public:
  explicit HeaderParser(const std::string &text) : t(text) {}

  Status parse(std::string &descr, bool &fortran,
               std::vector<uint64_t> &shape) {
    bool haveDescr = false, haveFortran = false, haveShape = false;
    skip();
    if (!eat('{'))
      return err("the header is not a dict (expected '{')");
    skip();
    while (!peek('}')) {
      std::string key;
      QC_RETURN_IF_ERROR(string(key));
      skip();
      if (!eat(':'))
        return err("expected ':' after key '" + key + "'");
      skip();
      if (key == "descr") {
        if (haveDescr)
          return err("duplicate key 'descr'");
        haveDescr = true;
        if (peek('['))
          return err("structured dtypes are not supported");
        QC_RETURN_IF_ERROR(string(descr));
      } else if (key == "fortran_order") {
        if (haveFortran)
          return err("duplicate key 'fortran_order'");
        haveFortran = true;
        if (word("True"))
          fortran = true;
        else if (word("False"))
          fortran = false;
        else
          return err("'fortran_order' must be True or False");
      } else if (key == "shape") {
        if (haveShape)
          return err("duplicate key 'shape'");
        haveShape = true;
        QC_RETURN_IF_ERROR(tuple(shape));
      } else {
        return err("unexpected key '" + key + "'");
      }
      skip();
      if (eat(',')) {
        skip();
        continue;
      }
      if (!peek('}'))
        return err("expected ',' or '}' after the value of '" + key + "'");
    }
    eat('}');
    // Only padding may follow: spaces and the final newline.
    for (; i < t.size(); ++i)
      if (t[i] != ' ' && t[i] != '\n' && t[i] != '\r' && t[i] != '\t' &&
          t[i] != '\0')
        return err("unexpected text after the header dict");
    if (!haveDescr || !haveFortran || !haveShape)
      return err(std::string("the header lacks the key '") +
                 (!haveDescr     ? "descr"
                  : !haveFortran ? "fortran_order"
                                 : "shape") +
                 "'");
    return Status::ok();
  }

private:
  Status err(const std::string &m) const {
    return Status::error("header: " + m + " (at character " +
                         std::to_string(i) + ")");
  }
  void skip() {
    while (i < t.size() &&
           (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
      ++i;
  }
  bool peek(char c) const { return i < t.size() && t[i] == c; }
  bool eat(char c) {
    if (!peek(c))
      return false;
    ++i;
    return true;
  }
  bool word(const char *w) {
    size_t n = std::strlen(w);
    if (t.compare(i, n, w) != 0)
      return false;
    i += n;
    return true;
  }
  Status string(std::string &out) {
    if (i >= t.size() || (t[i] != '\'' && t[i] != '"'))
      return err("expected a quoted string");
    char q = t[i++];
    out.clear();
    while (i < t.size() && t[i] != q) {
      if (t[i] == '\\' || !std::isprint(static_cast<unsigned char>(t[i])))
        return err("unsupported character in a string");
      out += t[i++];
    }
    if (!eat(q))
      return err("unterminated string");
    return Status::ok();
  }
  Status tuple(std::vector<uint64_t> &out) {
    out.clear();
    if (!eat('('))
      return err("'shape' must be a tuple");
    skip();
    bool comma = false; // (3) is not a tuple, (3,) is
    while (!peek(')')) {
      if (i >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i])))
        return err("'shape' entries must be non-negative integers");
      uint64_t v = 0;
      while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
        if (v > (kMaxBytes - 9) / 10)
          return err("a 'shape' entry is too large");
        v = v * 10 + uint64_t(t[i++] - '0');
      }
      if (i < t.size() && (t[i] == 'L' || t[i] == 'l'))
        ++i; // Python 2 long suffix, written by old NumPy
      out.push_back(v);
      skip();
      comma = false;
      if (eat(',')) {
        comma = true;
        skip();
        continue;
      }
      if (!peek(')'))
        return err("expected ',' or ')' in 'shape'");
    }
    eat(')');
    if (out.size() == 1 && !comma)
      return err("'shape' (n) must be written (n,)");
    if (out.size() > 32)
      return err("'shape' has more than 32 dimensions");
    return Status::ok();
  }

  const std::string &t;
  size_t i = 0;
};

Status parseDescr(const std::string &d, DType &out) {
  if (d.size() < 3)
    return Status::error("unsupported dtype '" + d + "'");
  char order = d[0], kind = d[1];
  const std::string digits = d.substr(2);
  if (digits.empty() || digits.size() > 2 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return Status::error("unsupported dtype '" + d + "'");
  uint32_t size = uint32_t(std::stoul(digits));
  bool ok = (kind == 'b' && size == 1) ||
            ((kind == 'i' || kind == 'u') &&
             (size == 1 || size == 2 || size == 4 || size == 8)) ||
            (kind == 'f' && (size == 2 || size == 4 || size == 8));
  if (!ok)
    return Status::error("unsupported dtype '" + d +
                         "' (booleans, integers and IEEE floats only)");
  if (order == '>' && size > 1)
    return Status::error("big-endian dtype '" + d + "' is not supported");
  if (order != '<' && order != '|' && order != '=' && order != '>')
    return Status::error("unsupported byte order in dtype '" + d + "'");
  out.kind = kind;
  out.size = size;
  return Status::ok();
}

std::string shapeText(const std::vector<uint64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

} // namespace

std::string DType::descr() const {
  return std::string(size == 1 ? "|" : "<") + kind + std::to_string(size);
}

std::string DType::name() const {
  if (kind == 'b')
    return "bool";
  return std::string(kind == 'f'   ? "float"
                     : kind == 'i' ? "int"
                                   : "uint") +
         std::to_string(size * 8);
}

Status parseDTypeName(const std::string &name, DType &out) {
  auto it = dtypeNames().find(name);
  if (it == dtypeNames().end())
    return Status::error("unknown dtype \"" + name +
                         "\" (f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, "
                         "u64, bool)");
  out = it->second;
  return Status::ok();
}

uint64_t Array::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape)
    n *= d;
  return n;
}

Status parse(const std::vector<uint8_t> &b, const std::string &name,
             Array &out) {
  auto fail = [&](const std::string &m) {
    return Status::error(name + ": not a valid .npy file: " + m);
  };
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    return fail("bad magic (expected \\x93NUMPY)");
  const uint8_t major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    return fail("unsupported format version " + std::to_string(major) + "." +
                std::to_string(minor));
  uint64_t hlen, start;
  if (major == 1) {
    hlen = uint64_t(b[8]) | uint64_t(b[9]) << 8;
    start = 10;
  } else {
    if (b.size() < 12)
      return fail("header length cut short");
    hlen = uint64_t(b[8]) | uint64_t(b[9]) << 8 | uint64_t(b[10]) << 16 |
           uint64_t(b[11]) << 24;
    start = 12;
  }
  if (hlen > b.size() - start)
    return fail("header length " + std::to_string(hlen) +
                " exceeds the file (" + std::to_string(b.size()) + " bytes)");
  std::string header(reinterpret_cast<const char *>(b.data() + start),
                     size_t(hlen));
  std::string descr;
  bool fortran = false;
  std::vector<uint64_t> shape;
  Status st = HeaderParser(header).parse(descr, fortran, shape);
  if (!st)
    return fail(st.message());
  DType dt;
  st = parseDescr(descr, dt);
  if (!st)
    return fail(st.message());
  if (fortran) {
    bool trivial = true; // Fortran order equals C order for <= 1 dimension
    int big = 0;
    for (uint64_t d : shape)
      big += d > 1;
    trivial = big <= 1;
    if (!trivial)
      return fail("Fortran-order arrays are not supported (save with "
                  "np.ascontiguousarray)");
  }
  uint64_t n = 1;
  for (uint64_t d : shape) {
    if (d && n > kMaxBytes / d)
      return fail("shape " + shapeText(shape) + " is too large");
    n *= d;
  }
  if (n > kMaxBytes / dt.size)
    return fail("shape " + shapeText(shape) + " is too large");
  const uint64_t need = n * dt.size, have = b.size() - start - hlen;
  if (have != need)
    return fail("the data is " + std::to_string(have) + " bytes but shape " +
                shapeText(shape) + " of " + dt.name() + " needs " +
                std::to_string(need));
  out.dtype = dt;
  out.shape = std::move(shape);
  out.data.assign(b.begin() + long(start + hlen), b.end());
  return Status::ok();
}

Status read(const std::string &path, Array &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Status::error(path + ": cannot open");
  f.seekg(0, std::ios::end);
  std::streamoff size = f.tellg();
  if (size < 0 || uint64_t(size) > kMaxBytes)
    return Status::error(path + ": cannot read (or larger than 64 GiB)");
  f.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size && !f.read(reinterpret_cast<char *>(bytes.data()), size))
    return Status::error(path + ": read error");
  return parse(bytes, path, out);
}

std::vector<uint8_t> serialize(const Array &a) {
  std::string h = "{'descr': '" + a.dtype.descr() +
                  "', 'fortran_order': False, 'shape': " + shapeText(a.shape) +
                  ", }";
  // Pad with spaces so that the data starts on a 64-byte boundary; the
  // header ends with a newline.
  bool v2 = h.size() + 11 > 65535;
  size_t pre = v2 ? 12 : 10;
  size_t total = (pre + h.size() + 1 + 63) / 64 * 64;
  h.append(total - pre - h.size() - 1, ' ');
  h += '\n';
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(v2 ? 2 : 1),
                            0};
  uint64_t len = h.size();
  b.push_back(uint8_t(len));
  b.push_back(uint8_t(len >> 8));
  if (v2) {
    b.push_back(uint8_t(len >> 16));
    b.push_back(uint8_t(len >> 24));
  }
  b.insert(b.end(), h.begin(), h.end());
  b.insert(b.end(), a.data.begin(), a.data.end());
  return b;
}

Status write(const std::string &path, const Array &a) {
  std::vector<uint8_t> b = serialize(a);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f || !f.write(reinterpret_cast<const char *>(b.data()),
                     std::streamsize(b.size())))
    return Status::error(path + ": cannot write");
  f.close();
  if (!f)
    return Status::error(path + ": cannot write");
  return Status::ok();
}

} // namespace qc::npy
