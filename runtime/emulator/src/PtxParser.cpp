//===- PtxParser.cpp - PTX text to the decoded instruction form -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A tokenizer and recursive-descent parser for the PTX ISA's module syntax
// (PTX ISA "Syntax", "State Spaces, Types, and
// Variables", chapter 11 "Directives") restricted to what a single-module,
// non-calling kernel uses: .version/.target/.address_size, .entry/.func with
// .param lists, .reg (including `%r<N>` ranges), variables in the
// .global/.const/.shared/.local spaces (with .align, arrays and initializers),
// `extern .shared` arrays, scoped `{ }` blocks, labels, guards, vector and
// address operands, and the performance-tuning and debug directives. Each
// instruction is decoded on the spot (Ptx.h); anything this parser does not
// understand is an error naming the line, so no instruction is ever skipped.
//
//===----------------------------------------------------------------------===//

#include "Float.h"
#include "Ptx.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace qc::emu {

unsigned tySize(Ty t) {
  switch (t) {
  case Ty::B8:
  case Ty::U8:
  case Ty::S8:
  case Ty::Pred:
    return 1;
  case Ty::B16:
  case Ty::U16:
  case Ty::S16:
  case Ty::F16:
  case Ty::BF16:
    return 2;
  case Ty::B32:
  case Ty::U32:
  case Ty::S32:
  case Ty::F32:
  case Ty::F16x2:
  case Ty::BF16x2:
    return 4;
  case Ty::B64:
  case Ty::U64:
  case Ty::S64:
  case Ty::F64:
    return 8;
  case Ty::B128:
    return 16;
  case Ty::None:
    return 0;
  }
  return 0;
}

bool tyIsSigned(Ty t) {
  return t == Ty::S8 || t == Ty::S16 || t == Ty::S32 || t == Ty::S64;
}

bool tyIsFloat(Ty t) {
  return t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2 ||
         t == Ty::F32 || t == Ty::F64;
}

static const struct {
  const char *name;
  Ty ty;
} kTypes[] = {
    {"b8", Ty::B8},     {"b16", Ty::B16},       {"b32", Ty::B32},
    {"b64", Ty::B64},   {"b128", Ty::B128},     {"u8", Ty::U8},
    {"u16", Ty::U16},   {"u32", Ty::U32},       {"u64", Ty::U64},
    {"s8", Ty::S8},     {"s16", Ty::S16},       {"s32", Ty::S32},
    {"s64", Ty::S64},   {"f16", Ty::F16},       {"f16x2", Ty::F16x2},
    {"bf16", Ty::BF16}, {"bf16x2", Ty::BF16x2}, {"f32", Ty::F32},
    {"f64", Ty::F64},   {"pred", Ty::Pred},
};

const char *tyName(Ty t) {
  for (auto &e : kTypes)
    if (e.ty == t)
      return e.name;
  return "none";
}

static bool lookupTy(const std::string &s, Ty &t) {
  for (auto &e : kTypes)
    if (s == e.name) {
      t = e.ty;
      return true;
    }
  return false;
}

const char *spaceName(Space s) {
  switch (s) {
  case Space::Generic:
    return "generic";
  case Space::Global:
    return "global";
  case Space::Shared:
    return "shared";
  case Space::Param:
    return "param";
  case Space::Local:
    return "local";
  case Space::Const:
    return "const";
  }
  return "?";
}

namespace {

/// Placeholder address of extern (dynamic) shared arrays until the static
/// shared size of the function is known.
constexpr uint64_t kExternMarker = uint64_t(1) << 40;

//===----------------------------------------------------------------------===//
// Tokens
//===----------------------------------------------------------------------===//

struct Tok {
  enum Kind { Id, Num, Str, Punct, End } kind = End;
  std::string s;
  uint32_t line = 0;
};

bool isIdStart(char c) {
  return std::isalpha((unsigned char)c) || c == '_' || c == '$' || c == '%' ||
         c == '.';
}
bool isIdChar(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '$' || c == '%' ||
         c == '.' || c == ':';
}

/// Splits PTX text into tokens (PTX ISA "Syntax": source format, comments,
/// statements). `::` inside an identifier is kept (e.g. `.shared::cta`,
/// `.L2::128B`); a label's trailing ':' is split off by the parser.
Status tokenize(const std::string &text, const std::string &name,
                std::vector<Tok> &toks) {
  uint32_t line = 1;
  size_t i = 0, n = text.size();
  while (i < n) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && text[i + 1] == '/') {
      while (i < n && text[i] != '\n')
        ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && text[i + 1] == '*') {
      i += 2;
      while (i + 1 < n && !(text[i] == '*' && text[i + 1] == '/')) {
        if (text[i] == '\n')
          ++line;
        ++i;
      }
      if (i + 1 >= n)
        return Status::error(name + ":" + std::to_string(line) +
                             ": unterminated /* comment");
      i += 2;
      continue;
    }
    Tok t;
    t.line = line;
    if (c == '"') {
      size_t j = i + 1;
      while (j < n && text[j] != '"' && text[j] != '\n')
        ++j;
      if (j >= n || text[j] != '"')
        return Status::error(name + ":" + std::to_string(line) +
                             ": unterminated string");
      t.kind = Tok::Str;
      t.s = text.substr(i + 1, j - i - 1);
      i = j + 1;
    } else if (isIdStart(c)) {
      size_t j = i;
      while (j < n && isIdChar(text[j])) {
        // A single ':' ends the identifier (label definition); '::' is part
        // of qualified modifiers like .shared::cta.
        if (text[j] == ':') {
          if (j + 1 < n && text[j + 1] == ':') {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      t.kind = Tok::Id;
      t.s = text.substr(i, j - i);
      i = j;
    } else if (std::isdigit((unsigned char)c)) {
      size_t j = i;
      bool hex =
          c == '0' && j + 1 < n &&
          (text[j + 1] == 'x' || text[j + 1] == 'X' || text[j + 1] == 'f' ||
           text[j + 1] == 'F' || text[j + 1] == 'd' || text[j + 1] == 'D');
      while (j < n) {
        char d = text[j];
        if (std::isalnum((unsigned char)d) || d == '.') {
          ++j;
        } else if (!hex && (d == '+' || d == '-') &&
                   (text[j - 1] == 'e' || text[j - 1] == 'E')) {
          ++j;
        } else {
          break;
        }
      }
      t.kind = Tok::Num;
      t.s = text.substr(i, j - i);
      i = j;
    } else if (std::strchr(",;:[]{}()+-!@|<>=*", c)) {
      t.kind = Tok::Punct;
      t.s = std::string(1, c);
      ++i;
    } else {
      return Status::error(name + ":" + std::to_string(line) +
                           ": unexpected character '" + std::string(1, c) +
                           "'");
    }
    toks.push_back(std::move(t));
  }
  Tok end;
  end.line = line;
  toks.push_back(end);
  return Status::ok();
}

/// A numeric literal (PTX ISA "Constants": integer constants in
/// decimal/hex/octal/binary, floating-point constants in decimal or as
/// 0fXXXXXXXX (f32 bits) / 0dXXXXXXXXXXXXXXXX (f64 bits)).
struct Literal {
  bool isFloat = false;
  bool exactF32 = false; // 0f form: use the bits as given for .f32
  double f = 0;
  uint64_t bits = 0; // integer value (two's complement) or 0f/0d bits
};

bool parseLiteral(const std::string &s, bool negative, Literal &lit) {
  auto parseDigits = [&](size_t from, unsigned base, uint64_t &v) {
    if (from >= s.size())
      return false;
    v = 0;
    for (size_t k = from; k < s.size(); ++k) {
      char c = s[k];
      if ((c == 'U' || c == 'u') && k + 1 == s.size())
        break;
      unsigned d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        return false;
      if (d >= base)
        return false;
      v = v * base + d;
    }
    return true;
  };
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'f' || s[1] == 'F')) {
    uint64_t v = 0;
    if (s.size() != 10 || !parseDigits(2, 16, v))
      return false;
    uint32_t b = uint32_t(v) ^ (negative ? 0x80000000u : 0);
    float f;
    std::memcpy(&f, &b, 4);
    lit.isFloat = true;
    lit.exactF32 = true;
    lit.f = f;
    lit.bits = b;
    return true;
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'd' || s[1] == 'D')) {
    uint64_t v = 0;
    if (s.size() != 18 || !parseDigits(2, 16, v))
      return false;
    v ^= negative ? 0x8000000000000000ull : 0;
    double f;
    std::memcpy(&f, &v, 8);
    lit.isFloat = true;
    lit.f = f;
    lit.bits = v;
    return true;
  }
  uint64_t v = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (!parseDigits(2, 16, v))
      return false;
  } else if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
    if (!parseDigits(2, 2, v))
      return false;
  } else if (s.find_first_of(".eE") != std::string::npos) {
    char *end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!end || *end)
      return false;
    lit.isFloat = true;
    lit.f = negative ? -d : d;
    return true;
  } else if (s.size() > 1 && s[0] == '0') {
    if (!parseDigits(1, 8, v))
      return false;
  } else if (!parseDigits(0, 10, v)) {
    return false;
  }
  lit.bits = negative ? uint64_t(0) - v : v;
  return true;
}

//===----------------------------------------------------------------------===//
// Raw operands (before the instruction's types are known)
//===----------------------------------------------------------------------===//

struct RawOp {
  enum Kind { Reg, Imm, Vec, Addr, Name, Special } kind = Reg;
  bool neg = false;       // !%p
  uint32_t reg = kNoReg;  // Reg; Addr base
  uint32_t reg2 = kNoReg; // second register after '|'
  Sreg sreg = Sreg::TidX;
  Literal lit;              // Imm
  std::string name;         // Name; Addr symbol
  int64_t offset = 0;       // Addr
  std::vector<RawOp> elems; // Vec
};

const struct {
  const char *name;
  Sreg sreg;
} kSregs[] = {
    {"%tid.x", Sreg::TidX},
    {"%tid.y", Sreg::TidY},
    {"%tid.z", Sreg::TidZ},
    {"%ntid.x", Sreg::NtidX},
    {"%ntid.y", Sreg::NtidY},
    {"%ntid.z", Sreg::NtidZ},
    {"%ctaid.x", Sreg::CtaidX},
    {"%ctaid.y", Sreg::CtaidY},
    {"%ctaid.z", Sreg::CtaidZ},
    {"%nctaid.x", Sreg::NctaidX},
    {"%nctaid.y", Sreg::NctaidY},
    {"%nctaid.z", Sreg::NctaidZ},
    {"%laneid", Sreg::LaneId},
    {"%warpid", Sreg::WarpId},
    {"%nwarpid", Sreg::NWarpId},
    {"%smid", Sreg::SmId},
    {"%nsmid", Sreg::NSmId},
    {"%gridid", Sreg::GridId},
    {"%clock", Sreg::Clock},
    {"%clock64", Sreg::Clock64},
    {"%dynamic_smem_size", Sreg::DynSmem},
    {"%total_smem_size", Sreg::TotalSmem},
    {"%lanemask_eq", Sreg::LanemaskEq},
    {"%lanemask_lt", Sreg::LanemaskLt},
    {"%lanemask_le", Sreg::LanemaskLe},
    {"%lanemask_gt", Sreg::LanemaskGt},
    {"%lanemask_ge", Sreg::LanemaskGe},
    {"%globaltimer", Sreg::GlobalTimer},
};

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

class Parser {
public:
  Parser(const std::vector<Tok> &toks, const std::string &name, Arch arch,
         const std::function<Status(Variable &)> &allocGlobal,
         ParsedModule &mod)
      : toks(toks), name(name), arch(arch), allocGlobal(allocGlobal), mod(mod) {
  }

  Status parseModule();

private:
  const std::vector<Tok> &toks;
  const std::string &name;
  Arch arch;
  const std::function<Status(Variable &)> &allocGlobal;
  ParsedModule &mod;
  size_t pos = 0;

  // Per-function state.
  Function *fn = nullptr;
  std::vector<std::unordered_map<std::string, uint32_t>> regScopes;
  std::unordered_map<std::string, uint32_t> labels;
  struct Fixup {
    size_t inst;
    unsigned op;
    std::string label;
    uint32_t line;
  };
  std::vector<Fixup> fixups;
  /// Function-scope .shared/.local variables and module-scope .shared
  /// variables this function refers to, with their offsets.
  std::unordered_map<std::string, Variable> fnVars;
  uint32_t sharedTop = 0, localTop = 0, externAlign = 16;
  /// Operands that hold the address of an extern .shared array: patched with
  /// the dynamic shared base once the static size is known.
  Status placeVar(Variable v, uint32_t line);

  const Tok &cur() const { return toks[pos]; }
  const Tok &peek(size_t k = 1) const {
    return toks[std::min(pos + k, toks.size() - 1)];
  }
  bool isP(const char *p) const {
    return cur().kind == Tok::Punct && cur().s == p;
  }
  bool isId(const char *s) const {
    return cur().kind == Tok::Id && cur().s == s;
  }
  Status err(const std::string &msg) const { return errAt(cur().line, msg); }
  Status errAt(uint32_t line, const std::string &msg) const {
    return Status::error(name + ":" + std::to_string(line) + ": " + msg);
  }
  Status expectP(const char *p) {
    if (!isP(p))
      return err(std::string("expected '") + p + "', found '" +
                 (cur().kind == Tok::End ? "end of file" : cur().s) + "'");
    ++pos;
    return Status::ok();
  }
  Status expectNum(uint64_t &v) {
    bool neg = false;
    if (isP("-")) {
      neg = true;
      ++pos;
    }
    Literal lit;
    if (cur().kind != Tok::Num || !parseLiteral(cur().s, neg, lit) ||
        lit.isFloat)
      return err("expected an integer, found '" + cur().s + "'");
    v = lit.bits;
    ++pos;
    return Status::ok();
  }

  Status parseVersionEtc();
  Status parseVariable(Space space, bool isExtern, bool moduleScope);
  Status parseFunction(bool isEntry);
  Status parseParams();
  Status parseBody();
  Status parseRegDecl();
  Status parseStatement();
  Status parseOperand(RawOp &op);
  Status parseInstruction(uint32_t guard, bool guardNeg);
  Status decode(const std::string &opcode, std::vector<RawOp> &raw,
                uint32_t line, Inst &in);
  Status lookupReg(const std::string &r, uint32_t &idx) const;
  Status symbolAddress(const std::string &sym, uint32_t line, Space &space,
                       uint64_t &addr);
  Status immFor(const RawOp &r, Ty ty, uint32_t line, uint64_t &bits) const;
  Status toOperand(const RawOp &r, Ty ty, uint32_t line, Operand &o);
};

Status Parser::parseModule() {
  while (cur().kind != Tok::End) {
    if (cur().kind != Tok::Id)
      return err("unexpected '" + cur().s + "' at module scope");
    const std::string d = cur().s;
    if (d == ".version" || d == ".target" || d == ".address_size") {
      QC_RETURN_IF_ERROR(parseVersionEtc());
      continue;
    }
    if (d == ".file") {
      // .file N "name" [, timestamp, size]: debug information, no effect.
      ++pos;
      while (cur().kind != Tok::End &&
             !(cur().kind == Tok::Id && cur().s[0] == '.') &&
             cur().line == toks[pos - 1].line)
        ++pos;
      continue;
    }
    if (d == ".section")
      return err(".section (DWARF debug sections) is not supported by the "
                 "emulator; generate PTX without -g");
    bool isExtern = false;
    while (cur().kind == Tok::Id &&
           (cur().s == ".visible" || cur().s == ".extern" ||
            cur().s == ".weak" || cur().s == ".common")) {
      isExtern |= cur().s == ".extern";
      ++pos;
    }
    if (isId(".entry")) {
      ++pos;
      QC_RETURN_IF_ERROR(parseFunction(true));
    } else if (isId(".func")) {
      ++pos;
      QC_RETURN_IF_ERROR(parseFunction(false));
    } else if (isId(".global")) {
      ++pos;
      QC_RETURN_IF_ERROR(parseVariable(Space::Global, isExtern, true));
    } else if (isId(".const")) {
      ++pos;
      QC_RETURN_IF_ERROR(parseVariable(Space::Const, isExtern, true));
    } else if (isId(".shared")) {
      ++pos;
      QC_RETURN_IF_ERROR(parseVariable(Space::Shared, isExtern, true));
    } else {
      return err("unsupported module-level directive '" + cur().s + "'");
    }
  }
  if (mod.target.empty())
    return Status::error(name + ": no .target directive");
  return Status::ok();
}

Status Parser::parseVersionEtc() {
  const std::string d = cur().s;
  uint32_t line = cur().line;
  ++pos;
  if (d == ".version") {
    if (cur().kind != Tok::Num)
      return err("expected a version number after .version");
    std::string v = cur().s;
    ++pos;
    size_t dot = v.find('.');
    if (dot == std::string::npos)
      return errAt(line, "malformed .version '" + v + "'");
    mod.versionMajor = std::stoul(v.substr(0, dot));
    mod.versionMinor = std::stoul(v.substr(dot + 1));
    return Status::ok();
  }
  if (d == ".address_size") {
    uint64_t v = 0;
    QC_RETURN_IF_ERROR(expectNum(v));
    if (v != 64)
      return errAt(line, ".address_size " + std::to_string(v) +
                             " is not supported (only 64)");
    mod.addressSize = 64;
    return Status::ok();
  }
  // .target sm_XX[, texmode..., debug]
  bool first = true;
  while (first || isP(",")) {
    if (!first)
      ++pos;
    first = false;
    if (cur().kind != Tok::Id)
      return err("expected a target name after .target");
    std::string t = cur().s;
    ++pos;
    if (t == "debug")
      return errAt(line, ".target debug is not supported by the emulator");
    if (t.rfind("texmode", 0) == 0 || t == "map_f64_to_f32")
      continue;
    if (t.rfind("sm_", 0) != 0)
      return errAt(line, "unsupported .target '" + t + "'");
    mod.target = t;
    unsigned cc = 0;
    size_t k = 3;
    while (k < t.size() && std::isdigit((unsigned char)t[k]))
      cc = cc * 10 + (t[k++] - '0');
    std::string sfx = t.substr(k);
    unsigned devCc = arch == Arch::SM80 ? 80 : 90;
    bool ok = cc <= devCc && (sfx.empty() || (sfx == "a" && cc == devCc));
    if (!ok)
      return errAt(line, "module targets " + t + ", which the emulated " +
                             archName(arch) + " device cannot run");
  }
  return Status::ok();
}

Status Parser::parseVariable(Space space, bool isExtern, bool moduleScope) {
  Variable v;
  v.space = space;
  uint32_t line = cur().line;
  Ty ty = Ty::None;
  unsigned vecN = 1;
  while (cur().kind == Tok::Id && cur().s[0] == '.') {
    std::string m = cur().s.substr(1);
    ++pos;
    if (m == "align") {
      uint64_t a = 0;
      QC_RETURN_IF_ERROR(expectNum(a));
      if (a == 0 || (a & (a - 1)))
        return errAt(line,
                     ".align " + std::to_string(a) + " is not a power of two");
      v.align = uint32_t(a);
    } else if (m == "v2" || m == "v4") {
      vecN = m == "v2" ? 2 : 4;
    } else if (m == "ptr" || m == "global" || m == "shared" || m == "const" ||
               m == "local") {
      // .ptr attributes of params are informational.
    } else if (!lookupTy(m, ty)) {
      return errAt(line, "unsupported variable attribute '." + m + "'");
    }
  }
  if (ty == Ty::None || ty == Ty::Pred)
    return errAt(line, "variable declaration without a data type");
  if (cur().kind != Tok::Id)
    return err("expected a variable name");
  v.name = cur().s;
  ++pos;
  uint64_t elem = uint64_t(tySize(ty)) * vecN;
  uint64_t count = 1;
  bool unsized = false;
  while (isP("[")) {
    ++pos;
    if (isP("]")) {
      unsized = true;
      ++pos;
      continue;
    }
    uint64_t n = 0;
    QC_RETURN_IF_ERROR(expectNum(n));
    QC_RETURN_IF_ERROR(expectP("]"));
    count *= n;
  }
  if (v.align < elem && elem <= 16)
    v.align = uint32_t(elem);
  if (v.align == 0)
    v.align = 1;
  v.size = elem * count;
  if (isP("=")) {
    ++pos;
    // Initializer: a scalar or a brace list of scalars (PTX ISA
    // "Initializers"); stored little-endian.
    std::vector<Literal> vals;
    bool brace = isP("{");
    if (brace)
      ++pos;
    while (true) {
      bool neg = false;
      if (isP("-")) {
        neg = true;
        ++pos;
      }
      Literal lit;
      if (cur().kind != Tok::Num || !parseLiteral(cur().s, neg, lit))
        return err("unsupported initializer element '" + cur().s + "'");
      ++pos;
      vals.push_back(lit);
      if (!brace || !isP(","))
        break;
      ++pos;
    }
    if (brace)
      QC_RETURN_IF_ERROR(expectP("}"));
    if (unsized) {
      count = vals.size() / vecN;
      v.size = elem * count;
    }
    if (vals.size() > count * vecN)
      return errAt(line, "too many initializer elements for '" + v.name + "'");
    v.init.assign(v.size, 0);
    unsigned es = tySize(ty);
    for (size_t k = 0; k < vals.size(); ++k) {
      uint64_t bits = vals[k].bits;
      if (ty == Ty::F32) {
        float f = float(vals[k].isFloat ? vals[k].f : double(int64_t(bits)));
        uint32_t b;
        std::memcpy(&b, &f, 4);
        bits = vals[k].exactF32 ? vals[k].bits : b;
      } else if (ty == Ty::F64) {
        double f = vals[k].isFloat ? vals[k].f : double(int64_t(bits));
        std::memcpy(&bits, &f, 8);
      } else if (vals[k].isFloat) {
        return errAt(line, "float initializer for an integer variable");
      }
      std::memcpy(&v.init[k * es], &bits, es);
    }
  } else if (unsized && !(space == Space::Shared && isExtern)) {
    return errAt(line, "array '" + v.name + "' has no size");
  }
  QC_RETURN_IF_ERROR(expectP(";"));
  if (space == Space::Shared && isExtern) {
    v.isExternShared = true;
    v.size = 0;
  }
  if (moduleScope) {
    if (space == Space::Global || space == Space::Const) {
      QC_RETURN_IF_ERROR(
          allocGlobal(v).withContext(name + ":" + std::to_string(line)));
      mod.globals.push_back(v);
    } else {
      // Module-scope .shared: each kernel that uses it gets its own copy
      // (per-CTA); laid out per function at first use.
      mod.globals.push_back(v);
    }
  } else {
    if (space != Space::Shared && space != Space::Local)
      return errAt(line, std::string("a .") + spaceName(space) +
                             " variable inside a function is not supported");
    QC_RETURN_IF_ERROR(placeVar(v, line));
  }
  return Status::ok();
}

Status Parser::parseFunction(bool isEntry) {
  mod.functions.emplace_back();
  fn = &mod.functions.back();
  fn->isEntry = isEntry;
  fn->firstLine = cur().line;
  regScopes.clear();
  regScopes.emplace_back();
  labels.clear();
  fixups.clear();
  fnVars.clear();
  sharedTop = localTop = 0;
  externAlign = 16;
  if (!isEntry && isP("(")) {
    // Return parameters of a .func.
    return err(".func with return values is not supported (no call support)");
  }
  if (cur().kind != Tok::Id)
    return err("expected a function name");
  fn->name = cur().s;
  ++pos;
  if (isP("(")) {
    ++pos;
    QC_RETURN_IF_ERROR(parseParams());
  }
  // Performance-tuning directives (PTX ISA "Performance-Tuning Directives").
  while (cur().kind == Tok::Id && cur().s[0] == '.') {
    std::string d = cur().s;
    uint32_t line = cur().line;
    ++pos;
    if (d == ".maxntid" || d == ".reqntid") {
      uint32_t *dst = d == ".maxntid" ? fn->maxntid : fn->reqntid;
      dst[0] = dst[1] = dst[2] = 1;
      for (int k = 0; k < 3; ++k) {
        uint64_t v = 0;
        QC_RETURN_IF_ERROR(expectNum(v));
        dst[k] = uint32_t(v);
        if (!isP(","))
          break;
        ++pos;
      }
    } else if (d == ".minnctapersm" || d == ".maxnreg" ||
               d == ".maxclusterrank" || d == ".maxnctapersm") {
      uint64_t v = 0;
      QC_RETURN_IF_ERROR(expectNum(v));
    } else if (d == ".reqnctapercluster" || d == ".explicitcluster") {
      return errAt(line, d + " (clusters) is not supported by the emulator");
    } else if (d == ".pragma") {
      if (cur().kind != Tok::Str)
        return err("expected a string after .pragma");
      ++pos;
      QC_RETURN_IF_ERROR(expectP(";"));
    } else if (d == ".noreturn") {
    } else {
      return errAt(line, "unsupported function directive '" + d + "'");
    }
  }
  if (isP(";")) { // a declaration without body
    ++pos;
    mod.functions.pop_back();
    return Status::ok();
  }
  QC_RETURN_IF_ERROR(expectP("{"));
  QC_RETURN_IF_ERROR(parseBody());
  // Resolve branch targets.
  for (const Fixup &f : fixups) {
    auto it = labels.find(f.label);
    if (it == labels.end())
      return errAt(f.line, "undefined label '" + f.label + "'");
    fn->code[f.inst].ops[f.op].imm = it->second;
  }
  // Dynamic shared memory (extern .shared arrays) starts after the static
  // variables; every extern array aliases it (PTX ISA "Shared State
  // Space"; CUDA's dynamic shared memory).
  uint32_t dynBase = (sharedTop + externAlign - 1) / externAlign * externAlign;
  for (Inst &in : fn->code)
    for (Operand &o : in.ops)
      if ((o.kind == Operand::Imm || o.kind == Operand::Addr) &&
          o.symSpace == Space::Shared && o.imm >= kExternMarker / 2)
        o.imm = o.imm - kExternMarker + dynBase;
  fn->staticShared = sharedTop;
  fn->dynSharedBase = dynBase;
  fn->localBytes = (localTop + 15) / 16 * 16;
  // A kernel that falls off its end returns.
  if (fn->code.empty() ||
      (fn->code.back().op != Op::Ret && fn->code.back().op != Op::Exit &&
       fn->code.back().op != Op::Bra)) {
    Inst r;
    r.op = Op::Ret;
    r.line = toks[pos - 1].line;
    fn->code.push_back(r);
    fn->opText.push_back("ret");
  }
  fn = nullptr;
  return Status::ok();
}

Status Parser::parseParams() {
  uint32_t off = 0;
  while (!isP(")")) {
    if (!isId(".param") && !isId(".reg"))
      return err("expected .param in the parameter list");
    if (isId(".reg"))
      return err(".reg parameters are not supported");
    ++pos;
    ParamInfo p;
    Ty ty = Ty::None;
    uint32_t align = 0;
    uint64_t count = 1;
    while (cur().kind == Tok::Id && cur().s[0] == '.') {
      std::string m = cur().s.substr(1);
      ++pos;
      if (m == "align") {
        uint64_t a = 0;
        QC_RETURN_IF_ERROR(expectNum(a));
        align = uint32_t(a);
      } else if (m == "ptr" || m == "global" || m == "shared" || m == "const" ||
                 m == "local") {
      } else if (!lookupTy(m, ty)) {
        return err("unsupported parameter attribute '." + m + "'");
      }
    }
    if (ty == Ty::None || ty == Ty::Pred)
      return err("parameter without a data type");
    if (cur().kind != Tok::Id)
      return err("expected a parameter name");
    p.name = cur().s;
    ++pos;
    while (isP("[")) {
      ++pos;
      uint64_t n = 0;
      QC_RETURN_IF_ERROR(expectNum(n));
      QC_RETURN_IF_ERROR(expectP("]"));
      count *= n;
    }
    p.size = uint32_t(tySize(ty) * count);
    p.align = align ? align : tySize(ty);
    off = (off + p.align - 1) / p.align * p.align;
    fn->paramOffsets.push_back(off);
    off += p.size;
    fn->params.push_back(p);
    if (isP(","))
      ++pos;
    else if (!isP(")"))
      return err("expected ',' or ')' in the parameter list");
  }
  ++pos;
  fn->paramBytes = off;
  return Status::ok();
}

Status Parser::parseRegDecl() {
  // .reg .type name[<N>] {, name[<N>]} ;  (PTX ISA "Register State
  // Space"; the <N> form declares name0..name(N-1), PTX ISA "Parameterized
  // variable names").
  uint32_t line = cur().line;
  Ty ty = Ty::None;
  while (cur().kind == Tok::Id && cur().s[0] == '.') {
    std::string m = cur().s.substr(1);
    ++pos;
    if (m == "v2" || m == "v4")
      return errAt(line, "vector registers (.reg .v2/.v4) are not supported");
    if (!lookupTy(m, ty))
      return errAt(line, "unsupported register type '." + m + "'");
  }
  if (ty == Ty::None)
    return errAt(line, ".reg without a type");
  uint8_t bits = ty == Ty::Pred ? 1 : uint8_t(tySize(ty) * 8);
  if (ty == Ty::B128)
    return errAt(line, ".b128 registers are not supported");
  while (true) {
    if (cur().kind != Tok::Id || cur().s[0] != '%')
      return err("expected a register name");
    std::string base = cur().s;
    ++pos;
    if (isP("<")) {
      ++pos;
      uint64_t n = 0;
      QC_RETURN_IF_ERROR(expectNum(n));
      QC_RETURN_IF_ERROR(expectP(">"));
      if (n > 65536 || fn->regBits.size() + n > 65536)
        return errAt(line, "too many registers (more than 65536 in a "
                           "function)");
      for (uint64_t k = 0; k < n; ++k) {
        regScopes.back()[base + std::to_string(k)] =
            uint32_t(fn->regBits.size());
        fn->regBits.push_back(bits);
      }
    } else {
      if (fn->regBits.size() >= 65536)
        return errAt(line, "too many registers (more than 65536 in a "
                           "function)");
      regScopes.back()[base] = uint32_t(fn->regBits.size());
      fn->regBits.push_back(bits);
    }
    if (isP(",")) {
      ++pos;
      continue;
    }
    break;
  }
  return expectP(";");
}

Status Parser::parseBody() {
  int depth = 1;
  while (true) {
    if (cur().kind == Tok::End)
      return err("unexpected end of file inside the body of '" + fn->name +
                 "'");
    if (isP("}")) {
      ++pos;
      --depth;
      regScopes.pop_back();
      if (depth == 0)
        break;
      continue;
    }
    if (isP("{")) {
      ++pos;
      ++depth;
      regScopes.emplace_back();
      continue;
    }
    QC_RETURN_IF_ERROR(parseStatement());
  }
  return Status::ok();
}
Status Parser::placeVar(Variable v, uint32_t line) {
  // Far beyond any GPU's shared (227 KiB) or local (512 KiB per thread)
  // memory; also keeps the 32-bit offsets from overflowing.
  if (v.size > (uint64_t(1) << 24))
    return errAt(line, "'" + v.name + "' is too large (" +
                           std::to_string(v.size) + " bytes)");
  if (fnVars.count(v.name))
    return errAt(line, "'" + v.name + "' is declared twice");
  if (v.space == Space::Shared) {
    if (v.isExternShared) {
      externAlign = std::max(externAlign, v.align);
      v.addr = kExternMarker; // patched to the dynamic base at the end
    } else {
      sharedTop = (sharedTop + v.align - 1) / v.align * v.align;
      v.addr = sharedTop;
      sharedTop += uint32_t(v.size);
    }
  } else {
    localTop = (localTop + v.align - 1) / v.align * v.align;
    v.addr = localTop;
    localTop += uint32_t(v.size);
  }
  fnVars[v.name] = v;
  return Status::ok();
}

Status Parser::lookupReg(const std::string &r, uint32_t &idx) const {
  for (size_t k = regScopes.size(); k-- > 0;) {
    auto it = regScopes[k].find(r);
    if (it != regScopes[k].end()) {
      idx = it->second;
      return Status::ok();
    }
  }
  return err("undeclared register '" + r + "'");
}

Status Parser::symbolAddress(const std::string &sym, uint32_t line,
                             Space &space, uint64_t &addr) {
  auto it = fnVars.find(sym);
  if (it == fnVars.end()) {
    // A module-scope .shared variable gets its per-block place in each
    // function at the first reference.
    for (const Variable &g : mod.globals)
      if (g.name == sym && g.space == Space::Shared) {
        QC_RETURN_IF_ERROR(placeVar(g, line));
        it = fnVars.find(sym);
        break;
      }
  }
  if (it != fnVars.end()) {
    space = it->second.space;
    addr = it->second.addr;
    return Status::ok();
  }
  for (size_t k = 0; k < fn->params.size(); ++k)
    if (fn->params[k].name == sym) {
      space = Space::Param;
      addr = fn->paramOffsets[k];
      return Status::ok();
    }
  for (const Variable &g : mod.globals)
    if (g.name == sym && g.space != Space::Shared) {
      space = g.space;
      addr = g.addr;
      return Status::ok();
    }
  return errAt(line, "unknown symbol '" + sym + "'");
}

Status Parser::parseStatement() {
  const Tok &t = cur();
  uint32_t line = t.line;
  if (t.kind == Tok::Id && peek().kind == Tok::Punct && peek().s == ":") {
    if (labels.count(t.s))
      return err("label '" + t.s + "' defined twice");
    labels[t.s] = uint32_t(fn->code.size());
    pos += 2;
    return Status::ok();
  }
  if (t.kind == Tok::Id && t.s[0] == '.') {
    std::string d = t.s;
    if (d == ".reg") {
      ++pos;
      return parseRegDecl();
    }
    if (d == ".shared" || d == ".local") {
      ++pos;
      return parseVariable(d == ".shared" ? Space::Shared : Space::Local, false,
                           false);
    }
    if (d == ".loc" || d == ".file") {
      // Debug line information: no effect on execution. It ends at the
      // end of its source line.
      ++pos;
      while (cur().kind != Tok::End && cur().line == line)
        ++pos;
      return Status::ok();
    }
    if (d == ".pragma") {
      ++pos;
      if (cur().kind != Tok::Str)
        return err("expected a string after .pragma");
      ++pos;
      return expectP(";");
    }
    if (d == ".param")
      return err(".param declarations inside a function body (calls) are "
                 "not supported");
    return err("unsupported directive '" + d + "' in a function body");
  }
  uint32_t guard = kNoReg;
  bool guardNeg = false;
  if (isP("@")) {
    ++pos;
    if (isP("!")) {
      guardNeg = true;
      ++pos;
    }
    if (cur().kind != Tok::Id)
      return err("expected a predicate register after '@'");
    QC_RETURN_IF_ERROR(lookupReg(cur().s, guard));
    if (fn->regBits[guard] != 1)
      return err("guard '" + cur().s + "' is not a .pred register");
    ++pos;
  }
  (void)line;
  return parseInstruction(guard, guardNeg);
}

Status Parser::parseOperand(RawOp &op) {
  if (isP("[")) {
    ++pos;
    op.kind = RawOp::Addr;
    if (cur().kind == Tok::Id) {
      if (cur().s[0] == '%') {
        QC_RETURN_IF_ERROR(lookupReg(cur().s, op.reg));
      } else {
        op.name = cur().s;
      }
      ++pos;
      if (isP("+") || isP("-")) {
        bool neg = isP("-");
        ++pos;
        if (isP("-")) {
          neg = !neg;
          ++pos;
        }
        Literal lit;
        if (cur().kind != Tok::Num || !parseLiteral(cur().s, neg, lit) ||
            lit.isFloat)
          return err("expected an integer offset in an address");
        op.offset = int64_t(lit.bits);
        ++pos;
      }
    } else {
      uint64_t v = 0;
      QC_RETURN_IF_ERROR(expectNum(v));
      op.offset = int64_t(v);
    }
    return expectP("]");
  }
  if (isP("{")) {
    ++pos;
    op.kind = RawOp::Vec;
    while (true) {
      RawOp e;
      if (isId("_")) {
        e.kind = RawOp::Reg;
        e.reg = kNoReg;
        ++pos;
      } else {
        QC_RETURN_IF_ERROR(parseOperand(e));
        if (e.kind != RawOp::Reg && e.kind != RawOp::Imm)
          return err("vector operands hold registers or immediates");
      }
      op.elems.push_back(e);
      if (isP(",")) {
        ++pos;
        continue;
      }
      break;
    }
    if (op.elems.size() > 4 && op.elems.size() != 8)
      return err("vector operand with " + std::to_string(op.elems.size()) +
                 " elements");
    return expectP("}");
  }
  if (isP("!")) {
    ++pos;
    QC_RETURN_IF_ERROR(parseOperand(op));
    if (op.kind != RawOp::Reg)
      return err("'!' applies to predicate registers only");
    op.neg = true;
    return Status::ok();
  }
  if (isP("-") || cur().kind == Tok::Num) {
    bool neg = false;
    if (isP("-")) {
      neg = true;
      ++pos;
    }
    if (cur().kind != Tok::Num || !parseLiteral(cur().s, neg, op.lit))
      return err("malformed number '" + cur().s + "'");
    op.kind = RawOp::Imm;
    ++pos;
    return Status::ok();
  }
  if (cur().kind != Tok::Id)
    return err("unexpected '" + cur().s + "' in an operand");
  std::string s = cur().s;
  ++pos;
  if (s[0] == '%') {
    for (auto &e : kSregs)
      if (s == e.name) {
        op.kind = RawOp::Special;
        op.sreg = e.sreg;
        return Status::ok();
      }
    op.kind = RawOp::Reg;
    --pos;
    QC_RETURN_IF_ERROR(lookupReg(s, op.reg));
    ++pos;
    if (isP("|")) {
      ++pos;
      if (cur().kind != Tok::Id)
        return err("expected a register after '|'");
      QC_RETURN_IF_ERROR(lookupReg(cur().s, op.reg2));
      ++pos;
    }
    return Status::ok();
  }
  op.kind = RawOp::Name;
  op.name = s;
  return Status::ok();
}

Status Parser::parseInstruction(uint32_t guard, bool guardNeg) {
  if (cur().kind != Tok::Id)
    return err("expected an instruction, found '" + cur().s + "'");
  std::string opcode = cur().s;
  uint32_t line = cur().line;
  ++pos;
  std::vector<RawOp> raw;
  if (!isP(";")) {
    while (true) {
      RawOp r;
      QC_RETURN_IF_ERROR(parseOperand(r));
      raw.push_back(std::move(r));
      if (isP(",")) {
        ++pos;
        continue;
      }
      break;
    }
  }
  QC_RETURN_IF_ERROR(expectP(";"));
  Inst in;
  in.guard = guard;
  in.guardNeg = guardNeg;
  in.line = line;
  QC_RETURN_IF_ERROR(decode(opcode, raw, line, in));
  // Operand shapes the interpreter relies on: vectors and addresses only
  // where the instruction takes them, and no `_` sink among sources.
  bool vecOk = false;
  switch (in.op) {
  case Op::Mov:
  case Op::Ld:
  case Op::St:
  case Op::Mma:
  case Op::Ldmatrix:
  case Op::CpAsync:
  case Op::Atom:
  case Op::Red:
  case Op::Bra:
    vecOk = true;
    break;
  default:
    break;
  }
  for (unsigned k = 0; k < in.nops; ++k) {
    const Operand &o = in.ops[k];
    if (!vecOk && (o.kind == Operand::Vec || o.kind == Operand::Addr))
      return errAt(line, "'" + opcode + "': operand " + std::to_string(k + 1) +
                             " must be a scalar");
    bool isDest = k == 0 && in.op != Op::St && in.op != Op::Red &&
                  in.op != Op::CpAsync && in.op != Op::Bar;
    if (o.kind == Operand::Vec && !isDest)
      for (unsigned e = 0; e < o.n; ++e)
        if (o.vec[e] == kNoReg)
          return errAt(line, "'" + opcode + "': '_' in a source vector");
    if (isDest && o.kind == Operand::Special)
      return errAt(line, "'" + opcode + "': a special register is read-only");
  }
  fn->code.push_back(in);
  fn->opText.push_back(opcode);
  return Status::ok();
}

Status Parser::immFor(const RawOp &r, Ty ty, uint32_t line,
                      uint64_t &bits) const {
  const Literal &l = r.lit;
  unsigned sz = tySize(ty);
  if (ty == Ty::F32) {
    bits = l.exactF32
               ? l.bits
               : f32ToBits(float(l.isFloat ? l.f : double(int64_t(l.bits))));
    return Status::ok();
  }
  if (ty == Ty::F64) {
    if (!l.isFloat)
      bits = f64ToBits(double(int64_t(l.bits)));
    else if (l.exactF32) // a 0f constant in a .f64 context: its value
      bits = f64ToBits(double(bitsToF32(uint32_t(l.bits))));
    else // 0d constants carry their bits; decimal ones their value
      bits = l.bits ? l.bits : f64ToBits(l.f);
    return Status::ok();
  }
  if (ty == Ty::F16 || ty == Ty::BF16) {
    if (l.isFloat) {
      bits = ty == Ty::F16 ? toHalf(l.f) : toBf16(l.f);
    } else {
      bits = l.bits & 0xffff; // hex bit pattern, as LLVM emits 0x3C00
    }
    return Status::ok();
  }
  // A 0f/0d constant in a bit-size context is its bit pattern (PTX ISA
  // "Constants": "0f" constants are 32-bit, "0d" constants 64-bit).
  if (l.isFloat && l.exactF32 && sz == 4) {
    bits = l.bits;
    return Status::ok();
  }
  if (l.isFloat && !l.exactF32 && l.bits && sz == 8) {
    bits = l.bits;
    return Status::ok();
  }
  if (l.isFloat)
    return errAt(line, std::string("floating-point immediate for a .") +
                           tyName(ty) + " operand");
  bits =
      sz >= 8 || sz == 0 ? l.bits : (l.bits & ((uint64_t(1) << (8 * sz)) - 1));
  if (ty == Ty::Pred)
    bits = l.bits != 0;
  return Status::ok();
}

Status Parser::toOperand(const RawOp &r, Ty ty, uint32_t line, Operand &o) {
  switch (r.kind) {
  case RawOp::Reg:
    o.kind = Operand::Reg;
    o.reg = r.reg;
    o.neg = r.neg;
    return Status::ok();
  case RawOp::Imm:
    o.kind = Operand::Imm;
    return immFor(r, ty, line, o.imm);
  case RawOp::Special:
    o.kind = Operand::Special;
    o.sreg = r.sreg;
    return Status::ok();
  case RawOp::Name: {
    // A variable's address as a value (PTX ISA "Variables as
    // operands": the address in the variable's state space).
    Space sp;
    uint64_t a = 0;
    QC_RETURN_IF_ERROR(symbolAddress(r.name, line, sp, a));
    o.kind = Operand::Imm;
    o.imm = a;
    o.symSpace = sp;
    return Status::ok();
  }
  case RawOp::Addr: {
    o.kind = Operand::Addr;
    o.reg = r.reg;
    o.imm = uint64_t(r.offset);
    if (!r.name.empty()) {
      Space sp;
      uint64_t a = 0;
      QC_RETURN_IF_ERROR(symbolAddress(r.name, line, sp, a));
      o.imm += a;
      o.symSpace = sp;
    }
    return Status::ok();
  }
  case RawOp::Vec: {
    o.kind = Operand::Vec;
    o.n = uint8_t(r.elems.size());
    if (r.elems.size() > 4)
      return errAt(line, "vector operand with more than 4 elements");
    for (size_t k = 0; k < r.elems.size(); ++k) {
      if (r.elems[k].kind != RawOp::Reg)
        return errAt(line, "immediate elements in a vector operand are not "
                           "supported");
      o.vec[k] = r.elems[k].reg;
    }
    return Status::ok();
  }
  }
  return errAt(line, "bad operand");
}

} // namespace

#include "PtxDecode.inc"

Status parsePtx(const std::string &text, const std::string &name, Arch arch,
                const std::function<Status(Variable &)> &allocGlobal,
                ParsedModule &out) {
  std::vector<Tok> toks;
  QC_RETURN_IF_ERROR(tokenize(text, name, toks));
  out.name = name;
  Parser p(toks, name, arch, allocGlobal, out);
  return p.parseModule();
}

} // namespace qc::emu
