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
//   quant-kernelgen model.mlir [--targets ...] -o model.qcart
//       the same for every 4-bit gptq wq.linear of a quantized model (its
//       packed tensors come from the model's overlay), with the tensors
//       repacked into the mma16x64 layout and stored in the artifact;
//       layers the kernels cannot serve are listed and left out.
//   --print-ir       prints the kernel IR (before lowering)
//   --print-ptx      prints the PTX of every target
//   --ptxas-report   prints ptxas -v (registers, spills, shared memory)
//   --inspect FILE   reads an artifact back (readArtifact) and lists it
//   --ptx-images first|all|only
//                    which PTX images are stored (see the option); `only`
//                    writes PTX for every target and no cubin, which needs
//                    no CUDA toolkit and is what the PTX emulator executes
// The inspection flags work without -o.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "qc/Import/LoadModel.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/InitAllDialects.h"
#include "qc/Target/CUDA/CUDATarget.h"
#include "qc/runtime/Artifact.h"
#include "qc/runtime/OutputSafety.h"

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
static cl::opt<std::string> modelPath(cl::Positional,
                                      cl::desc("[quantized model .mlir]"),
                                      cl::init(""), cl::cat(category));
static cl::list<std::string>
    shapes("shape", cl::CommaSeparated,
           cl::desc("Layers as NxK (N outputs, K inputs)"),
           cl::value_desc("NxK,..."), cl::cat(category));
static cl::opt<int64_t> bits("bits", cl::desc("Weight code width (default: 4)"),
                             cl::init(4), cl::cat(category));
static cl::opt<int64_t> groupSize(
    "group-size",
    cl::desc("Input channels per group (-1: per channel) (default: 128)"),
    cl::init(128), cl::cat(category));
static cl::opt<bool>
    asym("asym", cl::desc("Asymmetric (fp16 zeros tensor) (default: off)"),
         cl::cat(category));
static cl::list<std::string> targets("targets", cl::CommaSeparated,
                                     cl::desc("Chips to build cubins for"),
                                     cl::value_desc("sm_80,sm_90a"),
                                     cl::cat(category));
static cl::opt<std::string>
    tiles("tiles",
          cl::desc("Variants (convert-wq-to-gpu tiles syntax); "
                   "default: splitk M<=8, mma tile-m 16/32/64"),
          cl::init(""), cl::cat(category));
static cl::opt<int64_t> numSMs("num-sms",
                               cl::desc("SM count for default split-k"),
                               cl::init(132), cl::cat(category));
static cl::opt<std::string>
    outputPath("o", cl::desc("Write the artifact here (default: none)"),
               cl::value_desc("file"), cl::cat(category));
static cl::opt<bool> printIR("print-ir",
                             cl::desc("Print the kernel IR (default: off)"),
                             cl::cat(category));
static cl::opt<bool>
    printPTX("print-ptx",
             cl::desc("Print the PTX of every target (default: off)"),
             cl::cat(category));
static cl::opt<bool>
    ptxasReport("ptxas-report",
                cl::desc("Print ptxas -v for every target (default: off)"),
                cl::cat(category));
static cl::opt<std::string>
    inspectPath("inspect",
                cl::desc("Read an artifact back and list it (default: none)"),
                cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> ptxImages(
    "ptx-images",
    cl::desc("PTX stored: 'first' (cubins + PTX of the first target, the "
             "default), 'all' (cubins + PTX of every target) or 'only' (PTX "
             "of every target, no cubins: needs no CUDA toolkit; what the PTX "
             "emulator runs)"),
    cl::init("first"), cl::cat(category));
static cl::opt<std::string>
    toolkit("toolkit",
            cl::desc("CUDA toolkit root (default: found at configure time)"),
            cl::init(""), cl::cat(category));

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # Kernels for two layer shapes (N x K), 4-bit, group size 128:\n"
    "  quant-kernelgen --shape 256x512,512x256 --targets sm_80,sm_90a -o "
    "k.qcart\n"
    "  # A GPU artifact for a 4-bit gptq-layout model (symmetric or not):\n"
    "  quant-kernelgen model.q.mlir --targets sm_90a -o model.qcart\n"
    "  # List what an artifact holds:\n"
    "  quant-kernelgen --inspect model.qcart\n");

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
    for (const auto &[role, tname] : l.tensors) {
      auto it = a.tensors.find(tname);
      outs() << "  tensor " << role << " " << tname;
      if (it != a.tensors.end()) {
        outs() << " [";
        llvm::interleave(it->second.shape, outs(), "x");
        outs() << "] " << it->second.bytes.size() << " bytes";
      }
      outs() << "\n";
    }
    for (const ::qc::ArtifactVariant &v : l.variants) {
      // kOpenEndedM stands for "no upper bound": say so instead of
      // printing the sentinel.
      outs() << "  variant " << v.family << " ";
      if (v.maxM >= mlir::qc::kOpenEndedM)
        outs() << "M>=" << v.minM;
      else
        outs() << "M=[" << v.minM << "," << v.maxM << "]";
      outs() << " workspace/row=" << v.workspaceBytesPerRow
             << (v.zeroWorkspace ? " zeroed" : "") << "\n";
      for (const ::qc::ArtifactLaunch &la : v.launches)
        outs() << "    launch " << la.module << "::" << la.kernel
               << " block=" << la.block[0] << "x" << la.block[1] << "x"
               << la.block[2] << " grid=" << la.gridX << "x"
               << (la.tileM >= mlir::qc::kOpenEndedM
                       ? std::string("1")
                       : "(M/" + std::to_string(la.tileM) + ")")
               << "x" << la.gridZ << " params=" << join(la.params, ",") << "\n";
    }
  }
  return 0;
}

/// The fp32 values of fp16 bit patterns.
static std::vector<float> halfsToFloats(const std::vector<uint8_t> &bytes) {
  std::vector<float> out;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    uint16_t h = uint16_t(bytes[i] | (bytes[i + 1] << 8));
    out.push_back(APFloat(APFloat::IEEEhalf(), APInt(16, h)).convertToFloat());
  }
  return out;
}

/// Model mode: every 4-bit gptq wq.linear of the model whose tensors are in
/// its overlay is repacked into mma16x64 tensors stored in the artifact
/// (layer name = the qweight parameter name without ".qweight"); layers the
/// kernels cannot serve (act-order, K % 8 != 0, ...) are listed and kept
/// out. Returns true on error.
template <typename AddLayerFn>
static bool addModelLayers(MLIRContext &ctx, const std::string &path,
                           ::qc::Artifact &art, AddLayerFn &addLayer) {
  OwningOpRef<ModuleOp> model;
  ::qc::ModelWeights weights;
  if (Status s = mlir::qc::openModel(ctx, path, model, weights); !s) {
    fail(s.message());
    return true;
  }
  bool error = false;
  int64_t added = 0, skipped = 0;
  model->walk([&](mlir::qc::wq::LinearOp op) {
    auto param = [&](mlir::Value v) -> const ::qc::PackedTensor * {
      auto p = v ? v.getDefiningOp<mlir::qc::llm::ParamOp>() : nullptr;
      if (!p)
        return nullptr;
      auto it = weights.packed.find(p.getName().str());
      return it == weights.packed.end() ? nullptr : &it->second;
    };
    auto qwName = op.getQweight().getDefiningOp<mlir::qc::llm::ParamOp>();
    std::string name = qwName ? qwName.getName().str() : "<constant>";
    std::string layerName = StringRef(name).ends_with(".qweight")
                                ? name.substr(0, name.size() - 8)
                                : name;
    auto skip = [&](const Twine &why) {
      errs() << "quant-kernelgen: skipping " << layerName << ": " << why
             << "\n";
      ++skipped;
    };
    // Say which property the kernels lack and what to do instead, one
    // reason per layer (the first that applies).
    // The weight format first (the decoder registry says what is missing).
    mlir::qc::GPULayerConfig format;
    format.n = op.getOutFeatures();
    format.k = op.getInFeatures();
    format.bits = op.getBits();
    format.groupSize = op.getGroupSize();
    format.sym = op.getSym();
    format.actOrder = bool(op.getGIdx());
    format.codebook = bool(op.getCodebook());
    if (std::string why = mlir::qc::checkGPUWeightFormat(format); !why.empty())
      return skip(why);
    if (op.getLayout() != mlir::qc::wq::Layout::gptq)
      return skip("the kernels repack the gptq layout; this layer uses '" +
                  mlir::qc::wq::stringifyLayout(op.getLayout()) +
                  "' (quantize with layout=gptq)");
    if (!op.getScaleDtype().isF16())
      return skip("the kernels read f16 scales (quantize with "
                  "scale-dtype=f16)");
    const ::qc::PackedTensor *qw = param(op.getQweight());
    const ::qc::PackedTensor *sc = param(op.getScales());
    const ::qc::PackedTensor *zr =
        op.getZeros() ? param(op.getZeros()) : nullptr;
    if (!qw || !sc || (op.getZeros() && !zr))
      return skip("its packed tensors are not in the model's overlay");
    mlir::qc::GPULayerConfig layer;
    layer.n = op.getOutFeatures();
    layer.k = op.getInFeatures();
    layer.bits = 4;
    layer.groupSize = op.getGroupSize();
    layer.sym = op.getSym();
    if (layer.k % 8)
      return skip("K = " + Twine(layer.k) +
                  " is not a multiple of 8 (GPU kernels read x in 16-byte "
                  "chunks)");
    if (layer.groupSize != -1 && layer.groupSize % 16)
      return skip("group size " + Twine(layer.groupSize) +
                  " is not a multiple of 16");
    int64_t groups = mlir::qc::wq::getNumGroups(layer.k, layer.groupSize);
    std::vector<uint8_t> codes;
    mlir::qc::unpackGPTQCodes4(
        layer.n, layer.k, reinterpret_cast<const int32_t *>(qw->bytes.data()),
        codes);
    std::vector<float> scales = halfsToFloats(sc->bytes), zeros;
    if (zr) {
      if (zr->dtype == ::qc::DType::F16)
        zeros = halfsToFloats(zr->bytes);
      else
        mlir::qc::unpackGPTQZerosV1(
            layer.n, groups,
            reinterpret_cast<const int32_t *>(zr->bytes.data()), zeros);
    }
    ::qc::MMA16x64Tensors t;
    if (Status s = ::qc::packMMA16x64(
            4, layer.n, layer.k, layer.groupSize, layer.sym, codes.data(),
            scales.data(), zeros.empty() ? nullptr : zeros.data(), t);
        !s) {
      fail(layerName + ": " + s.message());
      error = true;
      return;
    }
    ::qc::ArtifactLayer *al = addLayer(layerName, layer, [&] {
      return emitError(UnknownLoc::get(&ctx)) << "layer " << layerName << ": ";
    });
    if (!al) {
      error = true;
      return;
    }
    if (Status s = ::qc::addLayerTensors(art, *al, t); !s) {
      fail(s.message());
      error = true;
      return;
    }
    ++added;
  });
  if (!error && added == 0) {
    fail("no layer of " + path +
         " can be served by the GPU kernels (the reasons are listed above; "
         "they serve 4-bit gptq-layout layers with f16 scales and no "
         "act-order)");
    return true;
  }
  if (!error)
    errs() << "quant-kernelgen: " << added << " layers repacked, " << skipped
           << " skipped\n";
  return error;
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
  ::qc::ignoreFileSizeSignal();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-kernelgen: fused dequantize-GEMM kernels "
                              "for 4-bit linear layers\n");
  if (!inspectPath.empty())
    return inspect(inspectPath);
  if (shapes.empty() && modelPath.empty())
    return fail("give the layers with --shape NxK[,NxK...] or a quantized "
                "model .mlir (or --inspect FILE)");
  // The layer grid and the SM count against the one table of ranges
  // (OptionRanges.h): --num-sms 0 would divide by zero in the split-k
  // heuristic, --bits 2^32+4 would be narrowed to 4.
  for (const auto &[name, value] :
       {std::pair<const char *, int64_t>{"bits", bits},
        {"group-size", groupSize},
        {"num-sms", numSMs}})
    if (::qc::Status s = ::qc::quant::checkIntOption("kernelgen", name, value);
        !s)
      return fail("--" + s.message());
  if (ptxImages != "first" && ptxImages != "all" && ptxImages != "only")
    return fail("--ptx-images must be first, all or only (got '" + ptxImages +
                "')");
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
  // Kernel variants of every module built so far, by module name: layers
  // with the same configuration share one module.
  std::map<std::string, SmallVector<mlir::qc::GPUKernelVariant>> built;

  // Adds layer `layerName` (kernels built once per configuration); reports
  // an unsupported configuration through `emitError` and returns null.
  auto addLayer = [&](const std::string &layerName,
                      const mlir::qc::GPULayerConfig &layer,
                      llvm::function_ref<InFlightDiagnostic()> emitErr)
      -> ::qc::ArtifactLayer * {
    std::string name = mlir::qc::getGPUModuleName(layer);
    if (!built.count(name)) {
      SmallVector<mlir::qc::GPUTileConfig> cfgs =
          tileList.empty() ? mlir::qc::defaultGPUTileConfigs(layer, numSMs)
                           : tileList;
      for (const mlir::qc::GPUTileConfig &t : cfgs)
        if (failed(mlir::qc::verifyGPUConfig(layer, t, emitErr)))
          return nullptr;
      SmallVector<mlir::qc::GPUKernelVariant> variants;
      gpu::GPUModuleOp gm = mlir::qc::buildGPULinearModule(
          b, UnknownLoc::get(&ctx), name, layer, cfgs, variants);
      ::qc::ArtifactModule am;
      am.name = name;
      for (auto f : gm.getOps<gpu::GPUFuncOp>())
        am.kernels.push_back(f.getName().str());
      art.modules.push_back(am);
      built[name] = variants;
    }
    ::qc::ArtifactLayer al;
    al.name = layerName;
    al.N = layer.n;
    al.K = layer.k;
    al.bits = layer.bits;
    al.groupSize = layer.groupSize;
    al.sym = layer.sym;
    al.layout = "mma16x64";
    for (const mlir::qc::GPUKernelVariant &v : built[name]) {
      ::qc::ArtifactVariant av;
      av.family = v.family;
      av.abi = v.abi;
      av.minM = v.minM;
      av.maxM = v.maxM;
      av.workspaceBytesPerRow = v.workspaceBytesPerRow;
      av.zeroWorkspace = v.zeroWorkspace;
      for (const mlir::qc::GPUKernelLaunch &l : v.launches) {
        if (!l.tensorMaps.empty()) {
          emitErr() << "kernel " << l.kernel << " of family " << v.family
                    << " takes tensor-map parameters, which the artifact "
                       "format cannot record yet";
          return nullptr;
        }
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
    return &art.layers.back();
  };

  for (const std::string &s : shapes) {
    auto [nStr, kStr] = StringRef(s).split('x');
    mlir::qc::GPULayerConfig layer;
    if (nStr.getAsInteger(10, layer.n) || kStr.getAsInteger(10, layer.k))
      return fail("bad shape '" + s + "' (expected NxK, e.g. 4096x11008)");
    layer.bits = bits;
    layer.groupSize = groupSize;
    layer.sym = !asym;
    if (::qc::findLayer(art, s))
      continue;
    if (!addLayer(s, layer, [&] {
          return emitError(UnknownLoc::get(&ctx)) << "layer " << s << ": ";
        }))
      return 1;
  }

  if (!modelPath.empty() && addModelLayers(ctx, modelPath, art, addLayer))
    return 1;

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
  // sm_80 is JIT-compiled by the driver on any later GPU), or of every
  // target (--ptx-images). A PTX image keeps its chip's arch-specific
  // suffix: PTX for sm_90a (".target sm_90a") is "compute_90a", which the
  // runtime loads only on exactly that architecture, never as forward-
  // compatible compute_90 PTX (the driver refuses to JIT it elsewhere).
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
  if (ptxImages != "only")
    for (const std::string &chip : chips)
      if (!addImages(chip, "bin", "cubin", chip))
        return fail("building the cubin for " + chip +
                    " failed (is the CUDA toolkit installed?)");
  auto ptxTargetOf = [](StringRef chip) {
    return "compute_" + chip.drop_front(3).str(); // sm_90a -> compute_90a
  };
  std::string ptxTarget;
  for (const std::string &chip : chips) {
    if (ptxImages == "first" && chip != chips.front())
      break;
    if (!addImages(chip, "isa", "ptx", ptxTargetOf(chip)))
      return fail("lowering to PTX for " + chip + " failed");
    ptxTarget += (ptxTarget.empty() ? "" : ",") + ptxTargetOf(chip);
  }

  if (Status s = ::qc::writeArtifact(outputPath, art); !s)
    return fail(s.message());
  outs() << "wrote " << outputPath << ": " << art.layers.size() << " layers, "
         << art.modules.size() << " modules, "
         << (ptxImages == "only" ? "no cubins" : "targets " + join(chips, ","))
         << " + " << ptxTarget << " PTX\n";
  return 0;
}
