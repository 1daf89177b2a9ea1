//===- ObjectJit.h - LLVM-dialect module to loaded machine code -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// What CpuExecutable uses instead of mlir::ExecutionEngine: it translates an
// LLVM-dialect module, optimizes it once, generates machine code for parts
// of it on several threads and links the objects in an ORC JIT. The objects
// are kept in an on-disk cache keyed by a hash of the LLVM IR, the host CPU
// and the compiler settings, so a model that was compiled before loads
// without running LLVM's optimizer or code generator again.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_EXECUTION_OBJECTJIT_H
#define QC_LIB_EXECUTION_OBJECTJIT_H

#include "qc/runtime/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace llvm::orc {
class LLJIT;
} // namespace llvm::orc

namespace mlir::qc {

struct ObjectJitOptions {
  /// LLVM optimization level (0-3) of the IR pipeline; code generation runs
  /// at the default level.
  unsigned optLevel = 2;
  /// Folder of the object cache; empty = no cache.
  std::string cacheDir;
  /// Threads that generate machine code; 0 = one per hardware thread.
  unsigned codegenThreads = 0;
  /// If non-empty, the whole module is compiled as one object, without the
  /// cache, and that object is written here.
  std::string dumpObjectTo;
  /// Tells `perf` where the code lies (jitdump).
  bool perfListener = false;
  /// Functions `_mlir_ciface_<entry>` get a packed wrapper, see lookupPacked.
  std::vector<std::string> entries;
  /// Addresses of the runtime functions the code calls.
  std::vector<std::pair<std::string, void *>> symbols;
};

class ObjectJit {
public:
  ~ObjectJit();
  static ::qc::Status create(ModuleOp module, const ObjectJitOptions &options,
                             std::unique_ptr<ObjectJit> &out);

  /// `void fn(void **args)`: args[i] points to argument i of
  /// `_mlir_ciface_<entry>` (a memref argument is a pointer to its
  /// descriptor, so args[i] is a pointer to that pointer).
  ::qc::Status lookupPacked(const std::string &entry,
                            void (*&fn)(void **)) const;
  /// Address of a symbol of the loaded code, 0 if there is none.
  uint64_t address(const std::string &symbol) const;

  /// True when the machine code came from the cache.
  bool fromCache() const { return cached; }

private:
  ObjectJit() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  bool cached = false;
};

} // namespace mlir::qc

#endif // QC_LIB_EXECUTION_OBJECTJIT_H
