//===- Status.h - Error status for MLIR-free code ---------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The runtime and every MLIR-free library report failures through Status:
// a message that names the file, tensor or layer at fault. The runtime is
// built without depending on LLVM, so llvm::Error is not available here, and
// exceptions are off in the compiler build that includes these headers.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_STATUS_H
#define QC_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace qc {

/// Success, or a human-readable error message. Functions that can fail
/// return a Status and write their results through out-parameters.
class [[nodiscard]] Status {
public:
  /// A successful status.
  static Status ok() { return Status(); }
  /// A failed status carrying `message` (must be non-empty).
  static Status error(std::string message) {
    Status s;
    s.failed = true;
    s.msg = std::move(message);
    return s;
  }

  bool isOk() const { return !failed; }
  explicit operator bool() const { return !failed; }
  const std::string &message() const { return msg; }

  /// Returns a copy whose message is prefixed with `context + ": "`; used to
  /// add the file or layer name as an error travels up.
  Status withContext(const std::string &context) const {
    if (!failed)
      return *this;
    return error(context + ": " + msg);
  }

private:
  Status() = default;
  bool failed = false;
  std::string msg;
};

} // namespace qc

/// Returns early from the enclosing function if `expr` yields a failed Status.
#define QC_RETURN_IF_ERROR(expr)                                               \
  do {                                                                         \
    ::qc::Status qcStatusTmp_ = (expr);                                        \
    if (!qcStatusTmp_)                                                         \
      return qcStatusTmp_;                                                     \
  } while (0)

#endif // QC_RUNTIME_STATUS_H
