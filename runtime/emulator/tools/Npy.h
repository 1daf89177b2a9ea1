//===- Npy.h - NumPy .npy files, read strictly and written ------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// qc-ptx-run exchanges arrays with the outside world as NumPy .npy files
// (format versions 1.0, 2.0 and 3.0: the magic "\x93NUMPY", a version, a
// little-endian header length, then an ASCII Python dict literal with the
// keys 'descr', 'fortran_order' and 'shape', then the raw data). Only what
// a kernel buffer can be is accepted: C order, little-endian (or
// byte-sized) booleans, integers and IEEE floats. The reader is hardened
// against hostile files: every length is checked against the file, the
// dict is parsed by a small strict grammar (no eval), the element count
// cannot overflow, and the data must be exactly shape x itemsize bytes.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_TOOLS_NPY_H
#define QC_EMU_TOOLS_NPY_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc::npy {

/// An element type: NumPy kind ('b' bool, 'i' signed, 'u' unsigned, 'f'
/// float) and size in bytes.
struct DType {
  char kind = 'u';
  uint32_t size = 1;
  /// NumPy's descr for it, e.g. "<f4", "|u1".
  std::string descr() const;
  /// "float32", "uint8", "bool", ...
  std::string name() const;
  bool operator==(const DType &o) const {
    return kind == o.kind && size == o.size;
  }
};

/// Parses a dtype name as written on qc-ptx-run's command line: "f16",
/// "f32", "f64", "i8".."i64", "u8".."u64", "bool", or NumPy's long names
/// ("float32", "int8", "uint64", ...).
Status parseDTypeName(const std::string &name, DType &out);

/// An array read from or written to a .npy file.
struct Array {
  DType dtype;
  std::vector<uint64_t> shape; ///< empty for a 0-d array (one element)
  std::vector<uint8_t> data;   ///< elements() * dtype.size bytes, C order
  uint64_t elements() const;
};

/// Parses the bytes of a .npy file; errors name `displayName` and say what
/// is wrong ("bad magic", "header length exceeds the file", "Fortran order
/// is not supported", "big-endian dtype '>f4' is not supported", "the data
/// is 12 bytes but shape (2, 3) of float32 needs 24", ...).
Status parse(const std::vector<uint8_t> &bytes, const std::string &displayName,
             Array &out);

/// Reads and parses the .npy file at `path`.
Status read(const std::string &path, Array &out);

/// The bytes of a version 1.0 .npy file holding `a` (version 2.0 when the
/// header does not fit in 65535 bytes).
std::vector<uint8_t> serialize(const Array &a);

/// Writes `a` to `path`.
Status write(const std::string &path, const Array &a);

} // namespace qc::npy

#endif // QC_EMU_TOOLS_NPY_H
