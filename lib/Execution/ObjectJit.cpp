//===- ObjectJit.cpp - LLVM-dialect module to loaded machine code ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Why not mlir::ExecutionEngine: it compiles the whole module on one thread
// and its object cache lives in memory only, so every process paid the full
// LLVM compile of the model (8-20 s for SmolLM2 on two cores) before the
// first token. Here the module is optimized once, split into parts that are
// compiled on their own threads, and the objects are cached on disk.
//
// Cache entry: one file per key, llvmcache-qc-<32 hex digits>, the 128-bit
// xxh3 of everything that decides the machine code (the LLVM IR as bitcode,
// the host triple, CPU and features, the optimization settings, the number
// of parts, LLVM's version). LLVM's pruneCache keeps the folder bounded
// (the name prefix is what it looks for). Its layout:
//   "QCJITOBJ1\n", u64 object count, u64 size of each object, the objects,
//   u64 xxh3 of all bytes before it.
// A file that does not parse or whose checksum differs is ignored and
// replaced, so a torn or corrupted entry costs one recompile, never a crash.
// Entries are written under a temporary name and renamed.
//
//===----------------------------------------------------------------------===//

#include "ObjectJit.h"

#include "qc/Execution/CpuExecutable.h"
#include "qc/runtime/Safetensors.h"

#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/JITEventListener.h"
#include "llvm/ExecutionEngine/Orc/AbsoluteSymbols.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/CachePruning.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SmallVectorMemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Transforms/Utils/SplitModule.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace {

constexpr llvm::StringLiteral kMagic = "QCJITOBJ1\n";

/// Settings of the IR pipeline that are not visible in the IR; part of the
/// cache key, so changing the pipeline below must change this text.
constexpr llvm::StringLiteral kPipelineTag = "default-pipeline,no-unroll";

/// Adds `void _mlir_<name>(ptr args)` that loads argument i of `name`
/// from *args[i] and calls it (the packed calling convention
/// mlir::ExecutionEngine also uses).
Status addPackedWrapper(llvm::Module &m, const std::string &name) {
  llvm::Function *callee = m.getFunction(name);
  if (!callee || callee->isDeclaration())
    return Status::error("JIT: entry point '" + name +
                         "' is not defined by the lowered module");
  llvm::LLVMContext &ctx = m.getContext();
  auto *ptrTy = llvm::PointerType::get(ctx, 0);
  auto *wrapperTy =
      llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptrTy}, false);
  auto *wrapper = llvm::Function::Create(
      wrapperTy, llvm::GlobalValue::ExternalLinkage, "_mlir_" + name, m);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", wrapper));
  llvm::Value *args = wrapper->getArg(0);
  llvm::SmallVector<llvm::Value *> operands;
  for (auto [i, arg] : llvm::enumerate(callee->args())) {
    llvm::Value *slot = b.CreateConstGEP1_64(ptrTy, args, i);
    llvm::Value *argPtr = b.CreateLoad(ptrTy, slot);
    operands.push_back(b.CreateLoad(arg.getType(), argPtr));
  }
  llvm::Value *result = b.CreateCall(callee, operands);
  if (!callee->getReturnType()->isVoidTy()) {
    llvm::Value *slot = b.CreateConstGEP1_64(ptrTy, args, callee->arg_size());
    b.CreateStore(result, b.CreateLoad(ptrTy, slot));
  }
  b.CreateRetVoid();
  return Status::ok();
}

/// Turns off LLVM's ConstraintElimination pass for the JIT, unless the
/// command line set it (`--enable-constraint-elimination`): on the
/// entry functions' hundreds of loop nests its Fourier-Motzkin elimination
/// was the single largest item of a cold compile (16 % of SmolLM2 W4's
/// samples under perf), while the code it produced decoded and prefilled no
/// faster (measured side by side). The pass pipeline offers no tuning
/// option for it, so the registered option is set as the command line
/// would set it.
void withoutConstraintElimination() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    auto &options = llvm::cl::getRegisteredOptions();
    auto it = options.find("enable-constraint-elimination");
    if (it != options.end() && it->second->getNumOccurrences() == 0)
      (void)it->second->addOccurrence(0, "enable-constraint-elimination",
                                      "false");
  });
}

/// The standard pipeline at `optLevel`, minus full loop unrolling (the
/// entry functions hold hundreds of loop nests, and unrolling them
/// multiplied LLVM's compile time while the vectorized loops ran no faster)
/// and constraint elimination (withoutConstraintElimination).
void optimize(llvm::Module &m, llvm::TargetMachine *machine,
              unsigned optLevel) {
  if (optLevel == 0)
    return;
  withoutConstraintElimination();
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = false;
  llvm::PassBuilder pb(machine, tuning);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel level = optLevel == 1   ? llvm::OptimizationLevel::O1
                                  : optLevel == 2 ? llvm::OptimizationLevel::O2
                                                  : llvm::OptimizationLevel::O3;
  pb.buildPerModuleDefaultPipeline(level).run(m, mam);
}

Status emitObject(llvm::Module &m, llvm::TargetMachine &machine,
                  std::unique_ptr<llvm::MemoryBuffer> &out) {
  llvm::SmallVector<char, 0> bytes;
  llvm::raw_svector_ostream os(bytes);
  llvm::legacy::PassManager pm;
  if (machine.addPassesToEmitFile(pm, os, nullptr,
                                  llvm::CodeGenFileType::ObjectFile))
    return Status::error("JIT: the target cannot emit object files");
  pm.run(m);
  out = std::make_unique<llvm::SmallVectorMemoryBuffer>(
      std::move(bytes), m.getModuleIdentifier(), false);
  return Status::ok();
}

void appendU64(std::string &s, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  s.append(b, 8);
}

bool readU64(llvm::StringRef &s, uint64_t &v) {
  if (s.size() < 8)
    return false;
  std::memcpy(&v, s.data(), 8);
  s = s.drop_front(8);
  return true;
}

/// The objects of a cache entry, or nothing if the file is absent or not a
/// whole, intact entry.
std::vector<std::unique_ptr<llvm::MemoryBuffer>>
readCacheEntry(const std::string &path) {
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects;
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file)
    return objects;
  llvm::StringRef all = (*file)->getBuffer();
  if (all.size() < kMagic.size() + 16 || !all.starts_with(kMagic))
    return objects;
  llvm::StringRef body = all.drop_back(8);
  uint64_t checksum;
  llvm::StringRef tail = all.take_back(8);
  readU64(tail, checksum);
  if (llvm::xxh3_64bits(llvm::arrayRefFromStringRef(body)) != checksum)
    return objects;
  llvm::StringRef s = body.drop_front(kMagic.size());
  uint64_t count;
  if (!readU64(s, count) || count == 0 || count > s.size() / 8)
    return objects;
  std::vector<uint64_t> sizes(count);
  for (uint64_t &size : sizes)
    readU64(s, size);
  for (uint64_t size : sizes) {
    if (size > s.size()) {
      objects.clear();
      return objects;
    }
    objects.push_back(llvm::MemoryBuffer::getMemBufferCopy(
        s.take_front(size), path + "#" + std::to_string(objects.size())));
    s = s.drop_front(size);
  }
  if (!s.empty())
    objects.clear();
  return objects;
}

/// Writes a cache entry (the layout above).
std::string
writeCacheEntry(const std::string &path,
                const std::vector<std::unique_ptr<llvm::MemoryBuffer>> &objs) {
  std::string bytes(kMagic);
  appendU64(bytes, objs.size());
  for (const auto &o : objs)
    appendU64(bytes, o->getBufferSize());
  for (const auto &o : objs)
    bytes.append(o->getBufferStart(), o->getBufferSize());
  appendU64(bytes, llvm::xxh3_64bits(llvm::arrayRefFromStringRef(bytes)));
  return writeCacheFile(path, bytes);
}

/// Pruning removes the entries used longest ago; a hit counts as a use.
void markUsed(const std::string &path) {
  int fd;
  if (llvm::sys::fs::openFileForWrite(path, fd, llvm::sys::fs::CD_OpenExisting,
                                      llvm::sys::fs::OF_Append))
    return;
  (void)llvm::sys::fs::setLastAccessAndModificationTime(
      fd, std::chrono::system_clock::now());
  llvm::sys::Process::SafelyCloseFileDescriptor(fd);
}

/// After SplitModule, a part calls into and reads from the others through
/// symbols that were internal before. Default visibility and no dso_local
/// make those references go through the GOT and call stubs, which reach
/// wherever the other object is loaded (a direct 32-bit reference need not).
void makeCrossPartReferencesIndirect(llvm::Module &m) {
  for (llvm::GlobalValue &gv : m.global_values()) {
    if (gv.hasLocalLinkage())
      continue;
    gv.setVisibility(llvm::GlobalValue::DefaultVisibility);
    gv.setDSOLocal(false);
  }
}

/// Optimizes `m` and generates its machine code as `parts` objects
/// compiled on their own threads.
Status compileObjects(std::unique_ptr<llvm::Module> m,
                      const llvm::orc::JITTargetMachineBuilder &jtmb,
                      unsigned optLevel, unsigned parts,
                      std::vector<std::unique_ptr<llvm::MemoryBuffer>> &out) {
  llvm::orc::JITTargetMachineBuilder builder = jtmb;
  auto machine = builder.createTargetMachine();
  if (!machine)
    return Status::error("cannot create a target machine: " +
                         llvm::toString(machine.takeError()));
  optimize(*m, machine->get(), optLevel);
  if (parts <= 1) {
    out.emplace_back();
    return emitObject(*m, **machine, out.back());
  }
  // Each part travels as bitcode into its own LLVMContext: contexts are
  // not thread-safe, and code generation of one part must not touch
  // another's.
  std::vector<llvm::SmallVector<char, 0>> bitcode;
  llvm::SplitModule(
      *m, parts,
      [&](std::unique_ptr<llvm::Module> part) {
        makeCrossPartReferencesIndirect(*part);
        bitcode.emplace_back();
        llvm::raw_svector_ostream os(bitcode.back());
        llvm::WriteBitcodeToFile(*part, os);
      },
      /*PreserveLocals=*/false);
  m.reset();
  std::vector<Status> statuses(bitcode.size(), Status::ok());
  out.resize(bitcode.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < bitcode.size(); ++i)
    threads.emplace_back([&, i] {
      llvm::LLVMContext ctx;
      auto part = llvm::parseBitcodeFile(
          llvm::MemoryBufferRef(
              llvm::StringRef(bitcode[i].data(), bitcode[i].size()),
              "part" + std::to_string(i)),
          ctx);
      if (!part) {
        statuses[i] = Status::error("JIT: part " + std::to_string(i) + ": " +
                                    llvm::toString(part.takeError()));
        return;
      }
      llvm::orc::JITTargetMachineBuilder builder = jtmb;
      auto tm = builder.createTargetMachine();
      if (!tm) {
        statuses[i] = Status::error("cannot create a target machine: " +
                                    llvm::toString(tm.takeError()));
        return;
      }
      statuses[i] = emitObject(**part, **tm, out[i]);
    });
  for (std::thread &t : threads)
    t.join();
  for (Status &s : statuses)
    QC_RETURN_IF_ERROR(s);
  return Status::ok();
}

/// The host CPU with every feature it has. Position-independent code with
/// the small code model: references between the objects of one model, and
/// to the runtime, go through the GOT and call stubs, which reach wherever
/// the linker places them.
llvm::Expected<llvm::orc::JITTargetMachineBuilder> hostMachineBuilder() {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return jtmb.takeError();
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  jtmb->setCodeModel(llvm::CodeModel::Small);
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  return jtmb;
}

} // namespace

ObjectJit::~ObjectJit() = default;

std::string mlir::qc::writeCacheFile(const std::string &path,
                                     llvm::StringRef bytes) {
  llvm::StringRef dir = llvm::sys::path::parent_path(path);
  if (!dir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return dir.str() + ": " + ec.message();
  Status s = ::qc::writeFileAtomically(path, {{bytes.data(), bytes.size()}});
  return s ? std::string() : s.message();
}

std::string mlir::qc::hostCompileIdentity() {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) {
    llvm::consumeError(jtmb.takeError());
    return {};
  }
  return jtmb->getTargetTriple().str() + "/" + jtmb->getCPU() + "/" +
         jtmb->getFeatures().getString() + "/" + LLVM_VERSION_STRING + "/" +
         kPipelineTag.str();
}

std::string mlir::qc::defaultJitCacheDir() {
  if (const char *dir = std::getenv("QC_CACHE_DIR"))
    return dir;
  llvm::SmallString<256> path;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    path = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(path, home, ".cache");
  else
    return {};
  llvm::sys::path::append(path, "qc", "jit");
  return path.str().str();
}

Status ObjectJit::create(ModuleOp module, const ObjectJitOptions &options,
                         std::unique_ptr<ObjectJit> &out) {
  auto jtmb = hostMachineBuilder();
  if (!jtmb)
    return Status::error("cannot detect the host CPU: " +
                         llvm::toString(jtmb.takeError()));
  auto machine = jtmb->createTargetMachine();
  if (!machine)
    return Status::error("cannot create a target machine: " +
                         llvm::toString(machine.takeError()));

  auto llvmContext = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, *llvmContext, "qc-model");
  if (!llvmModule)
    return Status::error("JIT: translating the lowered model to LLVM IR "
                         "failed");
  llvmModule->setDataLayout((*machine)->createDataLayout());
  llvmModule->setTargetTriple((*machine)->getTargetTriple());
  for (const std::string &entry : options.entries)
    QC_RETURN_IF_ERROR(addPackedWrapper(*llvmModule, "_mlir_ciface_" + entry));

  unsigned parts = options.codegenThreads
                       ? options.codegenThreads
                       : std::max(1u, std::thread::hardware_concurrency());
  bool useCache = !options.cacheDir.empty() && options.dumpObjectTo.empty();
  if (!options.dumpObjectTo.empty())
    parts = 1;
  std::string cachePath;
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects;
  auto result = std::unique_ptr<ObjectJit>(new ObjectJit());
  if (useCache) {
    llvm::SmallVector<char, 0> key;
    llvm::raw_svector_ostream os(key);
    llvm::WriteBitcodeToFile(*llvmModule, os);
    os << '\0' << jtmb->getTargetTriple().str() << '\0' << jtmb->getCPU()
       << '\0' << jtmb->getFeatures().getString() << '\0' << options.optLevel
       << '\0' << parts << '\0' << kPipelineTag << '\0' << LLVM_VERSION_STRING;
    llvm::XXH128_hash_t hash = llvm::xxh3_128bits(
        llvm::arrayRefFromStringRef(llvm::StringRef(key.data(), key.size())));
    llvm::SmallString<256> path(options.cacheDir);
    // pruneCache only looks at files named llvmcache-*.
    llvm::sys::path::append(path, "llvmcache-qc-" +
                                      llvm::utohexstr(hash.high64, true, 16) +
                                      llvm::utohexstr(hash.low64, true, 16));
    cachePath = path.str().str();
    result->key = cachePath.substr(cachePath.size() - 32);
    objects = readCacheEntry(cachePath);
    result->cached = !objects.empty();
    if (result->cached)
      markUsed(cachePath);
  }
  if (objects.empty()) {
    QC_RETURN_IF_ERROR(compileObjects(std::move(llvmModule), *jtmb,
                                      options.optLevel, parts, objects));
    if (useCache) {
      std::string why = writeCacheEntry(cachePath, objects);
      if (!why.empty())
        llvm::errs() << "qc: warning: cannot write the compiled-code cache ("
                     << why << "); the next run compiles again\n";
      // Entries unused for 30 days go, and the folder stays under 2 GiB
      // (least recently used first); checked at most every 20 minutes.
      llvm::CachePruningPolicy policy;
      policy.Expiration = std::chrono::hours(30 * 24);
      policy.MaxSizeBytes = uint64_t(2) << 30;
      policy.MaxSizePercentageOfAvailableSpace = 25;
      llvm::pruneCache(options.cacheDir, policy);
    }
  }
  if (!options.dumpObjectTo.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(options.dumpObjectTo, ec);
    if (ec)
      return Status::error(options.dumpObjectTo + ": " + ec.message());
    os << objects.front()->getBuffer();
  }
  QC_RETURN_IF_ERROR(result->link(*jtmb, std::move(objects), options));
  out = std::move(result);
  return Status::ok();
}

Status ObjectJit::load(const std::string &key, const ObjectJitOptions &options,
                       std::unique_ptr<ObjectJit> &out) {
  if (options.cacheDir.empty() || key.empty())
    return Status::error("JIT: no cache to load from");
  llvm::SmallString<256> path(options.cacheDir);
  llvm::sys::path::append(path, "llvmcache-qc-" + key);
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects =
      readCacheEntry(path.str().str());
  if (objects.empty())
    return Status::error("JIT: cache entry " + key + " is absent or damaged");
  markUsed(path.str().str());
  auto jtmb = hostMachineBuilder();
  if (!jtmb)
    return Status::error("cannot detect the host CPU: " +
                         llvm::toString(jtmb.takeError()));
  auto result = std::unique_ptr<ObjectJit>(new ObjectJit());
  result->cached = true;
  result->key = key;
  QC_RETURN_IF_ERROR(result->link(*jtmb, std::move(objects), options));
  out = std::move(result);
  return Status::ok();
}

Status ObjectJit::link(const llvm::orc::JITTargetMachineBuilder &jtmb,
                       std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects,
                       const ObjectJitOptions &options) {
  bool perf = options.perfListener;
  auto built =
      llvm::orc::LLJITBuilder()
          .setJITTargetMachineBuilder(jtmb)
          .setObjectLinkingLayerCreator(
              [perf](llvm::orc::ExecutionSession &es)
                  -> llvm::Expected<std::unique_ptr<llvm::orc::ObjectLayer>> {
                auto layer =
                    std::make_unique<llvm::orc::RTDyldObjectLinkingLayer>(
                        es, [](const llvm::MemoryBuffer &) {
                          return std::make_unique<llvm::SectionMemoryManager>();
                        });
                if (perf)
                  if (llvm::JITEventListener *listener =
                          llvm::JITEventListener::createPerfJITEventListener())
                    layer->registerJITEventListener(*listener);
                return layer;
              })
          .create();
  if (!built)
    return Status::error("JIT: " + llvm::toString(built.takeError()));
  llvm::orc::JITDylib &dylib = (*built)->getMainJITDylib();
  // libc and libm (malloc, memcpy, expf, ...) from the process.
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*built)->getDataLayout().getGlobalPrefix());
  if (!process)
    return Status::error("JIT: " + llvm::toString(process.takeError()));
  dylib.addGenerator(std::move(*process));
  llvm::orc::MangleAndInterner mangle((*built)->getExecutionSession(),
                                      (*built)->getDataLayout());
  llvm::orc::SymbolMap runtime;
  for (const auto &[name, address] : options.symbols)
    runtime[mangle(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
  if (llvm::Error err = dylib.define(llvm::orc::absoluteSymbols(runtime)))
    return Status::error("JIT: " + llvm::toString(std::move(err)));
  for (auto &object : objects)
    if (llvm::Error err = (*built)->addObjectFile(std::move(object)))
      return Status::error("JIT: " + llvm::toString(std::move(err)));
  if (llvm::Error err = (*built)->initialize(dylib))
    return Status::error("JIT: " + llvm::toString(std::move(err)));
  jit = std::move(*built);
  return Status::ok();
}

Status ObjectJit::lookupPacked(const std::string &entry,
                               void (*&fn)(void **)) const {
  auto addr = jit->lookup("_mlir__mlir_ciface_" + entry);
  if (!addr)
    return Status::error("JIT: entry point '" + entry +
                         "' not found: " + llvm::toString(addr.takeError()));
  fn = addr->toPtr<void (*)(void **)>();
  return Status::ok();
}

uint64_t ObjectJit::address(const std::string &symbol) const {
  auto addr = jit->lookup(symbol);
  if (!addr) {
    llvm::consumeError(addr.takeError());
    return 0;
  }
  return addr->getValue();
}
