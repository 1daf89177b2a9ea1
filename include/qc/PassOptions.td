//===- PassOptions.td - Options shared by qc's passes ------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The quantization grid (code width, group size, symmetry) is an option of
// every weight-quantizing pass (include/qc/Quantization/Passes.td) and of
// the kernel generator (include/qc/Conversion/Passes.td, kernel-only
// layers). Each option is declared once, here, so that its name, C++ member,
// type and wording cannot drift between passes; a pass lists the records in
// its `options` and passes its own default where the method's differs.
//
// This is how upstream MLIR shares option text between passes too (for
// example the `layoutMapClValues` record of the bufferization passes): the
// TableGen pass backend only reads `list<Option> options`, so any record or
// anonymous class instance of `Option` may appear in it.
//
//===----------------------------------------------------------------------===//

#ifndef QC_PASSOPTIONS_TD
#define QC_PASSOPTIONS_TD

include "mlir/Pass/PassBase.td"

/// `bits`: the code width. `valid` names the widths the pass accepts (the
/// range itself is checked by the pass, see OptionRanges.h).
class QCBitsOption<string valid = "2, 3, 4 or 8">
    : Option<"bits", "bits", "int64_t", /*default=*/"4",
             "Code width: " # valid # " (default: 4)">;

/// `group-size`: input channels per scale, -1 for one group per row.
class QCGroupSizeOption<string default = "128">
    : Option<"groupSize", "group-size", "int64_t", default,
             "Input channels per scale (-1 = per channel) (default: " #
             default # ")">;

/// `sym`: symmetric grid (no zero points stored) or min-max with zeros.
class QCSymOption<string default = "true">
    : Option<"sym", "sym", "bool", default,
             "Symmetric grid (zero point 2^(bits-1)) instead of min-max "
             "with zeros (default: " # default # ")">;

#endif // QC_PASSOPTIONS_TD
