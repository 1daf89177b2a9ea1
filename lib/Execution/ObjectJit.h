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
#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class MemoryBuffer;
namespace orc {
class JITTargetMachineBuilder;
class LLJIT;
} // namespace orc
} // namespace llvm

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
  /// Links the objects of cache entry `key` (see cacheKey()) without the
  /// module; an error if the entry is absent or damaged.
  static ::qc::Status load(const std::string &key,
                           const ObjectJitOptions &options,
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
  /// The cache entry holding this code (32 hex digits); empty without a
  /// cache.
  const std::string &cacheKey() const { return key; }

private:
  ObjectJit() = default;
  ::qc::Status link(const llvm::orc::JITTargetMachineBuilder &jtmb,
                    std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects,
                    const ObjectJitOptions &options);
  std::unique_ptr<llvm::orc::LLJIT> jit;
  bool cached = false;
  std::string key;
};

/// Writes a cache file with the runtime's writeFileAtomically (readers see
/// the old file, no file or the whole new one), creating its folder first.
/// Returns why it failed, or empty.
std::string writeCacheFile(const std::string &path, llvm::StringRef bytes);

/// What, besides the IR, decides the machine code on this host: triple,
/// CPU, features, LLVM's version, the IR pipeline. Empty if the host CPU
/// cannot be detected.
std::string hostCompileIdentity();

} // namespace mlir::qc

#endif // QC_LIB_EXECUTION_OBJECTJIT_H
