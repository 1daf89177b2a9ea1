//===- quant-kernelgen.cpp - Fused dequantize-GEMM kernels to an artifact -===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
//   quant-kernelgen --shape NxK[,NxK...] [--bits 4] [--group-size 128]
//                   [--asym] [--targets sm_80,sm_90a] [--tiles SPEC]
//                   -o kernels.qcart
//       generates the kernels of each layer (convert-wq-to-gpu), builds a
//       cubin per target and one PTX (for the oldest target, kept for
//       forward compatibility), and writes a kernel-only artifact through
//       the runtime's writeArtifact: layers named "<N>x<K>" without tensors
//       (quant-bench packs random weights into them).
//   --print-ir       prints the kernel IR (before lowering)
//   --print-ptx      prints the PTX of every target
//   --ptxas-report   prints ptxas -v (registers, spills, shared memory)
//   --inspect FILE   reads an artifact back (readArtifact) and lists it
// The inspection flags work without -o.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "qc/InitAllDialects.h"
#include "qc/Target/CUDA/CUDATarget.h"
#include "qc/runtime/Artifact.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace mlir;
using ::qc::Status;

static cl::OptionCategory category("quant-kernelgen options");
static cl::list<std::string> shapes("shape", cl::CommaSeparated,
                                    cl::desc("Layers as NxK (N outputs, K inputs)"),
                                    cl::value_desc("NxK,..."), cl::cat(category));
static cl::opt<int64_t> bits("bits", cl::desc("Weight code width"), cl::init(4),
                             cl::cat(category));
static cl::opt<int64_t> groupSize("group-size",
                                  cl::desc("Input channels per group (-1: per channel)"),
                                  cl::init(128), cl::cat(category));
static cl::opt<bool> asym("asym", cl::desc("Asymmetric (fp16 zeros tensor)"),
                          cl::cat(category));
static cl::list<std::string> targets("targets", cl::CommaSeparated,
                                     cl::desc("Chips to build cubins for"),
                                     cl::value_desc("sm_80,sm_90a"), cl::cat(category));
static cl::opt<std::string> tiles("tiles",
                                  cl::desc("Variants (convert-wq-to-gpu tiles syntax); "
                                           "default: splitk M<=8, mma tile-m 16/32/64"),
                                  cl::init(""), cl::cat(category));
static cl::opt<int64_t> numSMs("num-sms", cl::desc("SM count for default split-k"),
                               cl::init(132), cl::cat(category));
static cl::opt<std::string> outputPath("o", cl::desc("Write the artifact here"),
                                       cl::value_desc("file"), cl::cat(category));
static cl::opt<bool> printIR("print-ir", cl::desc("Print the kernel IR"),
                             cl::cat(category));
static cl::opt<bool> printPTX("print-ptx", cl::desc("Print the PTX of every target"),
                              cl::cat(category));
static cl::opt<bool> ptxasReport("ptxas-report",
                                 cl::desc("Print ptxas -v for every target"),
                                 cl::cat(category));
static cl::opt<std::string> inspectPath("inspect",
                                        cl::desc("Read an artifact back and list it"),
                                        cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> toolkit("toolkit",
                                    cl::desc("CUDA toolkit root (default: found at configure time)"),
                                    cl::init(""), cl::cat(category));

static int fail(const Twine &msg) {
  errs() << "quant-kernelgen: error: " << msg << "\n";
  return 1;
}

/// Lists an artifact as read back by the runtime's reader.
static int inspect(const std::string &path) {
  ::qc::Artifact a;
  if (Status s = ::qc::readArtifact(path, a); !s)
    return fail(s.message());
  outs() << "artifact " << path << ": version " << a.version << ", producer '"
         << a.producer << "', " << a.modules.size() << " modules, "
         << a.layers.size() << " layers, " << a.tensors.size() << " tensors\n";
  for (const ::qc::ArtifactModule &m : a.modules) {
    outs() << "module " << m.name << " kernels " << join(m.kernels, ",")
           << " images";
    for (const ::qc::ArtifactImage &i : m.images)
      outs() << " " << i.target << ":" << i.kind << "(" << i.bytes.size()
             << " bytes)";
    outs() << "\n";
  }
  for (const ::qc::ArtifactLayer &l : a.layers) {
    outs() << "layer " << l.name << " N=" << l.N << " K=" << l.K
           << " bits=" << l.bits << " group=" << l.groupSize
           << (l.sym ? " sym" : " asym") << " layout=" << l.layout
           << " tensors=" << l.tensors.size() << "\n";
    for (const ::qc::ArtifactVariant &v : l.variants) {
      outs() << "  variant " << v.family << " M=[" << v.minM << "," << v.maxM
             << "] workspace/row=" << v.workspaceBytesPerRow
             << (v.zeroWorkspace ? " zeroed" : "") << "\n";
      for (const ::qc::ArtifactLaunch &la : v.launches)
        outs() << "    launch " << la.module << "::" << la.kernel << " block="
               << la.block[0] << "x" << la.block[1] << "x" << la.block[2]
               << " grid=" << la.gridX << "x(M/" << la.tileM << ")x"
               << la.gridZ << " params=" << join(la.params, ",") << "\n";
    }
  }
  return 0;
}

/// Lowers a clone of `module` for `chip` in `format` and returns the bytes
/// of every gpu.binary object by module name.
static LogicalResult lower(ModuleOp module, StringRef chip, StringRef format,
                           std::map<std::string, std::string> &out) {
  OwningOpRef<ModuleOp> clone(module.clone());
  PassManager pm(module.getContext());
  mlir::qc::GPUToBinaryOptions o;
  o.chip = chip.str();
  o.format = format.str();
  o.toolkit = toolkit;
  mlir::qc::buildGPUToBinaryPipeline(pm, o);
  if (failed(pm.run(*clone)))
    return failure();
  for (auto bin : clone->getOps<gpu::BinaryOp>())
    for (mlir::Attribute a : bin.getObjects())
      out[bin.getSymName().str()] =
          cast<gpu::ObjectAttr>(a).getObject().getValue().str();
  return success();
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-kernelgen: fused dequantize-GEMM kernels "
                              "for 4-bit linear layers\n");
  if (!inspectPath.empty())
    return inspect(inspectPath);
  if (shapes.empty())
    return fail("give the layers with --shape NxK[,NxK...] (or --inspect FILE)");
  if (outputPath.empty() && !printIR && !printPTX && !ptxasReport)
    return fail("nothing to do: give -o FILE, --print-ir, --print-ptx or "
                "--ptxas-report");
  SmallVector<std::string> chips(targets.begin(), targets.end());
  if (chips.empty())
    chips = {"sm_80", "sm_90a"};

  DialectRegistry registry;
  mlir::qc::registerAllQCDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&ctx));
  (*module)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                     UnitAttr::get(&ctx));
  OpBuilder b(&ctx);
  b.setInsertionPointToEnd(module->getBody());

  SmallVector<mlir::qc::GPUTileConfig> tileList;
  if (!tiles.empty()) {
    std::string err;
    if (failed(mlir::qc::parseGPUTileConfigs(tiles, tileList, err)))
      return fail(err);
  }

  ::qc::Artifact art;
  art.producer = "quant-kernelgen";
  for (const std::string &s : shapes) {
    auto [nStr, kStr] = StringRef(s).split('x');
    mlir::qc::GPULayerConfig layer;
    if (nStr.getAsInteger(10, layer.n) || kStr.getAsInteger(10, layer.k))
      return fail("bad shape '" + s + "' (expected NxK, e.g. 4096x11008)");
    layer.bits = bits;
    layer.groupSize = groupSize;
    layer.sym = !asym;
    std::string name = mlir::qc::getGPUModuleName(layer);
    if (::qc::findModule(art, name))
      continue;
    SmallVector<mlir::qc::GPUTileConfig> cfgs =
        tileList.empty() ? mlir::qc::defaultGPUTileConfigs(layer, numSMs) : tileList;
    for (const mlir::qc::GPUTileConfig &t : cfgs)
      if (failed(mlir::qc::verifyGPUConfig(layer, t, [&] {
            return emitError(UnknownLoc::get(&ctx)) << "layer " << s << ": ";
          })))
        return 1;
    SmallVector<mlir::qc::GPUKernelVariant> variants;
    gpu::GPUModuleOp gm = mlir::qc::buildGPULinearModule(
        b, UnknownLoc::get(&ctx), name, layer, cfgs, variants);

    ::qc::ArtifactModule am;
    am.name = name;
    for (auto f : gm.getOps<gpu::GPUFuncOp>())
      am.kernels.push_back(f.getName().str());
    art.modules.push_back(am);

    ::qc::ArtifactLayer al;
    al.name = s;
    al.N = layer.n;
    al.K = layer.k;
    al.bits = layer.bits;
    al.groupSize = layer.groupSize;
    al.sym = layer.sym;
    al.layout = "mma16x64";
    for (const mlir::qc::GPUKernelVariant &v : variants) {
      ::qc::ArtifactVariant av;
      av.family = v.family;
      av.minM = v.minM;
      av.maxM = v.maxM;
      av.workspaceBytesPerRow = v.workspaceBytesPerRow;
      av.zeroWorkspace = v.zeroWorkspace;
      for (const mlir::qc::GPUKernelLaunch &l : v.launches) {
        ::qc::ArtifactLaunch la;
        la.module = name;
        la.kernel = l.kernel;
        std::copy(l.block, l.block + 3, la.block);
        la.gridX = l.gridX;
        la.tileM = l.tileM;
        la.gridZ = l.gridZ;
        la.sharedBytes = l.sharedBytes;
        la.params.assign(l.params.begin(), l.params.end());
        av.launches.push_back(la);
      }
      al.variants.push_back(av);
    }
    art.layers.push_back(al);
  }

  if (printIR)
    module->print(outs());

  // Inspection: the PTX of every target, printed and/or run through
  // ptxas -v (nothing is stored).
  for (const std::string &chip : chips) {
    if (!printPTX && !ptxasReport)
      break;
    std::map<std::string, std::string> objs;
    if (failed(lower(*module, chip, "isa", objs)))
      return fail("lowering to PTX for " + chip + " failed");
    for (auto &[modName, ptx] : objs) {
      if (printPTX)
        outs() << "// PTX of " << modName << " for " << chip << "\n"
               << ptx << "\n";
      if (!ptxasReport)
        continue;
      std::string log, err;
      SmallVector<mlir::qc::PtxasKernelReport> reports;
      std::string ptxas = toolkit.empty() ? mlir::qc::getConfiguredPtxas().str()
                                          : toolkit + "/bin/ptxas";
      if (!mlir::qc::runPtxasReport(ptxas, ptx, chip, log, reports, err))
        return fail(err);
      for (const mlir::qc::PtxasKernelReport &r : reports)
        outs() << modName << " " << chip << " " << r.kernel << ": "
               << r.registers << " registers, " << r.sharedBytes
               << " bytes smem, " << r.stackBytes << " bytes stack, "
               << r.spillStores << " bytes spill stores, " << r.spillLoads
               << " bytes spill loads\n";
    }
  }
  if (outputPath.empty())
    return 0;

  // Images: a cubin per target, then the PTX of the first target (PTX for
  // sm_80 is JIT-compiled by the driver on any later GPU).
  auto addImages = [&](StringRef chip, StringRef format, StringRef kind,
                       StringRef target) -> bool {
    std::map<std::string, std::string> objs;
    if (failed(lower(*module, chip, format, objs)))
      return false;
    for (::qc::ArtifactModule &m : art.modules) {
      auto it = objs.find(m.name);
      if (it == objs.end())
        return false;
      ::qc::ArtifactImage img;
      img.target = target.str();
      img.kind = kind.str();
      img.bytes.assign(it->second.begin(), it->second.end());
      m.images.push_back(std::move(img));
    }
    return true;
  };
  for (const std::string &chip : chips)
    if (!addImages(chip, "bin", "cubin", chip))
      return fail("building the cubin for " + chip +
                  " failed (is the CUDA toolkit installed?)");
  std::string ptxTarget =
      "compute_" +
      StringRef(chips.front())
          .drop_front(3)
          .take_while([](char c) { return isdigit(c); })
          .str();
  if (!addImages(chips.front(), "isa", "ptx", ptxTarget))
    return fail("lowering to PTX failed");

  if (Status s = ::qc::writeArtifact(outputPath, art); !s)
    return fail(s.message());
  outs() << "wrote " << outputPath << ": " << art.layers.size() << " layers, "
         << art.modules.size() << " modules, targets " << join(chips, ",")
         << " + " << ptxTarget << " PTX\n";
  return 0;
}
