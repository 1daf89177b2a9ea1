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
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/ThreadPool.h"

#include "qc/Conversion/LLMParamsToArguments/DecodeHead.h"

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
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/xxhash.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace mlir::qc {
/// A parameter of an entry point as the compiled code takes it.
struct ParamSpec {
  std::string name;
  /// f32, f16, bf16, i32, i16 or i8.
  std::string dtype;
  std::vector<int64_t> shape;
};

/// What binding a compiled model needs besides its machine code; cached
/// beside it. An entry point that was not compiled has no parameter list.
struct CompiledInterface {
  std::optional<std::vector<ParamSpec>> forwardParams, decodeParams;
  int64_t cacheLayers = 0, cacheKvHeads = 0, cacheHeadDim = 0;
  /// The ObjectJit cache entry of the machine code.
  std::string objectKey;
};
} // namespace mlir::qc

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

/// The element types a parameter can have, by the names CompiledInterface
/// records.
std::string dtypeOf(Type t) {
  if (t.isF32())
    return "f32";
  if (t.isF16())
    return "f16";
  if (t.isBF16())
    return "bf16";
  if (t.isInteger(32))
    return "i32";
  if (t.isInteger(16))
    return "i16";
  if (t.isInteger(8))
    return "i8";
  return {};
}

std::string dtypeOf(::qc::DType t) {
  switch (t) {
  case ::qc::DType::F16:
    return "f16";
  case ::qc::DType::BF16:
    return "bf16";
  case ::qc::DType::I32:
    return "i32";
  case ::qc::DType::I16:
    return "i16";
  case ::qc::DType::I8:
    return "i8";
  default:
    return {};
  }
}

/// The parameters of entry function `name` after the prepare pipeline:
/// they follow its inputs and outputs, named by `llm.param_names`.
Status paramsOf(ModuleOp module, StringRef name,
                std::optional<std::vector<ParamSpec>> &out) {
  auto f = module.lookupSymbol<func::FuncOp>(name);
  auto names = f->getAttrOfType<ArrayAttr>("llm.param_names");
  int64_t first = f->getAttrOfType<IntegerAttr>("llm.num_inputs").getInt() +
                  f->getAttrOfType<IntegerAttr>("llm.num_outputs").getInt();
  out.emplace();
  for (auto [i, nameAttr] : llvm::enumerate(names)) {
    auto type =
        cast<MemRefType>(f.getArgumentTypes()[first + static_cast<int64_t>(i)]);
    ParamSpec p;
    p.name = cast<StringAttr>(nameAttr).str();
    p.dtype = dtypeOf(type.getElementType());
    if (p.dtype.empty())
      return Status::error("parameter '" + p.name + "' has element type " +
                           llvm::formatv("{0}", type.getElementType()).str() +
                           ", which the CPU path cannot bind");
    p.shape.assign(type.getShape().begin(), type.getShape().end());
    out->push_back(std::move(p));
  }
  return Status::ok();
}

/// Descriptors of `params` over the tensors of those names in `weights`.
Status bindParams(const std::vector<ParamSpec> &params,
                  const ::qc::ModelWeights &weights,
                  const std::map<std::string, ::qc::PackedTensor> &derived,
                  std::vector<std::vector<int64_t>> &descriptors) {
  descriptors.clear();
  for (const ParamSpec &p : params) {
    int64_t elements = 1;
    for (int64_t d : p.shape)
      elements *= d;
    const void *data = nullptr;
    // Derived parameters first, then the model's fp32 and packed tensors.
    const ::qc::PackedTensor *packed = nullptr;
    const ::qc::HostTensor *t = nullptr;
    if (auto it = derived.find(p.name); it != derived.end())
      packed = &it->second;
    else if (!(t = weights.find(p.name)))
      if (auto it = weights.packed.find(p.name); it != weights.packed.end())
        packed = &it->second;
    if (t) {
      if (p.dtype != "f32")
        return Status::error("parameter '" + p.name +
                             "' is fp32 but the model uses it as " + p.dtype);
      if (t->shape != p.shape ||
          static_cast<int64_t>(t->data.size()) != t->numElements())
        return Status::error("parameter '" + p.name +
                             "' has a shape that does not match the model");
      data = t->data.data();
    } else if (packed) {
      const ::qc::PackedTensor &raw = *packed;
      if (dtypeOf(raw.dtype) != p.dtype)
        return Status::error("parameter '" + p.name + "' is stored as " +
                             ::qc::dtypeName(raw.dtype) +
                             " but the model uses it as " + p.dtype);
      if (raw.shape != p.shape ||
          static_cast<int64_t>(raw.bytes.size()) !=
              elements * static_cast<int64_t>(::qc::dtypeBits(raw.dtype) / 8))
        return Status::error("parameter '" + p.name +
                             "' has a shape that does not match the model");
      data = raw.bytes.data();
    } else {
      return Status::error("parameter '" + p.name +
                           "' used by the model is missing from the weights");
    }
    descriptors.push_back(flatDescriptor(data, p.shape));
  }
  return Status::ok();
}

/// The fp32 classifier weight of `forward` when llm-pack-decode-head could
/// read it (findPackableHead) and `weights` holds it resident, and its
/// parameter name; else null.
const ::qc::HostTensor *headWeight(ModuleOp model,
                                   const ::qc::ModelWeights &weights,
                                   std::string &name) {
  DecodeHead found =
      findPackableHead(model.lookupSymbol<func::FuncOp>("forward"));
  if (!found.param)
    return nullptr;
  name = found.param.getName().str();
  auto type = cast<RankedTensorType>(found.param.getType());
  const ::qc::HostTensor *t = weights.find(name);
  if (!t ||
      t->shape != std::vector<int64_t>(type.getShape().begin(),
                                       type.getShape().end()) ||
      static_cast<int64_t>(t->data.size()) != t->numElements())
    return nullptr;
  return t;
}

/// xxh3 of this executable's file: the passes that lower a model are
/// linked into it, so a rebuilt compiler never reuses what an older one
/// cached. 0 if the file cannot be read (then nothing is cached).
uint64_t executableHash() {
  static uint64_t hash = [] {
    auto file = llvm::MemoryBuffer::getFile("/proc/self/exe", false, false);
    if (!file)
      return uint64_t(0);
    return llvm::xxh3_64bits(llvm::arrayRefFromStringRef((*file)->getBuffer()));
  }();
  return hash;
}

/// 32 hex digits naming the compiled form of `model` under `options` on
/// this host by this compiler; empty when it cannot be told apart.
std::string interfaceKey(ModuleOp model, const CpuCompileOptions &options,
                         bool packedHead) {
  uint64_t exe = executableHash();
  std::string host = hostCompileIdentity();
  if (exe == 0 || host.empty())
    return {};
  std::string text;
  llvm::raw_string_ostream os(text);
  model->print(os);
  os << '\0' << host << '\0' << exe << '\0' << options.optLevel << '\0'
     << options.forward << options.decode << '\0' << options.vectorWidth << '\0'
     << packedHead;
  llvm::XXH128_hash_t hash =
      llvm::xxh3_128bits(llvm::arrayRefFromStringRef(text));
  return llvm::utohexstr(hash.high64, true, 16) +
         llvm::utohexstr(hash.low64, true, 16);
}

llvm::json::Array paramsToJson(const std::vector<ParamSpec> &params) {
  llvm::json::Array out;
  for (const ParamSpec &p : params) {
    llvm::json::Array shape;
    for (int64_t d : p.shape)
      shape.push_back(d);
    out.push_back(llvm::json::Object{
        {"name", p.name}, {"dtype", p.dtype}, {"shape", std::move(shape)}});
  }
  return out;
}

std::string toJson(const CompiledInterface &iface) {
  llvm::json::Object o{
      {"format", "qc-compiled-interface-1"},
      {"object_key", iface.objectKey},
      {"cache", llvm::json::Array{iface.cacheLayers, iface.cacheKvHeads,
                                  iface.cacheHeadDim}}};
  if (iface.forwardParams)
    o["forward"] = paramsToJson(*iface.forwardParams);
  if (iface.decodeParams)
    o["decode"] = paramsToJson(*iface.decodeParams);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(o));
  return text;
}

bool paramsFromJson(const llvm::json::Array &a, std::vector<ParamSpec> &out) {
  for (const llvm::json::Value &v : a) {
    const llvm::json::Object *o = v.getAsObject();
    if (!o)
      return false;
    ParamSpec p;
    auto name = o->getString("name");
    auto dtype = o->getString("dtype");
    const llvm::json::Array *shape = o->getArray("shape");
    if (!name || !dtype || !shape)
      return false;
    p.name = name->str();
    p.dtype = dtype->str();
    for (const llvm::json::Value &d : *shape) {
      auto n = d.getAsInteger();
      if (!n || *n < 0)
        return false;
      p.shape.push_back(*n);
    }
    out.push_back(std::move(p));
  }
  return true;
}

/// A cached interface; false if absent or not one this code wrote (the
/// caller then compiles and overwrites it).
bool readInterface(const std::string &path, CompiledInterface &iface) {
  auto file = llvm::MemoryBuffer::getFile(path, false, false);
  if (!file)
    return false;
  auto value = llvm::json::parse((*file)->getBuffer());
  if (!value) {
    llvm::consumeError(value.takeError());
    return false;
  }
  const llvm::json::Object *o = value->getAsObject();
  if (!o || o->getString("format") != "qc-compiled-interface-1")
    return false;
  auto key = o->getString("object_key");
  const llvm::json::Array *cache = o->getArray("cache");
  if (!key || key->size() != 32 || !cache || cache->size() != 3)
    return false;
  iface.objectKey = key->str();
  int64_t *dims[] = {&iface.cacheLayers, &iface.cacheKvHeads,
                     &iface.cacheHeadDim};
  for (int i = 0; i < 3; ++i) {
    auto n = (*cache)[i].getAsInteger();
    if (!n || *n < 0)
      return false;
    *dims[i] = *n;
  }
  if (const llvm::json::Array *a = o->getArray("forward"))
    if (!paramsFromJson(*a, iface.forwardParams.emplace()))
      return false;
  if (const llvm::json::Array *a = o->getArray("decode"))
    if (!paramsFromJson(*a, iface.decodeParams.emplace()))
      return false;
  return true;
}

} // namespace

CpuExecutable::~CpuExecutable() = default;

bool CpuExecutable::fromCache() const { return jit && jit->fromCache(); }

bool mlir::qc::packQ8Exact(const float *w, int64_t rows, int64_t cols,
                           ::qc::PackedTensor &qweight,
                           ::qc::PackedTensor &scales) {
  if (rows <= 0 || cols <= 0 || cols % 32 != 0)
    return false;
  int64_t blocks = cols / 32;
  // Codes straight into the GPTQ layout: word r of column n holds codes
  // 4r .. 4r + 3 of row n, LSB first, so code k of row n is byte
  // ((k / 4) rows + n) 4 + k % 4; scales are [blocks, rows].
  std::vector<uint8_t> words(static_cast<size_t>(rows * cols));
  std::vector<uint8_t> halves(static_cast<size_t>(blocks * rows * 2));
  auto *d16 = reinterpret_cast<uint16_t *>(halves.data());
  // Rows in parallel (a 49,152-row vocabulary is checked at every load).
  constexpr int64_t kRowsPerItem = 256;
  int64_t items = (rows + kRowsPerItem - 1) / kRowsPerItem;
  std::atomic<bool> exact{true};
  ::qc::parallelFor(
      items, ::qc::workerCount(items), [&](int64_t item, int64_t) {
        int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
        for (int64_t n = item * kRowsPerItem; n < end && exact; ++n)
          for (int64_t blk = 0; blk < blocks; ++blk) {
            const float *x = w + n * cols + blk * 32;
            float amax = 0;
            for (int64_t i = 0; i < 32; ++i)
              amax = std::max(amax, std::fabs(x[i]));
            // ggml's Q8_0 has d = amax / 127 and its largest code at +-127, so
            // amax / 127 recovers d exactly (an f16 value times 127 is exact in
            // fp32, and so is dividing it back). Anything else fails a check.
            float d = amax / 127.0f;
            uint16_t h = ::qc::f32ToF16(d);
            if (!(::qc::f16ToF32(h) == d)) {
              exact = false;
              return;
            }
            d16[blk * rows + n] = h;
            // The reciprocal finds the code (|q| <= 127 is far from a rounding
            // tie; adding and subtracting 1.5 * 2^23 rounds to nearest even,
            // in a loop the compiler vectorizes); the comparison decides.
            float inverse = d == 0 ? 0.0f : 1.0f / d;
            uint8_t code[32];
            uint32_t mismatch = 0;
            for (int64_t i = 0; i < 32; ++i) {
              constexpr float kRound = 12582912.0f;
              float q = (x[i] * inverse + kRound) - kRound;
              float clamped = std::min(127.0f, std::max(-127.0f, q));
              code[i] =
                  static_cast<uint8_t>(static_cast<int32_t>(clamped) + 128);
              // Bit for bit what wq.linear dequantizes: s (code - 2^7).
              float back = d * (static_cast<float>(code[i]) - 128.0f);
              uint32_t backBits, xBits;
              std::memcpy(&backBits, &back, sizeof(float));
              std::memcpy(&xBits, &x[i], sizeof(float));
              mismatch |= backBits ^ xBits;
            }
            if (mismatch != 0) {
              exact = false;
              return;
            }
            for (int64_t i = 0; i < 32; ++i) {
              int64_t k = blk * 32 + i;
              words[((k / 4) * rows + n) * 4 + k % 4] = code[i];
            }
          }
      });
  if (!exact)
    return false;
  qweight.dtype = ::qc::DType::I32;
  qweight.shape = {cols / 4, rows};
  qweight.bytes = std::move(words);
  scales.dtype = ::qc::DType::F16;
  scales.shape = {blocks, rows};
  scales.bytes = std::move(halves);
  return true;
}

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
  std::vector<std::string> entries;
  if (options.decode)
    entries.push_back("decode");
  if (options.forward)
    entries.push_back("forward");

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

  // The decode entry's classifier in 8-bit blocks when its values are
  // exactly such blocks (llm-pack-decode-head): decided by the data, so
  // part of the cache key.
  std::string headName;
  if (options.decode && options.packHead)
    if (const ::qc::HostTensor *head = headWeight(*module, weights, headName)) {
      ::qc::PackedTensor qweight, scales;
      if (packQ8Exact(head->data.data(), head->shape[0], head->shape[1],
                      qweight, scales)) {
        result->derived[packedHeadQWeightName(headName)] = std::move(qweight);
        result->derived[packedHeadScalesName(headName)] = std::move(scales);
      }
    }

  // Everything after this point is decided by the model's IR, the options
  // and that choice, so a model compiled before skips the MLIR pipeline too:
  // its interface (the parameters each entry point takes) and the key of its
  // machine code are cached beside the objects.
  std::string interfacePath;
  if (!options.cacheDir.empty() && options.dumpLoweredTo.empty() &&
      options.dumpObjectTo.empty()) {
    std::string key = interfaceKey(model, options, result->decodeHeadPacked());
    if (!key.empty()) {
      llvm::SmallString<256> path(options.cacheDir);
      llvm::sys::path::append(path, "llvmcache-qcif-" + key);
      interfacePath = path.str().str();
      CompiledInterface cached;
      if (readInterface(interfacePath, cached) &&
          cached.forwardParams.has_value() == options.forward &&
          cached.decodeParams.has_value() == options.decode &&
          ObjectJit::load(cached.objectKey, jitOptions, result->jit)) {
        QC_RETURN_IF_ERROR(result->bind(cached, weights));
        for (const std::string &name : entries)
          QC_RETURN_IF_ERROR(result->jit->lookupPacked(
              name, name == "forward" ? result->entry : result->decodeEntry));
        out = std::move(result);
        return Status::ok();
      }
    }
  }

  DiagnosticCollector diags(ctx);
  if (options.decode) {
    // The decode function is derived from the forward function as the
    // model holds it (quantized linears included).
    PassManager derive(ctx);
    std::string pipeline = "llm-derive-decode{entry=forward "
                           "decode-entry=decode}";
    if (result->decodeHeadPacked())
      pipeline += ",llm-pack-decode-head{entry=decode}";
    if (failed(parsePassPipeline(pipeline, derive, llvm::errs())) ||
        failed(derive.run(*module)))
      return Status::error("deriving the KV-cached decode function failed:\n" +
                           diags.text);
  }
  if (!options.forward)
    fn.erase();

  // Phase 1: after it, each entry function lists its parameters by name.
  PassManager prepare(ctx);
  if (failed(parsePassPipeline(cpuPreparePipeline(entries), prepare,
                               llvm::errs())) ||
      failed(prepare.run(*module)))
    return Status::error("lowering the model failed:\n" + diags.text);
  CompiledInterface iface;
  if (options.forward)
    QC_RETURN_IF_ERROR(paramsOf(*module, "forward", iface.forwardParams));
  if (options.decode) {
    QC_RETURN_IF_ERROR(paramsOf(*module, "decode", iface.decodeParams));
    // (tokens, pos, key cache, value cache, logits, params...)
    auto dec = module->lookupSymbol<func::FuncOp>("decode");
    auto cacheType = cast<MemRefType>(dec.getArgumentTypes()[2]);
    iface.cacheLayers = cacheType.getDimSize(0);
    iface.cacheKvHeads = cacheType.getDimSize(1);
    iface.cacheHeadDim = cacheType.getDimSize(3);
  }
  QC_RETURN_IF_ERROR(result->bind(iface, weights));

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

  QC_RETURN_IF_ERROR(ObjectJit::create(*module, jitOptions, result->jit));
  for (const std::string &name : entries)
    QC_RETURN_IF_ERROR(result->jit->lookupPacked(
        name, name == "forward" ? result->entry : result->decodeEntry));
  if (!interfacePath.empty() && !result->jit->cacheKey().empty()) {
    iface.objectKey = result->jit->cacheKey();
    std::string why = writeCacheFile(interfacePath, toJson(iface));
    if (!why.empty())
      llvm::errs() << "qc: warning: cannot write the compiled-code cache ("
                   << why << "); the next run compiles again\n";
  }
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

Status CpuExecutable::bind(const CompiledInterface &iface,
                           const ::qc::ModelWeights &weights) {
  if (iface.forwardParams)
    QC_RETURN_IF_ERROR(
        bindParams(*iface.forwardParams, weights, derived, paramDescriptors));
  if (iface.decodeParams)
    QC_RETURN_IF_ERROR(bindParams(*iface.decodeParams, weights, derived,
                                  decodeParamDescriptors));
  cacheLayers = iface.cacheLayers;
  cacheKvHeads = iface.cacheKvHeads;
  cacheHeadDim = iface.cacheHeadDim;
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
