//===- Ptx.h - Decoded PTX: the emulator's internal program -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The form that the parser (PtxParser.cpp) turns PTX text into and that the
// interpreter (Exec.cpp) runs: per kernel a flat array of instructions with
// an opcode enum, the instruction's types and modifiers as small enums, and
// operands already resolved to register indices, immediates (as the bits of
// the operand's type), symbol addresses and branch-target indices. Nothing in
// the interpreter's inner loop looks at a string.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_PTX_H
#define QC_EMU_PTX_H

#include "qc/emu/Emulator.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace qc::emu {

/// PTX fundamental types (PTX ISA "Fundamental Types").
enum class Ty : uint8_t {
  None,
  B8,
  B16,
  B32,
  B64,
  B128,
  U8,
  U16,
  U32,
  U64,
  S8,
  S16,
  S32,
  S64,
  F16,
  F16x2,
  BF16,
  BF16x2,
  F32,
  F64,
  Pred,
};

/// Size of a type in bytes (Pred: 1 for declarations; never in memory).
unsigned tySize(Ty t);
bool tyIsSigned(Ty t);
bool tyIsFloat(Ty t);
const char *tyName(Ty t);

/// State spaces (PTX ISA "State Spaces").
enum class Space : uint8_t { Generic, Global, Shared, Param, Local, Const };
const char *spaceName(Space s);

/// Opcodes of the instructions the emulator implements.
enum class Op : uint8_t {
  Mov,
  Ld,
  St,
  Add,
  Sub,
  Mul,
  Mad,
  Fma,
  Div,
  Rem,
  Min,
  Max,
  Abs,
  Neg,
  And,
  Or,
  Xor,
  Not,
  CNot,
  Shl,
  Shr,
  Shf,
  CopySign,
  Lop3,
  Prmt,
  Bfe,
  Bfi,
  Popc,
  Clz,
  Brev,
  Selp,
  Setp,
  Cvt,
  Cvta,
  Rcp,
  Sqrt,
  Rsqrt,
  Ex2,
  Lg2,
  Sin,
  Cos,
  Tanh,
  Mma,
  Ldmatrix,
  Shfl,
  Vote,
  Activemask,
  Bar,
  Membar,
  CpAsync,
  CpAsyncCommit,
  CpAsyncWait,
  Atom,
  Red,
  Bra,
  Ret,
  Exit,
  Trap,
  Nop,
};

/// Comparison operators of setp (PTX ISA "Comparison and Selection
/// Instructions": Tables "Operators for signed integer, unsigned integer, and
/// bit-size types" and "Floating-point comparison operators").
enum class Cmp : uint8_t {
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  Lo,
  Ls,
  Hi,
  Hs,
  Equ,
  Neu,
  Ltu,
  Leu,
  Gtu,
  Geu,
  Num,
  Nan,
};

/// Rounding modifiers (PTX ISA "Rounding Modifiers" for floating-point and
/// conversion instructions).
enum class Rnd : uint8_t {
  None,
  Rn,
  Rz,
  Rm,
  Rp,
  Rni,
  Rzi,
  Rmi,
  Rpi,
  Rna,
  Approx,
  Full
};

/// Sub-operation for atom/red, vote, shfl, bool ops, mul/mad halves.
enum class Sub : uint8_t {
  None,
  // mul/mad
  Lo,
  Hi,
  Wide,
  // atom/red
  AAdd,
  AMin,
  AMax,
  AExch,
  ACas,
  AAnd,
  AOr,
  AXor,
  AInc,
  ADec,
  // shfl
  Up,
  Down,
  Bfly,
  Idx,
  // vote
  All,
  Any,
  Uni,
  Ballot,
  // setp combining
  BAnd,
  BOr,
  BXor,
  // prmt modes
  F4e,
  B4e,
  Rc8,
  Ecl,
  Ecr,
  Rc16,
  // bfe/shr: none
};

/// Special registers (PTX ISA "Special Registers").
enum class Sreg : uint8_t {
  TidX,
  TidY,
  TidZ,
  NtidX,
  NtidY,
  NtidZ,
  CtaidX,
  CtaidY,
  CtaidZ,
  NctaidX,
  NctaidY,
  NctaidZ,
  LaneId,
  WarpId,
  NWarpId,
  SmId,
  NSmId,
  GridId,
  Clock,
  Clock64,
  DynSmem,
  TotalSmem,
  LanemaskEq,
  LanemaskLt,
  LanemaskLe,
  LanemaskGt,
  LanemaskGe,
  GlobalTimer,
};

/// Sentinel register index for the vector sink `_`.
constexpr uint32_t kNoReg = 0xffffffffu;

/// One decoded operand.
struct Operand {
  enum Kind : uint8_t { None, Reg, Imm, Vec, Addr, Special, Label };
  Kind kind = None;
  /// For Vec: number of elements; for Reg in setp/shfl: unused.
  uint8_t n = 0;
  /// Negated predicate operand (`!%p` as a setp/selp source).
  bool neg = false;
  /// For Addr: the space of the symbol if symbolic (Generic = none).
  Space symSpace = Space::Generic;
  /// Special register id for Special.
  Sreg sreg = Sreg::TidX;
  /// Register index (Reg; Addr base or kNoReg).
  uint32_t reg = kNoReg;
  /// Immediate bits (Imm), address offset (+ symbol address) for Addr,
  /// instruction index for Label.
  uint64_t imm = 0;
  /// Vector element registers (Vec), kNoReg for `_`; for Vec with an
  /// immediate element the flag below says which are immediates.
  uint32_t vec[4] = {kNoReg, kNoReg, kNoReg, kNoReg};
};

/// One decoded instruction.
struct Inst {
  Op op = Op::Nop;
  /// Main type (the instruction's last type suffix, e.g. ld.global.u32 ->
  /// U32; setp.lt.s32 -> S32; cvt.f32.f16 -> F32 (destination)).
  Ty ty = Ty::None;
  /// Second type: cvt source, mul.wide/mad.wide source, mma A/B type.
  Ty ty2 = Ty::None;
  Space space = Space::Generic;
  Cmp cmp = Cmp::Eq;
  Rnd rnd = Rnd::None;
  Sub sub = Sub::None;
  /// Combining op for setp (BAnd/BOr/BXor) or None.
  Sub boolOp = Sub::None;
  bool ftz = false, sat = false, trans = false, uni = false, volatile_ = false;
  /// Vector width of ld/st (1, 2, 4), ldmatrix count (1, 2, 4), mma
  /// shape k (8 or 16), cp.async size, bar id operand count...
  uint8_t vec = 1;
  /// Guard predicate register (kNoReg = none) and its negation.
  uint32_t guard = kNoReg;
  bool guardNeg = false;
  uint8_t nops = 0;
  Operand ops[6];
  /// 1-based line in the PTX text.
  uint32_t line = 0;
};

/// A variable declared in a state space.
struct Variable {
  std::string name;
  Space space = Space::Global;
  uint32_t align = 1;
  uint64_t size = 0;
  /// Offset within the kernel's static shared / local area, or the device
  /// address for global/const variables.
  uint64_t addr = 0;
  /// Initializer bytes (global/const), empty if none.
  std::vector<uint8_t> init;
  bool isExternShared = false;
};

/// A decoded .entry (or .func, which can be parsed but not called).
struct Function {
  std::string name;
  bool isEntry = false;
  std::vector<ParamInfo> params;
  /// Byte offset of each parameter in the parameter buffer.
  std::vector<uint32_t> paramOffsets;
  uint32_t paramBytes = 0;
  /// Register widths in bits, indexed by register number (1 for .pred).
  std::vector<uint8_t> regBits;
  std::vector<Inst> code;
  /// The opcode text of each instruction (error messages only).
  std::vector<std::string> opText;
  uint32_t staticShared = 0;
  /// Offset of dynamic (extern) shared memory: staticShared rounded up.
  uint32_t dynSharedBase = 0;
  uint32_t localBytes = 0;
  uint32_t maxntid[3] = {0, 0, 0};
  uint32_t reqntid[3] = {0, 0, 0};
  uint32_t maxDynShared = 48 * 1024;
  uint32_t firstLine = 0;
};

/// A parsed module. Global variables are given device addresses when the
/// module is loaded into a Device.
struct ParsedModule {
  std::string name;
  unsigned versionMajor = 0, versionMinor = 0;
  std::string target;
  unsigned addressSize = 64;
  std::vector<Variable> globals;
  std::vector<Function> functions;
};

/// Parses and decodes PTX text for `arch`. `allocGlobal` is called for each
/// module-level .global/.const variable before any instruction refers to it
/// and must set its device address (and upload its initializer). Errors name
/// `name:line`.
Status parsePtx(const std::string &text, const std::string &name, Arch arch,
                const std::function<Status(Variable &)> &allocGlobal,
                ParsedModule &out);

} // namespace qc::emu

#endif // QC_EMU_PTX_H
