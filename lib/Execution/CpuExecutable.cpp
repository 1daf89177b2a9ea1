//===- CpuExecutable.cpp - JIT-compiled model forward pass ----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Calling convention (set up by `llm-params-to-arguments`): the C-interface
// wrapper `_mlir_ciface_forward` takes pointers to memref descriptors for
// (tokens, logits, param_0, ..., param_n). A descriptor of rank R is laid
// out as {allocated ptr, aligned ptr, offset, sizes[R], strides[R]}, all
// 64-bit, which is what `flatDescriptor` builds. The KV-cached entry point
// `_mlir_ciface_decode` (from `llm-derive-decode`) takes (tokens, position
// as a 64-bit integer, key cache, value cache, last-position logits,
// param_0, ..., param_n); the caches are [layers, kv_heads, capacity,
// head_dim] buffers the compiled code updates in place.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"

#include "ObjectJit.h"

#include "qc/InitAllDialects.h"
#include "qc/InitAllPasses.h"
#include "qc/Pipelines/Pipelines.h"
#include "qc/runtime/CompiledCodeRuntime.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <mutex>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace {

/// A memref descriptor of rank shape.size() over `data`, contiguous.
std::vector<int64_t> flatDescriptor(const void *data,
                                    const std::vector<int64_t> &shape) {
  std::vector<int64_t> d;
  auto ptr = reinterpret_cast<int64_t>(data);
  d.push_back(ptr);
  d.push_back(ptr);
  d.push_back(0);
  for (int64_t s : shape)
    d.push_back(s);
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  d.insert(d.end(), strides.begin(), strides.end());
  return d;
}

/// Collects diagnostics emitted while a pass pipeline runs, so that they can
/// be returned in a Status instead of going to stderr.
struct DiagnosticCollector {
  explicit DiagnosticCollector(MLIRContext *ctx)
      : handler(ctx, [this](Diagnostic &diag) {
          llvm::raw_string_ostream os(text);
          os << diag.getLocation() << ": " << diag << "\n";
          return success();
        }) {}
  std::string text;
  ScopedDiagnosticHandler handler;
};

void initializeNativeTargetOnce() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // The pipelines are parsed from text, which resolves passes through the
    // global registry.
    registerAllQCPasses();
  });
}

} // namespace

CpuExecutable::~CpuExecutable() = default;

bool CpuExecutable::fromCache() const { return jit && jit->fromCache(); }

Status CpuExecutable::compile(ModuleOp model, const ::qc::ModelWeights &weights,
                              std::unique_ptr<CpuExecutable> &out,
                              const CpuCompileOptions &options) {
  initializeNativeTargetOnce();
  MLIRContext *ctx = model.getContext();
  DialectRegistry registry;
  registerAllQCDialects(registry);
  ctx->appendDialectRegistry(registry);
  ctx->loadAllAvailableDialects();
  registerBuiltinDialectTranslation(*ctx);
  registerLLVMDialectTranslation(*ctx);

  OwningOpRef<ModuleOp> module(cast<ModuleOp>(model->clone()));
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  if (!fn)
    return Status::error("the model has no function named 'forward'");
  // Result 0 is the logits; further results (from llm-observe-linear-inputs)
  // are [T, width] activations.
  auto result = std::unique_ptr<CpuExecutable>(new CpuExecutable());
  for (Type t : fn.getResultTypes()) {
    auto rt = dyn_cast<RankedTensorType>(t);
    if (!rt || rt.getRank() != 2 || rt.isDynamicDim(1) ||
        !rt.getElementType().isF32())
      return Status::error("'forward' results must be tensor<?xNxf32>, got " +
                           llvm::formatv("{0}", t).str());
    result->outputWidths.push_back(rt.getDimSize(1));
  }
  if (result->outputWidths.empty() || fn.getNumArguments() != 1)
    return Status::error("'forward' must map tensor<?xi32> to tensor<?xVxf32>");
  result->vocab = result->outputWidths.front();

  if (!options.forward && !options.decode)
    return Status::error("compile: no entry point requested (forward or "
                         "decode)");
  DiagnosticCollector diags(ctx);
  std::vector<std::string> entries;
  if (options.decode) {
    // The decode function is derived from the forward function as the
    // model holds it (quantized linears included).
    PassManager derive(ctx);
    if (failed(parsePassPipeline("llm-derive-decode{entry=forward "
                                 "decode-entry=decode}",
                                 derive, llvm::errs())) ||
        failed(derive.run(*module)))
      return Status::error("deriving the KV-cached decode function failed:\n" +
                           diags.text);
    entries.push_back("decode");
  }
  if (options.forward)
    entries.push_back("forward");
  else
    fn.erase();

  // Phase 1: after it, each entry function lists its parameters by name.
  PassManager prepare(ctx);
  if (failed(parsePassPipeline(cpuPreparePipeline(entries), prepare,
                               llvm::errs())) ||
      failed(prepare.run(*module)))
    return Status::error("lowering the model failed:\n" + diags.text);
  // Binds the parameters of entry function `name`, which follow its
  // inputs and outputs.
  auto bindParams =
      [&](StringRef name,
          std::vector<std::vector<int64_t>> &descriptors) -> Status {
    auto f = module->lookupSymbol<func::FuncOp>(name);
    auto names = f->getAttrOfType<ArrayAttr>("llm.param_names");
    int64_t first = f->getAttrOfType<IntegerAttr>("llm.num_inputs").getInt() +
                    f->getAttrOfType<IntegerAttr>("llm.num_outputs").getInt();
    for (auto [i, nameAttr] : llvm::enumerate(names)) {
      std::string name = cast<StringAttr>(nameAttr).str();
      auto expected = cast<MemRefType>(
          f.getArgumentTypes()[first + static_cast<int64_t>(i)]);
      std::vector<int64_t> shape(expected.getShape().begin(),
                                 expected.getShape().end());
      const void *data = nullptr;
      if (const ::qc::HostTensor *t = weights.find(name)) {
        if (!expected.getElementType().isF32())
          return Status::error("parameter '" + name +
                               "' is fp32 but the model "
                               "uses it as a non-f32 tensor");
        if (t->shape != shape ||
            static_cast<int64_t>(t->data.size()) != t->numElements())
          return Status::error("parameter '" + name +
                               "' has a shape that does not match the model");
        data = t->data.data();
      } else if (auto it = weights.packed.find(name);
                 it != weights.packed.end()) {
        const ::qc::PackedTensor &raw = it->second;
        Type elt = expected.getElementType();
        bool typeOk = (raw.dtype == ::qc::DType::I32 && elt.isInteger(32)) ||
                      (raw.dtype == ::qc::DType::F16 && elt.isF16()) ||
                      (raw.dtype == ::qc::DType::BF16 && elt.isBF16()) ||
                      (raw.dtype == ::qc::DType::I8 && elt.isInteger(8)) ||
                      (raw.dtype == ::qc::DType::I16 && elt.isInteger(16));
        if (!typeOk)
          return Status::error("parameter '" + name + "' is stored as " +
                               ::qc::dtypeName(raw.dtype) +
                               " but the model uses it as " +
                               llvm::formatv("{0}", elt).str());
        int64_t elements = 1;
        for (int64_t d : shape)
          elements *= d;
        if (raw.shape != shape ||
            static_cast<int64_t>(raw.bytes.size()) !=
                elements * static_cast<int64_t>(::qc::dtypeBits(raw.dtype) / 8))
          return Status::error("parameter '" + name +
                               "' has a shape that does not match the model");
        data = raw.bytes.data();
      } else {
        return Status::error("parameter '" + name +
                             "' used by the model is missing from the weights");
      }
      descriptors.push_back(flatDescriptor(data, shape));
    }
    return Status::ok();
  };
  if (options.forward)
    QC_RETURN_IF_ERROR(bindParams("forward", result->paramDescriptors));
  if (options.decode) {
    QC_RETURN_IF_ERROR(bindParams("decode", result->decodeParamDescriptors));
    // (tokens, pos, key cache, value cache, logits, params...)
    auto dec = module->lookupSymbol<func::FuncOp>("decode");
    auto cacheType = cast<MemRefType>(dec.getArgumentTypes()[2]);
    result->cacheLayers = cacheType.getDimSize(0);
    result->cacheKvHeads = cacheType.getDimSize(1);
    result->cacheHeadDim = cacheType.getDimSize(3);
  }

  // `llm.*` attributes have no LLVM-IR translation; the translator rejects
  // unknown dialect attributes, so drop them now that they have been read.
  module->walk([](Operation *op) {
    SmallVector<StringAttr> drop;
    for (NamedAttribute attr : op->getDiscardableAttrs())
      if (attr.getName().getValue().starts_with("llm."))
        drop.push_back(attr.getName());
    for (StringAttr name : drop)
      op->removeDiscardableAttr(name);
  });

  // Phase 2: to the LLVM dialect.
  PassManager codegen(ctx);
  if (failed(parsePassPipeline(cpuCodegenPipeline(options.vectorWidth), codegen,
                               llvm::errs())) ||
      failed(codegen.run(*module)))
    return Status::error("lowering the model failed:\n" + diags.text);
  if (!options.dumpLoweredTo.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(options.dumpLoweredTo, ec);
    if (ec)
      return Status::error(options.dumpLoweredTo + ": " + ec.message());
    module->print(os);
  }

  ObjectJitOptions jitOptions;
  jitOptions.optLevel = options.optLevel;
  jitOptions.cacheDir = options.cacheDir;
  jitOptions.codegenThreads = options.codegenThreads;
  jitOptions.dumpObjectTo = options.dumpObjectTo;
  // Lets `perf` attribute samples to JIT-compiled code (jitdump) on request.
  jitOptions.perfListener = std::getenv("QC_PERF_JIT") != nullptr;
  jitOptions.entries = entries;
  // The runtime functions the generated code calls (qc_rt_parallel_linear).
  for (const auto &[name, address] : ::qc::compiledCodeSymbols())
    jitOptions.symbols.emplace_back(name, address);
  QC_RETURN_IF_ERROR(ObjectJit::create(*module, jitOptions, result->jit));
  for (const std::string &name : entries)
    QC_RETURN_IF_ERROR(result->jit->lookupPacked(
        name, name == "forward" ? result->entry : result->decodeEntry));
  if (!options.dumpObjectTo.empty())
    // Where the code was loaded, to match profiler addresses against the
    // dumped object's disassembly.
    for (const std::string &name : entries)
      if (uint64_t addr = result->jit->address(name))
        llvm::errs() << "qc: '" << name << "' loaded at "
                     << llvm::format_hex(addr, 18) << "\n";
  out = std::move(result);
  return Status::ok();
}

Status CpuExecutable::forward(const int32_t *tokens, int64_t numTokens,
                              float *logits) const {
  if (outputWidths.size() == 1)
    return forwardAll(tokens, numTokens, {logits});
  // Extra results (observed activations, hidden states) land in scratch
  // buffers that are dropped: the caller only wants the logits.
  if (numTokens <= 0)
    return Status::error("forward: the token sequence is empty");
  std::vector<std::vector<float>> scratch(outputWidths.size() - 1);
  std::vector<float *> outputs = {logits};
  for (size_t i = 1; i < outputWidths.size(); ++i) {
    scratch[i - 1].resize(static_cast<size_t>(numTokens * outputWidths[i]));
    outputs.push_back(scratch[i - 1].data());
  }
  return forwardAll(tokens, numTokens, outputs);
}

Status CpuExecutable::forwardAll(const int32_t *tokens, int64_t numTokens,
                                 const std::vector<float *> &outputs) const {
  if (!entry)
    return Status::error("forward: the model was compiled without its "
                         "full-window entry point");
  if (numTokens <= 0)
    return Status::error("forward: the token sequence is empty");
  if (outputs.size() != outputWidths.size())
    return Status::error(
        "forward: expected " + std::to_string(outputWidths.size()) +
        " output buffers, got " + std::to_string(outputs.size()));
  for (int64_t i = 0; i < numTokens; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return Status::error("forward: token " + std::to_string(tokens[i]) +
                           " at position " + std::to_string(i) +
                           " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
  std::vector<std::vector<int64_t>> descs;
  descs.push_back(flatDescriptor(tokens, {numTokens}));
  for (size_t o = 0; o < outputs.size(); ++o)
    descs.push_back(flatDescriptor(outputs[o], {numTokens, outputWidths[o]}));
  // The packed wrapper takes, per argument, a pointer to where the argument
  // (here: a pointer to a descriptor) is stored.
  std::vector<void *> descPtrs;
  descPtrs.reserve(descs.size() + paramDescriptors.size());
  for (auto &d : descs)
    descPtrs.push_back(d.data());
  for (const auto &d : paramDescriptors)
    descPtrs.push_back(const_cast<int64_t *>(d.data()));
  std::vector<void *> args;
  args.reserve(descPtrs.size());
  for (void *&p : descPtrs)
    args.push_back(&p);
  entry(args.data());
  return Status::ok();
}

Status CpuExecutable::createCache(int64_t capacity, KVCache &cache) const {
  if (!decodeEntry)
    return Status::error("the model was compiled without the KV-cached "
                         "decode entry point");
  if (capacity <= 0)
    return Status::error("a KV cache needs room for at least one position");
  size_t elements =
      static_cast<size_t>(cacheLayers * cacheKvHeads * capacity * cacheHeadDim);
  cache.keys.assign(elements, 0.0f);
  cache.values.assign(elements, 0.0f);
  cache.capacity = capacity;
  cache.length = 0;
  return Status::ok();
}

Status CpuExecutable::decode(const int32_t *tokens, int64_t numTokens,
                             KVCache &cache, float *logits) const {
  if (!decodeEntry)
    return Status::error("decode: the model was compiled without the "
                         "KV-cached decode entry point");
  if (numTokens <= 0)
    return Status::error("decode: the token sequence is empty");
  size_t elements = static_cast<size_t>(cacheLayers * cacheKvHeads *
                                        cache.capacity * cacheHeadDim);
  if (cache.keys.size() != elements || cache.values.size() != elements)
    return Status::error("decode: the KV cache was not made by createCache "
                         "for this model");
  // The compiled code writes positions [length, length + numTokens)
  // unchecked, so the bound is enforced here.
  if (cache.length < 0 || cache.length + numTokens > cache.capacity)
    return Status::error("decode: " + std::to_string(numTokens) +
                         " tokens at position " + std::to_string(cache.length) +
                         " do not fit the KV cache of " +
                         std::to_string(cache.capacity) + " positions");
  for (int64_t i = 0; i < numTokens; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return Status::error("decode: token " + std::to_string(tokens[i]) +
                           " at position " + std::to_string(cache.length + i) +
                           " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
  std::vector<int64_t> cacheShape = {cacheLayers, cacheKvHeads, cache.capacity,
                                     cacheHeadDim};
  std::vector<int64_t> tokensDesc = flatDescriptor(tokens, {numTokens});
  int64_t position = cache.length;
  std::vector<int64_t> keysDesc = flatDescriptor(cache.keys.data(), cacheShape);
  std::vector<int64_t> valuesDesc =
      flatDescriptor(cache.values.data(), cacheShape);
  std::vector<int64_t> logitsDesc = flatDescriptor(logits, {1, vocab});
  // Packed arguments: a pointer to each argument's storage; memrefs are
  // passed as pointers to their descriptors, the position by value.
  std::vector<void *> descPtrs = {tokensDesc.data(), keysDesc.data(),
                                  valuesDesc.data(), logitsDesc.data()};
  for (const auto &d : decodeParamDescriptors)
    descPtrs.push_back(const_cast<int64_t *>(d.data()));
  std::vector<void *> args = {&descPtrs[0], &position, &descPtrs[1],
                              &descPtrs[2], &descPtrs[3]};
  for (size_t i = 4; i < descPtrs.size(); ++i)
    args.push_back(&descPtrs[i]);
  decodeEntry(args.data());
  cache.length += numTokens;
  return Status::ok();
}

double mlir::qc::sumNegLogLikelihood(const float *logits, int64_t vocab,
                                     const std::vector<int> &window) {
  double total = 0.0;
  for (size_t pos = 0; pos + 1 < window.size(); ++pos) {
    const float *row = logits + pos * vocab;
    float maxv = row[0];
    for (int64_t v = 1; v < vocab; ++v)
      maxv = std::max(maxv, row[v]);
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(static_cast<double>(row[v]) - maxv);
    double logProb =
        static_cast<double>(row[window[pos + 1]]) - maxv - std::log(sum);
    total -= logProb;
  }
  return total;
}
