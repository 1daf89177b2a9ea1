//===- OptionRanges.h - Types and ranges of method options ------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// One table of the numeric and boolean options of the quantization methods
// (and of calibration): their type and valid range. The wq-* passes check
// their options against it before any work, and quant-compile checks a
// recipe against it before any calibration, so that a value out of range
// is an error naming the option and the range in both places. Before this
// table, AutoRound's iters = 2^40 was narrowed to a 32-bit int and the run
// "succeeded" without tuning; bits = 2^32 + 4 became 4.
//
// Plain C++ (no MLIR), so that the checks are unit-tested on their own.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_OPTIONRANGES_H
#define QC_QUANTIZATION_ALGORITHMS_OPTIONRANGES_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// The type of an option's value.
enum class OptionKind { Bool, Int, Real };

/// The type and valid values of one option.
struct OptionSpec {
  /// The option's pass spelling ("group-size").
  std::string name;
  OptionKind kind = OptionKind::Int;
  /// Int: the inclusive range (ignored when `choices` is not empty).
  int64_t intMin = 0, intMax = 0;
  /// Int: when not empty, the only valid values.
  std::vector<int64_t> choices;
  /// Int: -1 is also valid (group size: one group per row).
  bool minusOneValid = false;
  /// Real: the range, finite; each end closed unless marked open.
  double realMin = 0.0, realMax = 0.0;
  bool realMinOpen = false, realMaxOpen = false;

  /// The valid values in words, e.g. "an integer from 0 to 100000",
  /// "2, 3, 4 or 8", "a number in (0, 1]", "true or false".
  std::string describe() const;
};

/// The spec of option `name` (pass spelling, "group-size") of `method`: one
/// of rtn, nf4, gptq, awq, hqq, autoround, or "calibration" (window,
/// samples, max-tokens), "compile" (seed of quant-compile and recipes),
/// "run" (quant-run's numeric options) or "kernelgen" (quant-kernelgen's).
/// nullptr when the method has no such numeric or boolean option.
const OptionSpec *findOptionSpec(const std::string &method,
                                 const std::string &name);

/// Checks an integer value against `spec` (an Int option). The error reads
/// "<name> = <value> is out of range (valid: <describe()>)".
Status checkIntOption(const OptionSpec &spec, int64_t value);

/// Checks a real value against `spec` (a Real option); NaN and infinities
/// are out of range.
Status checkRealOption(const OptionSpec &spec, double value);

/// Checks the integer option `name` of `method`; an option without a spec
/// is accepted (the caller's own checks apply).
Status checkIntOption(const std::string &method, const std::string &name,
                      int64_t value);

/// Checks the real option `name` of `method`; see the integer overload.
Status checkRealOption(const std::string &method, const std::string &name,
                       double value);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_OPTIONRANGES_H
