//===- EmulatorTest.cpp - Unit tests of the PTX emulator ------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Tiny hand-written PTX kernels, one instruction class at a time, with the
// expected results worked out by hand from the PTX ISA's definitions (the
// section is named at each test), plus divergence/reconvergence, barriers,
// every sanitizer check (each must name the kernel, block, thread and PTX
// line) and parser errors (each must name the line).
//
//===----------------------------------------------------------------------===//

#include "qc/emu/Emulator.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace qc;
using namespace qc::emu;

namespace {

const char *kHeader = ".version 8.0\n.target sm_80\n.address_size 64\n";

/// A kernel `k(out, in)` whose body is `body`; registers %r<64>, %rd<32>,
/// %p<16>, %h<16>, %f<16>, %fd<8> are declared and %rd1 = out, %rd2 = in,
/// %r0 = %tid.x, %rd4 = out + 4 * tid, %rd5 = in + 4 * tid are set up.
/// The body starts on line 11 of the text.
std::string kernel(const std::string &body, const std::string &decls = "") {
  return std::string(kHeader) +
         ".visible .entry k(.param .u64 k_out, .param .u64 k_in)\n"
         "{\n"
         ".reg .b32 %r<64>; .reg .b64 %rd<32>; .reg .pred %p<16>;\n"
         ".reg .b16 %h<16>; .reg .f32 %f<16>; .reg .f64 %fd<8>;\n" +
         decls + (decls.empty() ? "// no extra declarations\n" : "\n") +
         "ld.param.u64 %rd1, [k_out]; ld.param.u64 %rd2, [k_in];\n"
         "mov.u32 %r0, %tid.x; mul.wide.u32 %rd3, %r0, 4;\n"
         "add.s64 %rd4, %rd1, %rd3; add.s64 %rd5, %rd2, %rd3;\n" +
         body + "\nret;\n}\n";
}

/// The line of the first occurrence of `needle` in `text` (1-based).
unsigned lineOf(const std::string &text, const std::string &needle) {
  size_t p = text.find(needle);
  EXPECT_NE(p, std::string::npos) << needle;
  unsigned line = 1;
  for (size_t i = 0; i < p; ++i)
    line += text[i] == '\n';
  return line;
}

class Emu : public ::testing::Test {
protected:
  static DeviceOptions opts() {
    DeviceOptions o;
    o.threads = 2;
    o.memoryBytes = 64ull << 20;
    return o;
  }
  Device dev{opts()};

  /// Runs `ptx`'s kernel k over grid x block with `out` (outWords u32,
  /// poisoned with 0xdeadbeef) and `in` buffers; returns the launch status.
  Status run(const std::string &ptx, Dim3 grid, Dim3 block,
             std::vector<uint32_t> &out, size_t outWords,
             const std::vector<uint32_t> &in = {}, uint32_t dynShared = 0) {
    Module *m = nullptr;
    QC_RETURN_IF_ERROR(dev.loadModule(ptx, "test.ptx", m));
    Kernel *k = nullptr;
    QC_RETURN_IF_ERROR(dev.getKernel(m, "k", k));
    uint64_t dout = 0, din = 0;
    QC_RETURN_IF_ERROR(dev.malloc(std::max<size_t>(outWords, 1) * 4, dout));
    std::vector<uint32_t> poison(outWords, 0xdeadbeefu);
    QC_RETURN_IF_ERROR(dev.copyToDevice(dout, poison.data(), outWords * 4));
    QC_RETURN_IF_ERROR(dev.malloc(std::max<size_t>(in.size(), 1) * 4, din));
    QC_RETURN_IF_ERROR(dev.copyToDevice(din, in.data(), in.size() * 4));
    void *args[] = {&dout, &din};
    Status s = dev.launch(k, grid, block, dynShared, args);
    out.assign(outWords, 0);
    QC_RETURN_IF_ERROR(dev.copyToHost(out.data(), dout, outWords * 4));
    QC_RETURN_IF_ERROR(dev.free(dout));
    QC_RETURN_IF_ERROR(dev.free(din));
    QC_RETURN_IF_ERROR(dev.unloadModule(m));
    return s;
  }

  /// One thread; returns out[0..n).
  std::vector<uint32_t> run1(const std::string &body, size_t n,
                             const std::vector<uint32_t> &in = {},
                             const std::string &decls = "") {
    std::vector<uint32_t> out;
    Status s = run(kernel(body, decls), {1, 1, 1}, {1, 1, 1}, out, n, in);
    EXPECT_TRUE(s.isOk()) << s.message();
    return out;
  }
};

float f32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

//===----------------------------------------------------------------------===//
// Integer arithmetic and bit manipulation (PTX ISA "Integer Arithmetic
// Instructions", "Logic and Shift Instructions")
//===----------------------------------------------------------------------===//

TEST_F(Emu, IntegerArithmetic) {
  auto out = run1(R"(
    mov.u32 %r1, 0x7fffffff;
    add.s32 %r2, %r1, 1;            st.global.u32 [%rd1+0], %r2;
    add.sat.s32 %r2, %r1, 1;        st.global.u32 [%rd1+4], %r2;
    mov.u32 %r3, 0xffffffff;
    mul.hi.u32 %r2, %r3, %r3;       st.global.u32 [%rd1+8], %r2;
    mul.lo.u32 %r2, %r3, %r3;       st.global.u32 [%rd1+12], %r2;
    mul.wide.s32 %rd6, %r3, 5;      st.global.u64 [%rd1+16], %rd6;
    mad.lo.s32 %r2, %r3, 7, 100;    st.global.u32 [%rd1+24], %r2;
    div.s32 %r2, -7, 2;             st.global.u32 [%rd1+28], %r2;
    rem.s32 %r2, -7, 2;             st.global.u32 [%rd1+32], %r2;
    min.s32 %r2, %r3, 1;            st.global.u32 [%rd1+36], %r2;
    min.u32 %r2, %r3, 1;            st.global.u32 [%rd1+40], %r2;
    shr.s32 %r2, -16, 2;            st.global.u32 [%rd1+44], %r2;
    shr.u32 %r2, 0x80000000, 31;    st.global.u32 [%rd1+48], %r2;
    shl.b32 %r2, 1, 33;             st.global.u32 [%rd1+52], %r2;
    bfe.u32 %r2, 0x12345678, 8, 8;  st.global.u32 [%rd1+56], %r2;
    bfe.s32 %r2, 0x0000f000, 12, 4; st.global.u32 [%rd1+60], %r2;
    bfi.b32 %r2, 0xf, 0, 4, 4;      st.global.u32 [%rd1+64], %r2;
    popc.b32 %r2, 0xf0f0;           st.global.u32 [%rd1+68], %r2;
    clz.b32 %r2, 1;                 st.global.u32 [%rd1+72], %r2;
    brev.b32 %r2, 1;                st.global.u32 [%rd1+76], %r2;
    neg.s32 %r2, 5;                 st.global.u32 [%rd1+80], %r2;
    abs.s32 %r2, -5;                st.global.u32 [%rd1+84], %r2;
    not.b32 %r2, 0x0f0f0f0f;        st.global.u32 [%rd1+88], %r2;
    cnot.b32 %r2, 0;                st.global.u32 [%rd1+92], %r2;
    mul.hi.s32 %r2, -2, 0x40000000; st.global.u32 [%rd1+96], %r2;
    mad.wide.u32 %rd6, %r3, 2, 3;   st.global.u64 [%rd1+104], %rd6;
    max.s32 %r2, -3, -9;            st.global.u32 [%rd1+112], %r2;
    sub.s32 %r2, 0, 1;              st.global.u32 [%rd1+116], %r2;
    xor.b32 %r2, 0xff00ff00, 0x0ff00ff0; st.global.u32 [%rd1+120], %r2;
    shf.l.wrap.b32 %r2, 0x80000001, 0x12345678, 36; st.global.u32 [%rd1+124], %r2;
    shf.r.clamp.b32 %r2, 0x80000001, 0x12345678, 40; st.global.u32 [%rd1+128], %r2;
    shf.r.wrap.b32 %r2, 0x80000001, 0x12345678, 4;  st.global.u32 [%rd1+132], %r2;
  )",
                  34);
  EXPECT_EQ(out[0], 0x80000000u); // wraps
  EXPECT_EQ(out[1], 0x7fffffffu); // .sat clamps
  EXPECT_EQ(out[2], 0xfffffffeu); // (2^32-1)^2 >> 32
  EXPECT_EQ(out[3], 1u);
  EXPECT_EQ(out[4], uint32_t(-5)); // -1 * 5 as 64 bits
  EXPECT_EQ(out[5], 0xffffffffu);
  EXPECT_EQ(out[6], 93u);          // -7 + 100
  EXPECT_EQ(out[7], uint32_t(-3)); // truncating division
  EXPECT_EQ(out[8], uint32_t(-1));
  EXPECT_EQ(out[9], uint32_t(-1));
  EXPECT_EQ(out[10], 1u);
  EXPECT_EQ(out[11], uint32_t(-4)); // arithmetic shift
  EXPECT_EQ(out[12], 1u);
  EXPECT_EQ(out[13], 0u); // shift amount clamped to 32
  EXPECT_EQ(out[14], 0x56u);
  EXPECT_EQ(out[15], 0xffffffffu); // sign bit of the field replicated
  EXPECT_EQ(out[16], 0xf0u);
  EXPECT_EQ(out[17], 8u);
  EXPECT_EQ(out[18], 31u);
  EXPECT_EQ(out[19], 0x80000000u);
  EXPECT_EQ(out[20], uint32_t(-5));
  EXPECT_EQ(out[21], 5u);
  EXPECT_EQ(out[22], 0xf0f0f0f0u);
  EXPECT_EQ(out[23], 1u);
  EXPECT_EQ(out[24], 0xffffffffu); // (-2 * 2^30) >> 32 = -1
  EXPECT_EQ(out[26], 0x00000001u); // (2^32-1)*2+3 = 2^33+1
  EXPECT_EQ(out[27], 0x00000002u);
  EXPECT_EQ(out[28], uint32_t(-3));
  EXPECT_EQ(out[29], 0xffffffffu);
  EXPECT_EQ(out[30], 0xf0f0f0f0u);
  // shf (funnel shift of {b, a} = 0x12345678_80000001): .l by 36 wraps to
  // 4 -> upper word 0x23456788; .r clamps 40 to 32 -> b = 0x12345678;
  // .r by 4 -> lower word 0x88000000.
  EXPECT_EQ(out[31], 0x23456788u);
  EXPECT_EQ(out[32], 0x12345678u);
  EXPECT_EQ(out[33], 0x88000000u);
}

// The 64- and 16-bit integer forms LLVM emits for qc's kernels.
TEST_F(Emu, SixtyFourAndSixteenBitIntegers) {
  auto out = run1(R"(
    bfe.u64 %rd6, 0x123456789ABCDEF0, 36, 8;  st.global.u64 [%rd1], %rd6;
    mul.hi.u64 %rd6, 0xFFFFFFFFFFFFFFFF, 2;   st.global.u64 [%rd1+8], %rd6;
    min.u64 %rd6, -1, 5;                      st.global.u64 [%rd1+16], %rd6;
    mov.b16 %h1, 0x8000; shr.u16 %h2, %h1, 15; st.global.u16 [%rd1+24], %h2;
    mov.b16 %h1, -3; mul.lo.s16 %h2, %h1, 300; st.global.u16 [%rd1+26], %h2;
    mov.b16 %h1, 0xFFFF; mul.hi.u16 %h2, %h1, %h1; st.global.u16 [%rd1+28], %h2;
    cvt.u16.u64 %h3, 0x12345;                  st.global.u16 [%rd1+30], %h3;
    cvt.u64.u16 %rd6, %h1;                     st.global.u64 [%rd1+32], %rd6;
    mov.b16 %h1, 5; sub.s16 %h2, %h1, 7;      st.global.u16 [%rd1+40], %h2;
    and.b16 %h2, %h2, 0x0ff0;                  st.global.u16 [%rd1+42], %h2;
    mad.lo.s64 %rd6, -2, 3, 100;              st.global.u64 [%rd1+48], %rd6;
    xor.b64 %rd6, 0xF0F0F0F0F0F0F0F0, -1;     st.global.u64 [%rd1+56], %rd6;
    setp.ne.b64 %p1, %rd6, 0x0F0F0F0F0F0F0F0F; selp.b32 %r2, 1, 2, %p1;
    st.global.u32 [%rd1+64], %r2;
    shl.b64 %rd6, 1, 63; shr.s64 %rd7, %rd6, 70; st.global.u64 [%rd1+72], %rd7;
  )",
                  20);
  EXPECT_EQ(out[0], 0x67u); // bits 36..43 are hex digits 9 and 10: 6, 7
  EXPECT_EQ(out[1], 0u);
  EXPECT_EQ(out[2], 1u); // (2^64 - 1) * 2 >> 64
  EXPECT_EQ(out[4], 5u);
  EXPECT_EQ(out[6], 0xFC7C0001u); // -900 in 16 bits | 0x8000 >> 15
  EXPECT_EQ(out[7], 0x2345FFFEu); // 0xFFFF^2 = 0xFFFE0001 -> hi 0xFFFE
  EXPECT_EQ(out[8], 0xFFFFu);
  EXPECT_EQ(out[9], 0u);
  EXPECT_EQ(out[10], 0x0FF0FFFEu); // 5 - 7 = 0xFFFE; & 0x0FF0
  EXPECT_EQ(out[12], 94u);
  EXPECT_EQ(out[13], 0u);
  EXPECT_EQ(out[14], 0x0F0F0F0Fu);
  EXPECT_EQ(out[15], 0x0F0F0F0Fu);
  EXPECT_EQ(out[16], 2u);          // equal: the ne is false
  EXPECT_EQ(out[18], 0xFFFFFFFFu); // arithmetic shift clamped to 63
  EXPECT_EQ(out[19], 0xFFFFFFFFu);
}

// ld with a destination wider than the type extends by the type's
// signedness (PTX ISA "ld"); LLVM emits ld.param.s32 into .b64.
TEST_F(Emu, LoadExtendsToTheRegisterWidth) {
  auto out = run1(R"(
    ld.global.s32 %rd6, [%rd2];  st.global.u64 [%rd1], %rd6;
    ld.global.u32 %rd7, [%rd2];  st.global.u64 [%rd1+8], %rd7;
    ld.global.s8 %r2, [%rd2];    st.global.u32 [%rd1+16], %r2;
  )",
                  5, {0xfffffff0u});
  EXPECT_EQ(out[0], 0xfffffff0u);
  EXPECT_EQ(out[1], 0xffffffffu);
  EXPECT_EQ(out[2], 0xfffffff0u);
  EXPECT_EQ(out[3], 0u);
  EXPECT_EQ(out[4], 0xfffffff0u); // byte 0xf0 sign-extended
}

// lop3: PTX ISA "lop3": immLut is F(ta, tb, tc) for ta = 0xF0,
// tb = 0xCC, tc = 0xAA, so applied to those operands every byte of the
// result equals immLut.
TEST_F(Emu, Lop3TruthTables) {
  const uint32_t luts[] = {0x96, 0xE8, 0xF0, 0x80, 0xFE, 0x01, 0x6A, 0x00};
  std::string body = "mov.u32 %r1, 0xF0F0F0F0; mov.u32 %r2, 0xCCCCCCCC; "
                     "mov.u32 %r3, 0xAAAAAAAA;\n";
  for (int i = 0; i < 8; ++i)
    body += "lop3.b32 %r4, %r1, %r2, %r3, " + std::to_string(luts[i]) +
            "; st.global.u32 [%rd1+" + std::to_string(4 * i) + "], %r4;\n";
  // And a concrete use: (a & 0x000F000F) | 0x64006400 = lop3 with 0xEA.
  body += "lop3.b32 %r4, 0x12345678, 0x000F000F, 0x64006400, 0xEA; "
          "st.global.u32 [%rd1+32], %r4;";
  auto out = run1(body, 9);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(out[i], luts[i] * 0x01010101u) << "immLut " << luts[i];
  EXPECT_EQ(out[8], 0x64046408u);
}

// prmt default mode: PTX ISA "prmt": bytes {b, a} are numbered 7..0
// (a is bytes 0-3); selector nibble k picks d's byte k; its msb replicates
// the picked byte's sign bit.
TEST_F(Emu, PrmtByteSelectors) {
  auto out = run1(R"(
    prmt.b32 %r2, 0x03020100, 0x07060504, 0x5410; st.global.u32 [%rd1], %r2;
    prmt.b32 %r2, 0x00008001, 0, 0x0098;          st.global.u32 [%rd1+4], %r2;
    prmt.b32 %r2, 0x03020100, 0x07060504, 0x7654; st.global.u32 [%rd1+8], %r2;
  )",
                  3);
  EXPECT_EQ(out[0], 0x05040100u);
  // b0: sel 8 -> byte 0 (0x01) sign 0 -> 0x00; b1: sel 9 -> byte 1 (0x80)
  // sign 1 -> 0xff; b2, b3: sel 0 -> 0x01.
  EXPECT_EQ(out[1], 0x0101ff00u);
  EXPECT_EQ(out[2], 0x07060504u);
}

//===----------------------------------------------------------------------===//
// Comparison and selection (PTX ISA "Comparison and Selection Instructions")
//===----------------------------------------------------------------------===//

TEST_F(Emu, SetpAndSelp) {
  auto out = run1(R"(
    mov.f32 %f1, 0f7FC00000;  // NaN
    mov.f32 %f2, 0f3F800000;  // 1.0
    setp.equ.f32 %p1, %f1, %f2;  selp.u32 %r2, 1, 0, %p1; st.global.u32 [%rd1], %r2;
    setp.eq.f32 %p1, %f1, %f2;   selp.u32 %r2, 1, 0, %p1; st.global.u32 [%rd1+4], %r2;
    setp.nan.f32 %p1, %f1, %f2;  selp.u32 %r2, 1, 0, %p1; st.global.u32 [%rd1+8], %r2;
    setp.lt.s32 %p1, -1, 0;      selp.u32 %r2, 1, 0, %p1; st.global.u32 [%rd1+12], %r2;
    setp.lo.u32 %p1, 0xffffffff, 0; selp.u32 %r2, 1, 0, %p1; st.global.u32 [%rd1+16], %r2;
    setp.lt.u32 %p2, 1, 2;
    setp.gt.s32.and %p3|%p4, 5, 3, %p2;
    selp.u32 %r2, 1, 0, %p3; st.global.u32 [%rd1+20], %r2;
    selp.u32 %r2, 1, 0, %p4; st.global.u32 [%rd1+24], %r2;
    setp.ge.s32.or %p3, 1, 3, !%p2;
    selp.u32 %r2, 1, 0, %p3; st.global.u32 [%rd1+28], %r2;
    setp.ne.b64 %p1, 0, 1; selp.b64 %rd6, 7, 9, %p1; st.global.u64 [%rd1+32], %rd6;
  )",
                  10);
  EXPECT_EQ(out[0], 1u); // unordered: NaN == x is true for .equ
  EXPECT_EQ(out[1], 0u);
  EXPECT_EQ(out[2], 1u);
  EXPECT_EQ(out[3], 1u);
  EXPECT_EQ(out[4], 0u); // unsigned: 0xffffffff is not below 0
  EXPECT_EQ(out[5], 1u); // (5 > 3) and true
  EXPECT_EQ(out[6], 0u); // !(5 > 3) and true
  EXPECT_EQ(out[7], 0u); // (1 >= 3) or !true
  EXPECT_EQ(out[8], 7u);
}

//===----------------------------------------------------------------------===//
// Floating point (PTX ISA "Floating-Point Instructions", "Half Precision
// Floating-Point Instructions") and cvt (PTX ISA "cvt")
//===----------------------------------------------------------------------===//

TEST_F(Emu, HalfPrecisionRounding) {
  // 0x3C00 = 1.0, 0x1000 = 2^-11 (half an ulp of 1.0), 0x1600 = 3 * 2^-11.
  auto out = run1(R"(
    mov.b32 %r10, 0x3C003C00; mov.b32 %r11, 0x16001000;
    add.rn.f16x2 %r2, %r10, %r11;              st.global.u32 [%rd1], %r2;
    mov.b16 %h1, 0x3C01; mov.b16 %h2, 0x0FFC;
    fma.rn.f16 %h3, %h1, %h1, %h2;             st.global.u16 [%rd1+4], %h3;
    mov.b16 %h2, 0x0FFD;
    fma.rn.f16 %h3, %h1, %h1, %h2;             st.global.u16 [%rd1+6], %h3;
    mov.b16 %h2, 0x1000;
    fma.rn.f16 %h3, %h1, %h1, %h2;             st.global.u16 [%rd1+8], %h3;
    mul.rn.f16 %h4, %h1, %h1; add.rn.f16 %h4, %h4, %h2; st.global.u16 [%rd1+10], %h4;
    mov.b32 %r10, 0x7BFF4000; mov.b32 %r11, 0x40004200;
    mul.rn.f16x2 %r2, %r10, %r11;              st.global.u32 [%rd1+12], %r2;
    mov.b32 %r10, 0x3C000000; mov.b32 %r11, 0x3C008000;
    sub.rn.f16x2 %r2, %r10, %r11;              st.global.u32 [%rd1+16], %r2;
    mov.b32 %r10, 0x3C00C000; mov.b32 %r11, 0xBC004000;
    max.f16x2 %r2, %r10, %r11;                 st.global.u32 [%rd1+20], %r2;
    mov.b32 %r10, 0x3C00BC00;
    neg.f16x2 %r2, %r10;                       st.global.u32 [%rd1+24], %r2;
  )",
                  7);
  // Low: 1 + 2^-11 is a tie between 0x3C00 and 0x3C01 -> even 0x3C00. High:
  // 1 + 3 * 2^-11 ties between 0x3C01 and 0x3C02 -> even 0x3C02.
  EXPECT_EQ(out[0], 0x3C023C00u);
  // (1+2^-10)^2 = 1 + 2^-9 + 2^-20; + 0x0FFC (511 * 2^-20) = 1 + 2^-9 +
  // 2^-11: an exact tie between 0x3C02 and 0x3C03 -> 0x3C02; 0x0FFD adds
  // 2^-22 more -> 0x3C03.
  EXPECT_EQ(out[1] & 0xffff, 0x3C02u);
  EXPECT_EQ(out[1] >> 16, 0x3C03u);
  // Fused: 1 + 2^-9 + 2^-11 + 2^-20 rounds up to 0x3C03; unfused the
  // product first rounds to 0x3C02 and the tie then stays at 0x3C02.
  EXPECT_EQ(out[2] & 0xffff, 0x3C03u);
  EXPECT_EQ(out[2] >> 16, 0x3C02u);
  // 65504 * 2 overflows to +inf (0x7C00) under .rn; 2 * 3 = 6 (0x4600).
  EXPECT_EQ(out[3], 0x7C004600u);
  // 1 - 1 = +0; 0 - (-0) = +0 (0x0000).
  EXPECT_EQ(out[4], 0x00000000u);
  // max(1, -1) = 1 (0x3C00) high; max(-2, 2) = 2 (0x4000) low.
  EXPECT_EQ(out[5], 0x3C004000u);
  EXPECT_EQ(out[6], 0xBC003C00u);
}

TEST_F(Emu, SinglePrecision) {
  // 0x3F800800 = 1 + 2^-12: its square is 1 + 2^-11 + 2^-24, a tie in f32.
  auto out = run1(R"(
    mov.b32 %f1, 0x3F800800; mov.b32 %f2, 0xBF801000;
    fma.rn.f32 %f3, %f1, %f1, %f2;        st.global.f32 [%rd1], %f3;
    mul.rn.f32 %f4, %f1, %f1; add.rn.f32 %f4, %f4, %f2; st.global.f32 [%rd1+4], %f4;
    div.rn.f32 %f5, 0f3F800000, 0f40400000;  st.global.f32 [%rd1+8], %f5;
    sqrt.rn.f32 %f5, 0f40000000;             st.global.f32 [%rd1+12], %f5;
    ex2.approx.f32 %f5, 0f3F800000;          st.global.f32 [%rd1+16], %f5;
    max.f32 %f5, 0f7FC00000, 0f3F800000;     st.global.f32 [%rd1+20], %f5;
    neg.f32 %f5, 0f00000000;                 st.global.f32 [%rd1+24], %f5;
    abs.f32 %f5, 0fBF800000;                 st.global.f32 [%rd1+28], %f5;
    add.rn.ftz.f32 %f5, 0f00000001, 0f00000000; st.global.f32 [%rd1+32], %f5;
    add.rn.f32 %f5, 0f00000001, 0f00000000;  st.global.f32 [%rd1+36], %f5;
    rcp.rn.f32 %f5, 0f40800000;              st.global.f32 [%rd1+40], %f5;
    copysign.f32 %f5, 0fBF800000, 0f40000000; st.global.f32 [%rd1+44], %f5;
    add.f64 %fd1, 0d3FF0000000000000, 0d3CB0000000000000; st.global.f64 [%rd1+48], %fd1;
  )",
                  14);
  EXPECT_EQ(out[0], 0x33800000u); // exactly 2^-24: fused
  EXPECT_EQ(out[1], 0u);          // the product rounded (tie to even) first
  EXPECT_EQ(out[2], 0x3EAAAAABu); // 1/3 rounded to nearest
  EXPECT_EQ(out[3], 0x3FB504F3u); // sqrt(2)
  EXPECT_EQ(out[4], 0x40000000u);
  EXPECT_EQ(out[5], 0x3F800000u); // max with NaN returns the number
  EXPECT_EQ(out[6], 0x80000000u);
  EXPECT_EQ(out[7], 0x3F800000u);
  EXPECT_EQ(out[8], 0u); // .ftz flushes the subnormal
  EXPECT_EQ(out[9], 1u);
  EXPECT_EQ(out[10], 0x3E800000u);
  EXPECT_EQ(out[11], 0xC0000000u); // |2| with the sign of -1
  // 1 + 2^-52 in f64 (0x3CB0... = 2^-52).
  EXPECT_EQ(out[12], 1u);
  EXPECT_EQ(out[13], 0x3FF00000u);
}

TEST_F(Emu, Conversions) {
  auto out = run1(R"(
    cvt.rn.f16.f32 %h1, 0f3F801000;   st.global.u16 [%rd1], %h1;
    cvt.rn.f16.f32 %h1, 0f3F803000;   st.global.u16 [%rd1+2], %h1;
    cvt.rz.f16.f32 %h1, 0f3F803000;   st.global.u16 [%rd1+4], %h1;
    cvt.rp.f16.f32 %h1, 0f3F800001;   st.global.u16 [%rd1+6], %h1;
    mov.b16 %h2, 0x3555;
    cvt.f32.f16 %f1, %h2;             st.global.f32 [%rd1+8], %f1;
    cvt.rni.s32.f32 %r2, 0f40200000;  st.global.u32 [%rd1+12], %r2;
    cvt.rni.s32.f32 %r2, 0fC0200000;  st.global.u32 [%rd1+16], %r2;
    cvt.rzi.s32.f32 %r2, 0fC02CCCCD;  st.global.u32 [%rd1+20], %r2;
    cvt.rmi.s32.f32 %r2, 0fC02CCCCD;  st.global.u32 [%rd1+24], %r2;
    cvt.rpi.s32.f32 %r2, 0f40066666;  st.global.u32 [%rd1+28], %r2;
    cvt.rzi.s32.f32 %r2, 0f501502F9;  st.global.u32 [%rd1+32], %r2;
    cvt.rzi.s32.f32 %r2, 0f7FC00000;  st.global.u32 [%rd1+36], %r2;
    cvt.sat.u8.u32 %r2, 300;          st.global.u32 [%rd1+40], %r2;
    cvt.s8.s32 %r2, 300;              st.global.u32 [%rd1+44], %r2;
    cvt.s64.s32 %rd6, -1;             st.global.u64 [%rd1+48], %rd6;
    cvt.u64.u32 %rd6, 0xffffffff;     st.global.u64 [%rd1+56], %rd6;
    cvt.rn.f32.s32 %f2, 16777217;     st.global.f32 [%rd1+64], %f2;
    cvt.rn.f16x2.f32 %r2, 0f3F800000, 0f40000000; st.global.u32 [%rd1+68], %r2;
    cvt.rn.bf16.f32 %h3, 0f3F808000;  st.global.u16 [%rd1+72], %h3;
    cvt.rn.bf16.f32 %h3, 0f3F818000;  st.global.u16 [%rd1+74], %h3;
    cvt.rzi.u32.f32 %r2, 0fBF800000;  st.global.u32 [%rd1+76], %r2;
    cvt.rn.f16.f32 %h1, 0f477FF000;   st.global.u16 [%rd1+80], %h1;
    cvt.rn.f16.f32 %h1, 0f33800000;   st.global.u16 [%rd1+82], %h1;
  )",
                  21);
  EXPECT_EQ(out[0] & 0xffff, 0x3C00u); // 1 + 2^-11: tie -> even
  EXPECT_EQ(out[0] >> 16, 0x3C02u);    // 1 + 3 * 2^-11: tie -> even
  EXPECT_EQ(out[1] & 0xffff, 0x3C01u); // .rz truncates
  EXPECT_EQ(out[1] >> 16, 0x3C01u);    // .rp: just above 1.0 rounds up
  EXPECT_EQ(out[2], 0x3EAAA000u);      // 0x3555 = 0.333251953125 exactly
  EXPECT_EQ(out[3], 2u);               // 2.5 -> 2 (even)
  EXPECT_EQ(out[4], uint32_t(-2));     // -2.5 -> -2
  EXPECT_EQ(out[5], uint32_t(-2));     // -2.7 towards zero
  EXPECT_EQ(out[6], uint32_t(-3));     // -2.7 down
  EXPECT_EQ(out[7], 3u);               // 2.1 up
  EXPECT_EQ(out[8], 0x7fffffffu);      // 1e10 saturates
  EXPECT_EQ(out[9], 0u);               // NaN -> 0
  EXPECT_EQ(out[10], 255u);
  EXPECT_EQ(out[11], 44u); // 300 mod 256 = 44
  EXPECT_EQ(out[12], 0xffffffffu);
  EXPECT_EQ(out[13], 0xffffffffu);
  EXPECT_EQ(out[14], 0xffffffffu);
  EXPECT_EQ(out[15], 0u);
  EXPECT_EQ(out[16], 0x4B800000u); // 2^24 + 1 -> 2^24 (even)
  EXPECT_EQ(out[17], 0x3C004000u); // cvt(a) in the upper half
  // bf16: 1 + 2^-8 ties -> 1.0 (0x3F80); 1 + 3 * 2^-8 ties -> 0x3F82.
  EXPECT_EQ(out[18] & 0xffff, 0x3F80u);
  EXPECT_EQ(out[18] >> 16, 0x3F82u);
  EXPECT_EQ(out[19], 0u); // -1 to unsigned saturates to 0
  // 65520 (0x477FF000) is the f16 overflow threshold under .rn -> inf;
  // 2^-24 (0x33800000) is the smallest f16 subnormal (0x0001).
  EXPECT_EQ(out[20] & 0xffff, 0x7C00u);
  EXPECT_EQ(out[20] >> 16, 0x0001u);
}

//===----------------------------------------------------------------------===//
// Moves, vectors and state spaces (PTX ISA "mov", "ld", "st", "cvta")
//===----------------------------------------------------------------------===//

TEST_F(Emu, MovPackUnpackAndVectors) {
  auto out = run1(R"(
    mov.b16 %h1, 0x1111; mov.b16 %h2, 0x2222;
    mov.b32 %r2, {%h1, %h2};        st.global.u32 [%rd1], %r2;
    mov.b32 {%h3, %h4}, 0xAABBCCDD; st.global.u16 [%rd1+4], %h3; st.global.u16 [%rd1+6], %h4;
    mov.b64 %rd6, 0x1122334455667788;
    mov.b64 {%r3, %r4}, %rd6;       st.global.v2.u32 [%rd1+8], {%r3, %r4};
    ld.global.v4.u32 {%r5, %r6, %r7, %r8}, [%rd2];
    st.global.v4.u32 [%rd1+16], {%r8, %r7, %r6, %r5};
    ld.global.v2.u32 {%r9, _}, [%rd2+8]; st.global.u32 [%rd1+32], %r9;
  )",
                  9, {1, 2, 3, 4});
  EXPECT_EQ(out[0], 0x22221111u);
  EXPECT_EQ(out[1], 0xAABBCCDDu);
  EXPECT_EQ(out[2], 0x55667788u);
  EXPECT_EQ(out[3], 0x11223344u);
  EXPECT_EQ(out[4], 4u);
  EXPECT_EQ(out[5], 3u);
  EXPECT_EQ(out[6], 2u);
  EXPECT_EQ(out[7], 1u);
  EXPECT_EQ(out[8], 3u);
}

TEST_F(Emu, SharedLocalConstAndGenericAddressing) {
  std::string ptx =
      std::string(kHeader) +
      ".const .align 4 .u32 tbl[3] = {10, 20, 30};\n"
      ".extern .shared .align 16 .b8 dyn[];\n"
      ".visible .entry k(.param .u64 k_out, .param .u64 k_in)\n{\n"
      ".reg .b32 %r<16>; .reg .b64 %rd<16>;\n"
      ".shared .align 4 .u32 st[4];\n"
      ".local .align 4 .u32 loc[2];\n"
      "ld.param.u64 %rd1, [k_out];\n"
      "mov.u32 %r1, 7; st.shared.u32 [st+4], %r1;\n"
      "ld.shared.u32 %r2, [st+4]; st.global.u32 [%rd1], %r2;\n"
      "mov.u32 %r3, 9; st.shared.u32 [dyn+8], %r3;\n"
      "mov.u64 %rd2, dyn; cvta.shared.u64 %rd3, %rd2;\n"
      "ld.u32 %r4, [%rd3+8]; st.global.u32 [%rd1+4], %r4;\n"
      "mov.u64 %rd4, loc; cvta.local.u64 %rd5, %rd4;\n"
      "st.u32 [%rd5+4], %r3; ld.local.u32 %r5, [loc+4]; st.global.u32 "
      "[%rd1+8], %r5;\n"
      "ld.const.u32 %r6, [tbl+8]; st.global.u32 [%rd1+12], %r6;\n"
      "mov.u32 %r7, %dynamic_smem_size; st.global.u32 [%rd1+16], %r7;\n"
      "cvta.to.shared.u64 %rd6, %rd3; sub.s64 %rd7, %rd6, %rd2;\n"
      "cvt.u32.u64 %r8, %rd7; st.global.u32 [%rd1+20], %r8;\n"
      "mov.u64 %rd8, st; cvt.u32.u64 %r9, %rd8; st.global.u32 [%rd1+24], %r9;\n"
      "mov.u64 %rd9, dyn; cvt.u32.u64 %r10, %rd9; st.global.u32 [%rd1+28], "
      "%r10;\n"
      "ret;\n}\n";
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {1, 1, 1}, out, 8, {}, 64);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(out[0], 7u);
  EXPECT_EQ(out[1], 9u);
  EXPECT_EQ(out[2], 9u);
  EXPECT_EQ(out[3], 30u);
  EXPECT_EQ(out[4], 64u);
  EXPECT_EQ(out[5], 0u);  // cvta.to.shared inverts cvta.shared
  EXPECT_EQ(out[6], 0u);  // the static array starts shared memory
  EXPECT_EQ(out[7], 16u); // dynamic memory follows it, 16-byte aligned
}

// Special registers (PTX ISA "Special Registers") over a 3-D grid and block:
// thread (x, y, z) of block (bx, by, bz) writes its ids at its linear index.
TEST_F(Emu, SpecialRegisters3D) {
  std::string ptx = kernel(R"(
    mov.u32 %r1, %tid.x; mov.u32 %r2, %tid.y; mov.u32 %r3, %tid.z;
    mov.u32 %r4, %ntid.x; mov.u32 %r5, %ntid.y; mov.u32 %r6, %ntid.z;
    mov.u32 %r7, %ctaid.x; mov.u32 %r8, %ctaid.y; mov.u32 %r9, %ctaid.z;
    mov.u32 %r10, %nctaid.x; mov.u32 %r11, %nctaid.y;
    mov.u32 %r12, %laneid; mov.u32 %r13, %warpid;
    // linear thread id in the block, then the block's linear id
    mad.lo.u32 %r14, %r3, %r5, %r2; mad.lo.u32 %r14, %r14, %r4, %r1;
    mad.lo.u32 %r15, %r9, %r11, %r8; mad.lo.u32 %r15, %r15, %r10, %r7;
    mul.lo.u32 %r16, %r4, %r5; mul.lo.u32 %r16, %r16, %r6;
    mad.lo.u32 %r17, %r15, %r16, %r14;
    mul.wide.u32 %rd6, %r17, 16; add.s64 %rd7, %rd1, %rd6;
    shl.b32 %r18, %r1, 16; or.b32 %r18, %r18, %r2;
    shl.b32 %r19, %r7, 16; or.b32 %r19, %r19, %r9;
    shl.b32 %r20, %r13, 16; or.b32 %r20, %r20, %r12;
    st.global.v4.u32 [%rd7], {%r18, %r3, %r19, %r20};
  )");
  std::vector<uint32_t> out;
  Dim3 grid{3, 2, 2}, block{5, 4, 3}; // 60 threads: 2 warps, the 2nd partial
  Status s = run(ptx, grid, block, out, 12 * 60 * 4);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (uint32_t bz = 0; bz < 2; ++bz)
    for (uint32_t by = 0; by < 2; ++by)
      for (uint32_t bx = 0; bx < 3; ++bx)
        for (uint32_t z = 0; z < 3; ++z)
          for (uint32_t y = 0; y < 4; ++y)
            for (uint32_t x = 0; x < 5; ++x) {
              uint32_t t = (z * 4 + y) * 5 + x, b = (bz * 2 + by) * 3 + bx;
              const uint32_t *o = &out[(b * 60 + t) * 4];
              EXPECT_EQ(o[0], (x << 16) | y);
              EXPECT_EQ(o[1], z);
              EXPECT_EQ(o[2], (bx << 16) | bz);
              EXPECT_EQ(o[3], ((t / 32) << 16) | (t % 32));
            }
}

//===----------------------------------------------------------------------===//
// SIMT: divergence, reconvergence, exit, barriers
//===----------------------------------------------------------------------===//

TEST_F(Emu, DivergentLoopsAndBranchesReconverge) {
  // Each lane loops tid % 5 times; odd lanes take another path; after the
  // join a full-warp shfl.sync needs all 32 lanes converged again.
  std::string ptx = kernel(R"(
    rem.u32 %r1, %r0, 5;
    mov.u32 %r2, 0;
    setp.eq.u32 %p1, %r1, 0;
    @%p1 bra DONE;
  LOOP:
    add.u32 %r2, %r2, 10;
    sub.u32 %r1, %r1, 1;
    setp.ne.u32 %p2, %r1, 0;
    @%p2 bra LOOP;
  DONE:
    and.b32 %r3, %r0, 1;
    setp.eq.u32 %p3, %r3, 1;
    @!%p3 bra EVEN;
    add.u32 %r2, %r2, 1000;
    bra.uni JOIN;
  EVEN:
    add.u32 %r2, %r2, 2000;
  JOIN:
    shfl.sync.bfly.b32 %r4, %r2, 1, 0x1f, 0xffffffff;
    st.global.u32 [%rd4], %r2;
    add.s64 %rd6, %rd4, 256;
    st.global.u32 [%rd6], %r4;
  )");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {64, 1, 1}, out, 128);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (uint32_t t = 0; t < 64; ++t) {
    uint32_t v = 10 * (t % 5) + (t % 2 ? 1000 : 2000);
    uint32_t u = t ^ 1;
    EXPECT_EQ(out[t], v) << t;
    EXPECT_EQ(out[64 + t], 10 * (u % 5) + (u % 2 ? 1000 : 2000)) << t;
  }
}

TEST_F(Emu, ExitedLanesAndPartialWarps) {
  // 40 threads: lanes >= 20 exit early; the rest still pass a barrier.
  std::string ptx = kernel(R"(
    setp.ge.u32 %p1, %r0, 20;
    @%p1 exit;
    bar.sync 0;
    activemask.b32 %r2;
    st.global.u32 [%rd4], %r2;
  )");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {40, 1, 1}, out, 40);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (uint32_t t = 0; t < 40; ++t)
    EXPECT_EQ(out[t], t < 20 ? 0x000fffffu : 0xdeadbeefu) << t;
}

TEST_F(Emu, BarrierOrdersSharedMemoryBetweenWarps) {
  // Thread t writes smem[t]; after bar.sync thread t reads smem[127 - t],
  // written by another warp.
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm; add.s64 %rd7, %rd6, %rd3;
    mul.lo.u32 %r1, %r0, 3; st.shared.u32 [%rd7], %r1;
    bar.sync 0;
    sub.u32 %r2, 127, %r0; mul.wide.u32 %rd8, %r2, 4; add.s64 %rd9, %rd6, %rd8;
    ld.shared.u32 %r3, [%rd9];
    st.global.u32 [%rd4], %r3;
    bar.sync 0;
    st.shared.u32 [%rd7], %r0;
  )",
                           ".shared .align 4 .b8 sm[512];");
  std::vector<uint32_t> out;
  Status s = run(ptx, {2, 1, 1}, {128, 1, 1}, out, 128);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (uint32_t t = 0; t < 128; ++t)
    EXPECT_EQ(out[t], 3 * (127 - t)) << t;
}

//===----------------------------------------------------------------------===//
// Warp collectives: PTX ISA "shfl.sync", "vote.sync"
//===----------------------------------------------------------------------===//

TEST_F(Emu, ShflModesClampsAndSegments) {
  std::string ptx = kernel(R"(
    mul.lo.u32 %r1, %r0, 10;
    shfl.sync.down.b32 %r2|%p1, %r1, 1, 0x1f, 0xffffffff;
    selp.u32 %r3, 1, 0, %p1;
    shfl.sync.up.b32 %r4, %r1, 1, 0, 0xffffffff;
    shfl.sync.bfly.b32 %r5, %r1, 1, 0x1f, 0xffffffff;
    shfl.sync.idx.b32 %r6, %r1, 5, 0x1f, 0xffffffff;
    shfl.sync.idx.b32 %r7, %r1, 2, 0x181f, 0xffffffff;
    shfl.sync.down.b32 %r8, %r1, 1, 0x181f, 0xffffffff;
    st.global.u32 [%rd4], %r2;
    st.global.u32 [%rd4+128], %r3;
    st.global.u32 [%rd4+256], %r4;
    st.global.u32 [%rd4+384], %r5;
    st.global.u32 [%rd4+512], %r6;
    st.global.u32 [%rd4+640], %r7;
    st.global.u32 [%rd4+768], %r8;
  )");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {32, 1, 1}, out, 32 * 7);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (uint32_t l = 0; l < 32; ++l) {
    EXPECT_EQ(out[l], l == 31 ? 310 : (l + 1) * 10) << l;   // down 1
    EXPECT_EQ(out[32 + l], l == 31 ? 0u : 1u) << l;         // valid
    EXPECT_EQ(out[64 + l], l == 0 ? 0 : (l - 1) * 10) << l; // up 1
    EXPECT_EQ(out[96 + l], (l ^ 1) * 10) << l;              // bfly 1
    EXPECT_EQ(out[128 + l], 50u) << l;                      // idx 5
    // Width-8 segments (c = ((32 - 8) << 8) | 0x1f): idx 2 of each segment;
    // down 1 stays inside the segment (lane 7 keeps its own value).
    EXPECT_EQ(out[160 + l], ((l & 0x18) | 2) * 10) << l;
    EXPECT_EQ(out[192 + l], (l % 8 == 7 ? l : l + 1) * 10) << l;
  }
}

TEST_F(Emu, VoteBallotAnyAll) {
  std::string ptx = kernel(R"(
    and.b32 %r1, %r0, 1; setp.eq.u32 %p1, %r1, 1;
    vote.sync.ballot.b32 %r2, %p1, 0xffffffff;
    vote.sync.any.pred %p2, %p1, 0xffffffff;
    vote.sync.all.pred %p3, %p1, 0xffffffff;
    selp.u32 %r3, 1, 0, %p2; selp.u32 %r4, 1, 0, %p3;
    st.global.u32 [%rd4], %r2; st.global.u32 [%rd4+128], %r3;
    st.global.u32 [%rd4+256], %r4;
  )");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {32, 1, 1}, out, 96);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(out[0], 0xAAAAAAAAu);
  EXPECT_EQ(out[32], 1u);
  EXPECT_EQ(out[64], 0u);
}

//===----------------------------------------------------------------------===//
// Atomics (PTX ISA "atom", "red")
//===----------------------------------------------------------------------===//

TEST_F(Emu, AtomicsAcrossBlocksAndWorkers) {
  std::string ptx = kernel(R"(
    atom.global.add.u32 %r1, [%rd1], 1;
    red.global.add.f32 [%rd1+4], 0f3F000000;
    atom.global.max.s32 %r2, [%rd1+8], %r0;
    mov.u64 %rd6, sm;
    setp.eq.u32 %p1, %r0, 0;
    @%p1 st.shared.u32 [%rd6], 0;
    bar.sync 0;
    atom.shared.add.u32 %r3, [%rd6], 2;
    bar.sync 0;
    ld.shared.u32 %r4, [%rd6];
    @%p1 atom.global.add.u32 %r5, [%rd1+12], %r4;
    @%p1 atom.global.cas.b32 %r6, [%rd1+16], 0, 77;
    @%p1 atom.global.exch.b32 %r7, [%rd1+20], 5;
  )",
                           ".shared .align 4 .b8 sm[4];");
  Module *m = nullptr;
  ASSERT_TRUE(dev.loadModule(ptx, "atom.ptx", m).isOk());
  Kernel *k = nullptr;
  ASSERT_TRUE(dev.getKernel(m, "k", k).isOk());
  uint64_t dout = 0, din = 0;
  ASSERT_TRUE(dev.malloc(64, dout).isOk());
  ASSERT_TRUE(dev.malloc(64, din).isOk());
  ASSERT_TRUE(dev.memset8(dout, 0, 64).isOk());
  void *args[] = {&dout, &din};
  Status s = dev.launch(k, {8, 1, 1}, {64, 1, 1}, 0, args);
  ASSERT_TRUE(s.isOk()) << s.message();
  uint32_t out[6];
  ASSERT_TRUE(dev.copyToHost(out, dout, 24).isOk());
  EXPECT_EQ(out[0], 512u);
  EXPECT_EQ(f32(out[1]), 256.0f);
  EXPECT_EQ(out[2], 63u);
  EXPECT_EQ(out[3], 8u * 128u); // each block's shared counter is 64 * 2
  EXPECT_EQ(out[4], 77u);       // the first cas wins, the others see 77
  EXPECT_EQ(out[5], 5u);
}

//===----------------------------------------------------------------------===//
// mma.sync and ldmatrix (PTX ISA "Warp Level Matrix Multiply-Accumulate
// Instructions": "mma", "ldmatrix")
//===----------------------------------------------------------------------===//

// The fragment layouts of "Matrix Fragments for mma.m16n8k16 with floating
// point type", written out independently of the emulator: groupID = lane >>
// 2, threadID_in_group = lane % 4.
struct Frag {
  static void aRowCol(unsigned lane, unsigned i, unsigned &r, unsigned &c) {
    unsigned g = lane >> 2, t = lane % 4;
    r = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
    c = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
  }
  static void bRowCol(unsigned lane, unsigned i, unsigned &r, unsigned &c) {
    unsigned g = lane >> 2, t = lane % 4;
    r = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
    c = g;
  }
  static void cRowCol(unsigned lane, unsigned i, unsigned &r, unsigned &c) {
    unsigned g = lane >> 2, t = lane % 4;
    r = i < 2 ? g : g + 8;
    c = t * 2 + (i & 1);
  }
};

uint16_t halfOfSmallInt(int v) {
  // Small integers (|v| <= 2048) as f16 bit patterns.
  if (v == 0)
    return 0;
  uint16_t sign = v < 0 ? 0x8000 : 0;
  unsigned a = unsigned(v < 0 ? -v : v);
  int e = 31 - __builtin_clz(a);
  unsigned mant = (a << (10 - e)) & 0x3ff;
  return uint16_t(sign | ((e + 15) << 10) | mant);
}

TEST_F(Emu, MmaM16N8K16F16) {
  // Fragments come from `in` (per lane: a0..a3, b0, b1, c0..c3) and D goes
  // to `out` (per lane d0..d3).
  std::string ptx = kernel(R"(
    mul.wide.u32 %rd6, %r0, 48; add.s64 %rd7, %rd2, %rd6;
    ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd7];
    ld.global.v2.u32 {%r5, %r6}, [%rd7+16];
    ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd7+32];
    mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%f5, %f6, %f7, %f8}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
    mul.wide.u32 %rd8, %r0, 16; add.s64 %rd9, %rd1, %rd8;
    st.global.v4.f32 [%rd9], {%f5, %f6, %f7, %f8};
  )");
  int A[16][16], B[16][8];
  float C[16][8];
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c)
      A[r][c] = (r * 7 + c * 3) % 11 - 5;
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c) {
      B[r][c] = (r * 5 + c * 2) % 9 - 4;
      C[r % 16][c] = 0.25f * float(r - c);
    }
  // Per lane 12 words: a0..a3 at 0, b0, b1 at 4, c0..c3 at 8.
  std::vector<uint32_t> in(32 * 12);
  for (unsigned l = 0; l < 32; ++l) {
    for (unsigned i = 0; i < 8; ++i) {
      unsigned r, c;
      Frag::aRowCol(l, i, r, c);
      in[l * 12 + i / 2] |= uint32_t(halfOfSmallInt(A[r][c])) << (16 * (i % 2));
    }
    for (unsigned i = 0; i < 4; ++i) {
      unsigned r, c;
      Frag::bRowCol(l, i, r, c);
      in[l * 12 + 4 + i / 2] |= uint32_t(halfOfSmallInt(B[r][c]))
                                << (16 * (i % 2));
    }
    for (unsigned i = 0; i < 4; ++i) {
      unsigned r, c;
      Frag::cRowCol(l, i, r, c);
      std::memcpy(&in[l * 12 + 8 + i], &C[r][c], 4);
    }
  }
  // Spot checks of the layout itself, by hand from the figures: lane 0
  // holds A[0][0], A[0][1] in a0/a1, A[8][0] in a2, A[0][8] in a4; lane 7
  // (groupID 1, threadID_in_group 3) holds A[1][6] in a0 and B[6][1] in b0.
  EXPECT_EQ(in[0] & 0xffff, halfOfSmallInt(A[0][0]));
  EXPECT_EQ(in[0] >> 16, halfOfSmallInt(A[0][1]));
  EXPECT_EQ(in[1] & 0xffff, halfOfSmallInt(A[8][0]));
  EXPECT_EQ(in[2] & 0xffff, halfOfSmallInt(A[0][8]));
  EXPECT_EQ(in[84] & 0xffff, halfOfSmallInt(A[1][6]));
  EXPECT_EQ(in[88] & 0xffff, halfOfSmallInt(B[6][1]));
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {32, 1, 1}, out, 128, in);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (unsigned l = 0; l < 32; ++l)
    for (unsigned i = 0; i < 4; ++i) {
      unsigned r, c;
      Frag::cRowCol(l, i, r, c);
      float want = C[r][c];
      for (int k = 0; k < 16; ++k)
        want += float(A[r][k] * B[k][c]);
      EXPECT_EQ(f32(out[l * 4 + i]), want) << "lane " << l << " d" << i;
    }
}

TEST_F(Emu, MmaBf16AndK8) {
  // All-ones A and B: D = C + K for every element (K = 16 for bf16 m16n8k16
  // and for the f16-accumulator form, K = 8 for m16n8k8), independent of
  // the layout.
  std::string ptx = kernel(R"(
    mov.b32 %r1, 0x3F803F80;  // bf16x2 (1, 1)
    mov.f32 %f1, 0f3F000000;  // 0.5
    mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f5, %f6, %f7, %f8}, {%r1, %r1, %r1, %r1}, {%r1, %r1}, {%f1, %f1, %f1, %f1};
    mov.b32 %r3, 0x38003800;  // f16x2 (0.5, 0.5)
    mov.b32 %r2, 0x3C003C00;  // f16x2 (1, 1)
    mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%r4, %r5}, {%r2, %r2, %r2, %r2}, {%r2, %r2}, {%r3, %r3};
    st.global.u32 [%rd4+256], %r5;
    mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%f9, %f10, %f11, %f12}, {%r2, %r2}, {%r2}, {%f1, %f1, %f1, %f1};
    st.global.f32 [%rd4], %f5;
    st.global.f32 [%rd4+128], %f12;
  )");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {32, 1, 1}, out, 96);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (unsigned l = 0; l < 32; ++l) {
    EXPECT_EQ(f32(out[l]), 16.5f);
    EXPECT_EQ(f32(out[32 + l]), 8.5f);
    EXPECT_EQ(out[64 + l], 0x4C204C20u); // f16 accumulators: 16.5 = 0x4C20
  }
}

TEST_F(Emu, LdmatrixX4AndTrans) {
  // Shared memory holds four 8x8 .b16 matrices, element (i, r, c) = 256 * i +
  // 8 * r + c, rows 16 bytes apart; lane L supplies the address of row L % 8
  // of matrix L / 8.
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm;
    mul.wide.u32 %rd7, %r0, 2;
    // fill: thread t writes elements 8t..8t+7 (256 elements = 512 bytes)
    mov.u32 %r1, 0;
  FILL:
    mad.lo.u32 %r2, %r0, 8, %r1;
    shr.u32 %r3, %r2, 6; and.b32 %r4, %r2, 63;
    mad.lo.u32 %r5, %r3, 256, %r4;
    mul.wide.u32 %rd8, %r2, 2; add.s64 %rd9, %rd6, %rd8;
    cvt.u16.u32 %h1, %r5; st.shared.u16 [%rd9], %h1;
    add.u32 %r1, %r1, 1; setp.lt.u32 %p1, %r1, 8; @%p1 bra FILL;
    bar.sync 0;
    mul.wide.u32 %rd10, %r0, 16; add.s64 %rd11, %rd6, %rd10;
    ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r10, %r11, %r12, %r13}, [%rd11];
    ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%r14, %r15}, [%rd11];
    ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%r16}, [%rd11];
    mul.wide.u32 %rd12, %r0, 32; add.s64 %rd13, %rd1, %rd12;
    st.global.v4.u32 [%rd13], {%r10, %r11, %r12, %r13};
    st.global.v2.u32 [%rd13+16], {%r14, %r15};
    st.global.u32 [%rd13+24], %r16;
  )",
                           ".shared .align 16 .b8 sm[512];");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {32, 1, 1}, out, 32 * 8);
  ASSERT_TRUE(s.isOk()) << s.message();
  auto el = [](unsigned i, unsigned r, unsigned c) {
    return 256 * i + 8 * r + c;
  };
  // Lane 5 by hand: row 1, columns 2 and 3 -> (10, 11) = 0x000B000A in d0;
  // transposed: rows 2 and 3 of column 1 -> (17, 25) = 0x00190011.
  EXPECT_EQ(out[5 * 8 + 0], 0x000B000Au);
  EXPECT_EQ(out[5 * 8 + 4], 0x00190011u);
  for (unsigned l = 0; l < 32; ++l) {
    for (unsigned i = 0; i < 4; ++i)
      EXPECT_EQ(out[l * 8 + i], el(i, l / 4, 2 * (l % 4)) |
                                    (el(i, l / 4, 2 * (l % 4) + 1) << 16))
          << l << " " << i;
    for (unsigned i = 0; i < 2; ++i)
      EXPECT_EQ(out[l * 8 + 4 + i], el(i, 2 * (l % 4), l / 4) |
                                        (el(i, 2 * (l % 4) + 1, l / 4) << 16))
          << l << " trans " << i;
    EXPECT_EQ(out[l * 8 + 6], el(0, l / 4, 2 * (l % 4)) |
                                  (el(0, l / 4, 2 * (l % 4) + 1) << 16));
  }
}

//===----------------------------------------------------------------------===//
// cp.async (PTX ISA "cp.async", "cp.async.commit_group", "cp.async.wait_group")
//===----------------------------------------------------------------------===//

TEST_F(Emu, CpAsyncLandsAtTheWaitAndZeroFills) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm;
    cp.async.cg.shared.global [%rd6], [%rd2], 16;
    cp.async.commit_group;
    cp.async.ca.shared.global [%rd6+16], [%rd2+16], 16, 4;
    cp.async.commit_group;
    cp.async.ca.shared.global [%rd6+32], [%rd2], 8;
    cp.async.wait_group 1;
    ld.shared.v4.u32 {%r1, %r2, %r3, %r4}, [%rd6];
    cp.async.wait_all;
    ld.shared.v4.u32 {%r5, %r6, %r7, %r8}, [%rd6+16];
    ld.shared.v2.u32 {%r9, %r10}, [%rd6+32];
    st.global.v4.u32 [%rd1], {%r1, %r2, %r3, %r4};
    st.global.v4.u32 [%rd1+16], {%r5, %r6, %r7, %r8};
    st.global.v2.u32 [%rd1+32], {%r9, %r10};
  )",
                           ".shared .align 16 .b8 sm[64];");
  std::vector<uint32_t> out;
  Status s = run(ptx, {1, 1, 1}, {1, 1, 1}, out, 10, {1, 2, 3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(out, (std::vector<uint32_t>{1, 2, 3, 4, 5, 0, 0, 0, 1, 2}));
}

//===----------------------------------------------------------------------===//
// Checks: each error names the kernel, block, thread and PTX line.
//===----------------------------------------------------------------------===//

class EmuCheck : public Emu {
protected:
  /// Runs and expects an error containing every needle, and the line of
  /// `at` in the text.
  void expectError(const std::string &ptx, Dim3 grid, Dim3 block,
                   const std::string &at,
                   const std::vector<std::string> &needles, uint32_t dyn = 0) {
    std::vector<uint32_t> out;
    Status s =
        run(ptx, grid, block, out, 64, std::vector<uint32_t>(64, 1), dyn);
    ASSERT_FALSE(s.isOk()) << "no error";
    const std::string &m = s.message();
    EXPECT_NE(m.find("kernel 'k' block ("), std::string::npos) << m;
    EXPECT_NE(m.find(") thread ("), std::string::npos) << m;
    EXPECT_NE(m.find(", line " + std::to_string(lineOf(ptx, at)) + ":"),
              std::string::npos)
        << m << "\nexpected line " << lineOf(ptx, at);
    for (const std::string &n : needles)
      EXPECT_NE(m.find(n), std::string::npos) << m << "\nmissing: " << n;
  }
};

TEST_F(EmuCheck, OutOfBoundsGlobal) {
  std::string ptx =
      kernel("st.global.v4.u32 [%rd1+256], {%r0, %r0, %r0, %r0};");
  expectError(ptx, {2, 1, 1}, {32, 1, 1}, "st.global.v4.u32",
              {"st.global.v4.u32 writes 16 bytes at 0x",
               "outside any allocation", "block (0,0,0) thread (0,0,0)"});
}

TEST_F(EmuCheck, OutOfBoundsShared) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm; add.s64 %rd7, %rd6, %rd3;
    setp.eq.u32 %p1, %r0, 17;
    @%p1 add.s64 %rd7, %rd7, 64;
    st.shared.u32 [%rd7], %r0;
  )",
                           ".shared .align 4 .b8 sm[128];");
  expectError(ptx, {1, 1, 1}, {32, 1, 1}, "st.shared.u32",
              {"thread (17,0,0)", "outside the block's 128 bytes of shared"});
}

TEST_F(EmuCheck, MisalignedVectorAccess) {
  std::string ptx = kernel("ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd2+4];");
  expectError(ptx, {1, 1, 1}, {1, 1, 1}, "ld.global.v4.u32",
              {"not 16-byte aligned"});
}

TEST_F(EmuCheck, UninitializedSharedRead) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm;
    st.shared.u32 [%rd6], %r0;
    ld.shared.u32 %r1, [%rd6+4];
  )",
                           ".shared .align 4 .b8 sm[64];");
  expectError(ptx, {1, 1, 1}, {1, 1, 1}, "ld.shared.u32",
              {"uninitialized shared memory at offset 0x4"});
}

TEST_F(EmuCheck, UninitializedRegisterRead) {
  std::string ptx = kernel(R"(
    setp.eq.u32 %p1, %r0, 3;
    @%p1 mov.u32 %r9, 1;
    add.u32 %r10, %r9, 1;
  )");
  expectError(ptx, {1, 1, 1}, {32, 1, 1}, "add.u32 %r10",
              {"thread (0,0,0)", "never wrote"});
}

TEST_F(EmuCheck, SharedRaceWithoutBarrier) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm; add.s64 %rd7, %rd6, %rd3;
    st.shared.u32 [%rd7], %r0;
    bar.sync 0;
    xor.b32 %r1, %r0, 32; mul.wide.u32 %rd8, %r1, 4; add.s64 %rd9, %rd6, %rd8;
    st.shared.u32 [%rd7], %r1;
    ld.shared.u32 %r2, [%rd9];
  )",
                           ".shared .align 4 .b8 sm[256];");
  // Warp 0 writes its slots, then reads warp 1's slots, which warp 1 wrote
  // in the same barrier interval... but warp 1 runs later: the race is seen
  // when warp 1 writes a slot that warp 0 read.
  expectError(ptx, {1, 1, 1}, {64, 1, 1}, "st.shared.u32 [%rd7], %r1",
              {"shared-memory race", "thread (32,0,0)"});
}

TEST_F(EmuCheck, CpAsyncReadBeforeWait) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm;
    cp.async.ca.shared.global [%rd6], [%rd2], 4;
    cp.async.commit_group;
    ld.shared.u32 %r1, [%rd6];
  )",
                           ".shared .align 4 .b8 sm[64];");
  expectError(
      ptx, {1, 1, 1}, {1, 1, 1}, "ld.shared.u32",
      {"cp.async (line " + std::to_string(lineOf(ptx, "cp.async.ca")) + ")",
       "has not been waited for"});
}

TEST_F(EmuCheck, StoreOverAPendingCpAsync) {
  std::string ptx = kernel(R"(
    mov.u64 %rd6, sm;
    cp.async.ca.shared.global [%rd6], [%rd2], 4;
    st.shared.u32 [%rd6], %r0;
    cp.async.wait_all;
  )",
                           ".shared .align 4 .b8 sm[64];");
  expectError(ptx, {1, 1, 1}, {1, 1, 1}, "st.shared.u32",
              {"while a cp.async to it is still in flight"});
}

TEST_F(EmuCheck, DivergentUniformBranch) {
  std::string ptx = kernel(R"(
    setp.lt.u32 %p1, %r0, 7;
    @%p1 bra.uni L1;
  L1:
    mov.u32 %r1, 1;
  )");
  expectError(ptx, {1, 1, 1}, {32, 1, 1}, "bra.uni",
              {"is marked .uni but its predicate differs", "thread (7,0,0)"});
}

TEST_F(EmuCheck, DivergentAlignedBarrier) {
  // Lanes 0-15 and 16-31 of one warp reach two different bar.sync
  // instructions: undefined for the .aligned form.
  std::string ptx = kernel(R"(
    setp.lt.u32 %p1, %r0, 16;
    @%p1 bra LOW;
    bar.sync 0;
    bra.uni DONE;
  LOW:
    bar.sync 0;
  DONE:
    mov.u32 %r1, 1;
  )");
  expectError(ptx, {1, 1, 1}, {32, 1, 1}, "bar.sync 0;\n    bra.uni",
              {"executed by part of the warp"});
}

TEST_F(EmuCheck, IntegerDivisionByZero) {
  std::string ptx = kernel("sub.u32 %r1, %r0, 3; div.u32 %r2, 100, %r1;");
  expectError(ptx, {1, 1, 1}, {8, 1, 1}, "div.u32",
              {"divides by zero", "thread (3,0,0)"});
}

TEST_F(EmuCheck, ParamSpaceWrite) {
  std::string ptx = kernel("st.param.u64 [k_out], %rd2;");
  expectError(ptx, {1, 1, 1}, {1, 1, 1}, "st.param.u64",
              {"writes to kernel parameter space"});
}

TEST_F(EmuCheck, PartialWarpCollective) {
  std::string ptx = kernel(R"(
    setp.lt.u32 %p1, %r0, 16;
    @%p1 shfl.sync.idx.b32 %r1, %r0, 0, 0x1f, 0xffffffff;
  )");
  expectError(ptx, {1, 1, 1}, {32, 1, 1}, "shfl.sync",
              {"membermask 0xffffffff names lanes that do not execute it"});
}

TEST_F(EmuCheck, EndlessLoopHitsTheInstructionLimit) {
  DeviceOptions o = opts();
  o.maxWarpInstructionsPerBlock = 10000;
  Device d(o);
  Module *m = nullptr;
  std::string ptx = kernel("SPIN:\n add.u32 %r1, %r0, 1;\n bra.uni SPIN;");
  ASSERT_TRUE(d.loadModule(ptx, "t.ptx", m).isOk());
  Kernel *k = nullptr;
  ASSERT_TRUE(d.getKernel(m, "k", k).isOk());
  uint64_t a = 0;
  ASSERT_TRUE(d.malloc(64, a).isOk());
  void *args[] = {&a, &a};
  Status s = d.launch(k, {1, 1, 1}, {32, 1, 1}, 0, args);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("limit of 10000 warp instructions"),
            std::string::npos)
      << s.message();
}

TEST_F(EmuCheck, ChecksOffStillCatchesOutOfBounds) {
  DeviceOptions o = opts();
  o.checks = false;
  Device d(o);
  Module *m = nullptr;
  ASSERT_TRUE(d.loadModule(kernel("ld.shared.u32 %r1, [sm+4]; "
                                  "st.global.u32 [%rd1+4096], %r1;",
                                  ".shared .align 4 .b8 sm[64];"),
                           "t.ptx", m)
                  .isOk());
  Kernel *k = nullptr;
  ASSERT_TRUE(d.getKernel(m, "k", k).isOk());
  uint64_t a = 0;
  ASSERT_TRUE(d.malloc(64, a).isOk());
  void *args[] = {&a, &a};
  Status s = d.launch(k, {1, 1, 1}, {1, 1, 1}, 0, args);
  ASSERT_FALSE(s.isOk()); // uninitialized shared is not checked, OOB is
  EXPECT_NE(s.message().find("outside any allocation"), std::string::npos)
      << s.message();
}

//===----------------------------------------------------------------------===//
// Front end errors name the line; launch configuration errors
//===----------------------------------------------------------------------===//

Status loadText(Device &d, const std::string &text) {
  Module *m = nullptr;
  return d.loadModule(text, "bad.ptx", m);
}

TEST_F(Emu, ParserErrorsNameTheLine) {
  struct Case {
    std::string body, at, what;
  } cases[] = {
      {"frobnicate.u32 %r1, %r2;", "frobnicate", "unsupported instruction"},
      {"add.u32 %r1, %q7, 1;", "add.u32", "undeclared register '%q7'"},
      {"bra NOWHERE;", "bra NOWHERE", "undefined label 'NOWHERE'"},
      {"add.u32 %r1, %r2 %r3;", "add.u32", "expected ';'"},
      {"ld.global.v4.u32 {%r1, %r2}, [%rd2];", "ld.global.v4", "4-element"},
      {"add.u32 %r1, %r2, 1.5;", "add.u32 %r1, %r2, 1.5",
       "floating-point immediate"},
      {"mul.u32 %r1, %r2, %r3;", "mul.u32", ".lo, .hi or .wide"},
      {"call foo;", "call foo", "calls are not supported"},
      {"add.u32 %r1, {%r2, %r3}, 1;", "add.u32", "must be a scalar"},
      {"mov.b32 %r1, {%h1, _};", "mov.b32", "'_' in a source vector"},
      {"mov.u32 %tid.x, 1;", "mov.u32 %tid", "destination must be a register"},
      {"add.rn.f16x2 %r1, %r2, 0x3C003C00;", "add.rn.f16x2",
       "half-precision operands must be registers"},
      {".section .debug_info { }", ".section", "unsupported directive"},
      {"mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%r1,%r2,%r3,%r4}, "
       "{%r1,%r2}, {%r1}, {%r1,%r2,%r3,%r4};",
       "mma.sync", "unsupported mma modifier"},
  };
  for (const Case &c : cases) {
    std::string text = kernel(c.body);
    Status s = loadText(dev, text);
    ASSERT_FALSE(s.isOk()) << c.body;
    EXPECT_NE(
        s.message().find("bad.ptx:" + std::to_string(lineOf(text, c.at)) + ":"),
        std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find(c.what), std::string::npos) << s.message();
  }
  // A module for a newer architecture than the device.
  Status s = loadText(dev, ".version 8.0\n.target sm_90a\n.address_size 64\n");
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("bad.ptx:2: module targets sm_90a"),
            std::string::npos)
      << s.message();
}

TEST_F(Emu, ParsesDirectivesCommentsAndDebugInfo) {
  std::string text =
      std::string(kHeader) +
      "// a comment\n/* a block\n comment */\n"
      ".file 1 \"kernel.cu\"\n"
      ".visible .entry k(\n  .param .u64 .ptr .global .align 8 k_out,\n"
      "  .param .align 4 .b8 k_in[8]\n)\n"
      ".maxntid 64, 1, 1\n.minnctapersm 2\n{\n"
      "  .reg .b32 %r<4>; .reg .b64 %rd<2>;\n"
      "  .loc 1 12 3\n"
      "  .pragma \"nounroll\";\n"
      "  ld.param.u64 %rd1, [k_out];\n"
      "  ld.param.u32 %r1, [k_in+4];\n"
      "  { .reg .b32 %t; add.u32 %t, %r1, 0x10; mov.b32 %r2, %t; }\n"
      "  st.global.u32 [%rd1], %r2;\n"
      "  ret;\n}\n";
  Module *m = nullptr;
  Status s = dev.loadModule(text, "ok.ptx", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  Kernel *k = nullptr;
  ASSERT_TRUE(dev.getKernel(m, "k", k).isOk());
  ASSERT_EQ(dev.params(k).size(), 2u);
  EXPECT_EQ(dev.params(k)[1].size, 8u);
  EXPECT_EQ(dev.maxThreadsPerBlock(k), 64u);
  uint64_t a = 0;
  ASSERT_TRUE(dev.malloc(4, a).isOk());
  uint32_t pk[2] = {0, 5};
  void *args[] = {&a, pk};
  ASSERT_TRUE(dev.launch(k, {1, 1, 1}, {1, 1, 1}, 0, args).isOk());
  uint32_t v = 0;
  ASSERT_TRUE(dev.copyToHost(&v, a, 4).isOk());
  EXPECT_EQ(v, 21u);
  // Too many threads for .maxntid; too much dynamic shared memory.
  Status e = dev.launch(k, {1, 1, 1}, {128, 1, 1}, 0, args);
  EXPECT_NE(e.message().find(".maxntid"), std::string::npos) << e.message();
  e = dev.launch(k, {1, 1, 1}, {1, 1, 1}, 64 * 1024, args);
  EXPECT_NE(e.message().find("setMaxDynamicSharedBytes"), std::string::npos)
      << e.message();
  EXPECT_TRUE(dev.setMaxDynamicSharedBytes(k, 100 * 1024).isOk());
  EXPECT_FALSE(dev.setMaxDynamicSharedBytes(k, 200 * 1024).isOk()); // sm_80
}

TEST_F(Emu, MemoryApi) {
  uint64_t a = 0, b = 0;
  ASSERT_TRUE(dev.malloc(1000, a).isOk());
  ASSERT_TRUE(dev.malloc(10, b).isOk());
  EXPECT_NE(a, 0u);
  EXPECT_EQ(a % 256, 0u);
  EXPECT_EQ(b % 256, 0u);
  EXPECT_EQ(b - a, 1280u); // rounded to 256, plus a 256-byte red zone
  EXPECT_FALSE(
      dev.copyToDevice(a + 900,
                       "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghi"
                       "jklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
                       101)
          .isOk());
  ASSERT_TRUE(dev.memset8(a, 7, 1000).isOk());
  EXPECT_FALSE(dev.memset8(a, 7, 1001).isOk()); // bounds are the size asked
  ASSERT_TRUE(dev.copyOnDevice(b, a + 5, 10).isOk());
  uint8_t buf[10];
  ASSERT_TRUE(dev.copyToHost(buf, b, 10).isOk());
  EXPECT_EQ(buf[9], 7);
  EXPECT_FALSE(dev.free(a + 8).isOk());
  uint64_t before = dev.freeMemory();
  ASSERT_TRUE(dev.free(a).isOk());
  EXPECT_EQ(dev.freeMemory(), before + 1280);
  EXPECT_FALSE(dev.copyToHost(buf, a, 4).isOk()); // freed
  ASSERT_TRUE(dev.free(b).isOk());
  EXPECT_EQ(dev.freeMemory(), dev.totalMemory());
}

} // namespace
