//===- CpuExecutable.h - JIT-compiled model forward pass --------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The CPU execution path: model-level IR is lowered with `qc-lower-to-cpu`
// (linalg -> loops -> LLVM), compiled by LLVM for the host CPU (on several
// threads, and cached on disk when asked), and called with the model's weights
// bound by name. This is what perplexity, generation and (later) calibration
// run on, and the reference the GPU path is tested against.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EXECUTION_CPUEXECUTABLE_H
#define QC_EXECUTION_CPUEXECUTABLE_H

#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mlir::qc {

class ObjectJit;
struct CompiledInterface;

/// Options of CpuExecutable::compile.
struct CpuCompileOptions {
  /// LLVM optimization level for the JIT (0-3). -O2 runs as fast as -O3 on
  /// these loops and compiles in half the time.
  unsigned optLevel = 2;
  /// If non-empty, the lowered LLVM-dialect module is written here.
  std::string dumpLoweredTo;
  /// If non-empty, the JIT-compiled object file is written here (for
  /// disassembly and profiling); the code is then compiled as one object,
  /// without the cache.
  std::string dumpObjectTo;
  /// Folder of the compiled-code cache (objects keyed by a hash of the LLVM
  /// IR, the host CPU and the compiler settings); empty = compile every
  /// time. The tools pass defaultJitCacheDir() unless told otherwise.
  std::string cacheDir;
  /// Threads that generate machine code (the module is split into as many
  /// parts); 0 = one per hardware thread.
  unsigned codegenThreads = 0;
  /// Compile the full-window `forward` entry point (perplexity, and
  /// generation that recomputes the prefix).
  bool forward = true;
  /// Also derive and compile the KV-cached `decode` entry point
  /// (`llm-derive-decode`) for generation. Off by default: it doubles the
  /// code the JIT compiles, and perplexity does not need it.
  bool decode = false;
  /// f32 lanes of the generated linear kernels (qc-vectorize-linear); 0 =
  /// the host's widest (16 with AVX-512, 8 with AVX2). Other widths are for
  /// tests and experiments: LLVM splits or pads vectors the host lacks.
  int64_t vectorWidth = 0;
  /// Let the decode entry read the classifier as 8-bit blocks when its
  /// fp32 values are exactly such blocks (packQ8Exact; a GGUF's Q8_0
  /// embeddings): the same numbers at about a quarter of the bytes
  /// (llm-pack-decode-head). The forward entry keeps the fp32 head.
  bool packHead = true;
};

/// If every run of 32 values (a block) of each row of the row-major
/// [rows, cols] fp32 matrix `w` is exactly d * q with d an f16 value and q
/// integers in [-127, 127], some of magnitude 127 (what ggml's Q8_0 blocks
/// dequantize to; an all-zero block has d = 0), writes them as wq.linear's
/// 8-bit symmetric GPTQ layout: `qweight` [cols / 4, rows] i32 words of
/// codes q + 128 and `scales` [cols / 32, rows] f16 d, and returns true.
/// Returns false, touching neither, for any other matrix (cols % 32 != 0
/// included): a block that is not exactly representable is never rounded.
bool packQ8Exact(const float *w, int64_t rows, int64_t cols,
                 ::qc::PackedTensor &qweight, ::qc::PackedTensor &scales);

/// The key/value cache of one sequence for CpuExecutable::decode: two
/// buffers of [layers, kv_heads, capacity, head_dim] floats, and how many
/// positions (from 0) they hold.
struct KVCache {
  std::vector<float> keys, values;
  /// Positions the buffers have room for.
  int64_t capacity = 0;
  /// Positions [0, length) are filled.
  int64_t length = 0;
};

/// A model forward function compiled for this CPU. Thread-safe: forward()
/// may be called concurrently (each call allocates its own temporaries).
class CpuExecutable {
public:
  ~CpuExecutable();

  /// Lowers a clone of `model` (which must contain `func.func @forward`
  /// from buildModelModule or an equivalent), JIT-compiles it and binds
  /// every `llm.param` to the tensor of that name in `weights`. Errors name
  /// the missing or mis-shaped parameter, or carry the compiler diagnostics.
  /// `options` select the entry points: forward() needs `forward`,
  /// decode() needs `decode`.
  static ::qc::Status compile(ModuleOp model, const ::qc::ModelWeights &weights,
                              std::unique_ptr<CpuExecutable> &out,
                              const CpuCompileOptions &options = {});

  /// Logits of every position: `logits` receives numTokens x vocabSize
  /// floats, row-major. Token ids must lie in [0, vocabSize). A model with
  /// extra results computes them into scratch buffers that are dropped.
  ::qc::Status forward(const int32_t *tokens, int64_t numTokens,
                       float *logits) const;

  /// Runs a model whose `forward` has extra [T, width] results (see
  /// `llm-observe-linear-inputs`): outputs[0] receives the logits,
  /// outputs[i] numTokens x outputWidth(i) floats.
  ::qc::Status forwardAll(const int32_t *tokens, int64_t numTokens,
                          const std::vector<float *> &outputs) const;

  /// True when compiled with CpuCompileOptions::forward / ::decode.
  bool hasForward() const { return entry != nullptr; }
  bool hasDecode() const { return decodeEntry != nullptr; }

  /// An empty cache (zero-filled, length 0) with room for `capacity`
  /// positions. Needs the decode entry point.
  ::qc::Status createCache(int64_t capacity, KVCache &cache) const;

  /// Runs the tokens of positions [cache.length, cache.length + numTokens)
  /// through the decode entry point: their keys and values are appended to
  /// `cache` (length grows by numTokens) and `logits` receives vocabSize
  /// floats, the logits of the last of these tokens. Prefill is one call
  /// with the whole prompt, each generation step a call with one token.
  /// Not thread-safe for one cache; distinct caches may decode concurrently.
  ::qc::Status decode(const int32_t *tokens, int64_t numTokens, KVCache &cache,
                      float *logits) const;

  /// True when the machine code was loaded from the cache.
  bool fromCache() const;

  /// True when the decode entry reads the classifier as 8-bit blocks
  /// (CpuCompileOptions::packHead and the data qualified).
  bool decodeHeadPacked() const { return !derived.empty(); }

  int64_t vocabSize() const { return vocab; }
  /// Number of results of `forward` (1 plus the observed activations).
  size_t numOutputs() const { return outputWidths.size(); }
  /// Columns of result `i` (the vocabulary size for i = 0).
  int64_t outputWidth(size_t i) const { return outputWidths[i]; }

private:
  CpuExecutable() = default;
  /// Binds the parameters `iface` lists to `weights` and takes its cache
  /// shape.
  ::qc::Status bind(const CompiledInterface &iface,
                    const ::qc::ModelWeights &weights);
  std::unique_ptr<ObjectJit> jit;
  void (*entry)(void **) = nullptr;
  /// Flat memref descriptors of the parameters, in argument order.
  std::vector<std::vector<int64_t>> paramDescriptors;
  int64_t vocab = 0;
  /// Columns of each result; [0] is the vocabulary size.
  std::vector<int64_t> outputWidths;
  /// The decode entry point and its parameters, when compiled.
  void (*decodeEntry)(void **) = nullptr;
  std::vector<std::vector<int64_t>> decodeParamDescriptors;
  /// Cache shape: layers, key/value heads, head dimension.
  int64_t cacheLayers = 0, cacheKvHeads = 0, cacheHeadDim = 0;
  /// Parameters derived from `weights` at compile time and bound from
  /// here (the decode entry's 8-bit classifier, packQ8Exact).
  std::map<std::string, ::qc::PackedTensor> derived;
};

/// Summed negative log-likelihood (natural log) of `window[1..n]` given the
/// prefixes, from logits of `window[0..n-1]`; accumulated in double.
/// `logits` is (window.size() - 1) x vocab, or window.size() x vocab (the last
/// row is ignored).
/// The cache folder the tools use unless told otherwise: $QC_CACHE_DIR,
/// else $XDG_CACHE_HOME/qc/jit, else $HOME/.cache/qc/jit; empty when none
/// of these is set.
std::string defaultJitCacheDir();

double sumNegLogLikelihood(const float *logits, int64_t vocab,
                           const std::vector<int> &window);

} // namespace mlir::qc

#endif // QC_EXECUTION_CPUEXECUTABLE_H
