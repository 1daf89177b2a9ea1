//===- Float.h - Reduced-precision float conversions ------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Exact conversions between double and the binary16 / bfloat16 / binary32
// formats under the IEEE 754 rounding directions that PTX exposes (PTX ISA
// "cvt": .rn round to nearest even, .rz towards zero, .rm towards
// -inf, .rp towards +inf). A conversion may take a "sticky" hint: the sign
// of a residual that the double value dropped (from an exactly computed
// error term), so that an operation computed in double and then rounded
// to half precision rounds once, as the ISA requires of fp16 arithmetic
// ("add.rn.f16: round to nearest even" on the infinitely precise result).
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_FLOAT_H
#define QC_EMU_FLOAT_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace qc::emu {

enum class RoundDir : uint8_t { NearestEven, Zero, Down, Up };

/// Rounds `x` to a binary format with `manBits` explicit mantissa bits and
/// `expBits` exponent bits, returning the bit pattern. `sticky` is the sign
/// (-1, 0, +1) of the exact value minus x (0 when x is exact); it only
/// matters, and is only honoured, for round-to-nearest-even ties (the
/// directed modes are used on exact values only).
inline uint64_t roundToFormat(double x, int sticky, int manBits, int expBits,
                              RoundDir dir) {
  const uint64_t signBit = uint64_t(1) << (manBits + expBits);
  const uint64_t expMask = (uint64_t(1) << expBits) - 1;
  if (std::isnan(x)) // canonical quiet NaN
    return (expMask << manBits) | (uint64_t(1) << (manBits - 1));
  bool neg = std::signbit(x);
  uint64_t sign = neg ? signBit : 0;
  double a = std::fabs(x);
  int stickyMag = neg ? -sticky : sticky;
  const int bias = int(expMask >> 1);
  const int emin = 1 - bias, emax = bias;
  auto overflow = [&]() -> uint64_t {
    // IEEE 754 7.4: RN and the directed modes towards the sign give inf,
    // the others the largest finite value.
    bool toInf = dir == RoundDir::NearestEven ||
                 (dir == RoundDir::Up && !neg) ||
                 (dir == RoundDir::Down && neg);
    if (toInf)
      return sign | (expMask << manBits);
    return sign | ((expMask - 1) << manBits) | ((uint64_t(1) << manBits) - 1);
  };
  if (std::isinf(a))
    return sign | (expMask << manBits);
  if (a == 0) {
    if (stickyMag == 0)
      return sign;
    // A tiny residual: only a directed rounding away from zero moves.
    bool up = (dir == RoundDir::Up && !neg) || (dir == RoundDir::Down && neg);
    return sign | (up && stickyMag > 0 ? 1 : 0);
  }
  int e;
  std::frexp(a, &e);
  int E = e - 1;
  if (E < emin)
    E = emin;
  double q = std::ldexp(a, manBits - E); // exact: a power-of-two scaling
  double fl = std::floor(q);
  double frac = q - fl;
  bool roundUp = false;
  switch (dir) {
  case RoundDir::NearestEven:
    if (frac > 0.5)
      roundUp = true;
    else if (frac < 0.5)
      roundUp = false;
    else if (stickyMag != 0)
      roundUp = stickyMag > 0;
    else
      roundUp = std::fmod(fl, 2.0) != 0;
    break;
  case RoundDir::Zero:
    roundUp = false;
    break;
  case RoundDir::Up:
  case RoundDir::Down: {
    bool awayFromZero = (dir == RoundDir::Up) != neg;
    roundUp = awayFromZero && frac > 0;
    break;
  }
  }
  uint64_t r = uint64_t(fl) + (roundUp ? 1 : 0);
  if (r == (uint64_t(1) << (manBits + 1))) {
    r >>= 1;
    ++E;
  }
  if (E > emax)
    return overflow();
  if (r < (uint64_t(1) << manBits)) // subnormal (or zero)
    return sign | r;
  return sign | (uint64_t(E + bias) << manBits) |
         (r - (uint64_t(1) << manBits));
}

/// binary16 (IEEE half) from double.
inline uint16_t toHalf(double x, RoundDir dir = RoundDir::NearestEven,
                       int sticky = 0) {
  return uint16_t(roundToFormat(x, sticky, 10, 5, dir));
}
/// bfloat16 from double.
inline uint16_t toBf16(double x, RoundDir dir = RoundDir::NearestEven,
                       int sticky = 0) {
  return uint16_t(roundToFormat(x, sticky, 7, 8, dir));
}
/// binary32 bits from double with a rounding direction.
inline uint32_t toF32Bits(double x, RoundDir dir, int sticky = 0) {
  return uint32_t(roundToFormat(x, sticky, 23, 8, dir));
}

/// Exact binary16 -> double.
inline double halfToDouble(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0)
    v = std::ldexp(double(m), -24);
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = std::ldexp(double(m | 1024), e - 25);
  return s ? -v : v;
}
/// Exact bfloat16 -> double.
inline double bf16ToDouble(uint16_t h) {
  uint32_t b = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

inline float bitsToF32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t f32ToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
inline double bitsToF64(uint64_t b) {
  double f;
  std::memcpy(&f, &b, 8);
  return f;
}
inline uint64_t f64ToBits(double f) {
  uint64_t b;
  std::memcpy(&b, &f, 8);
  return b;
}

/// The exact error of a + b computed in double (Knuth's TwoSum): returns
/// s = fl(a + b) and sets err so that s + err == a + b exactly.
inline double twoSum(double a, double b, double &err) {
  double s = a + b;
  double bb = s - a;
  err = (a - (s - bb)) + (b - bb);
  return s;
}

inline int signOf(double v) { return v > 0 ? 1 : (v < 0 ? -1 : 0); }

} // namespace qc::emu

#endif // QC_EMU_FLOAT_H
