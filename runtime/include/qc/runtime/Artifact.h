//===- Artifact.h - The compiled-artifact file format -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// An artifact holds what the runtime needs to run quantized linear layers on
// a GPU without the compiler: kernel images (cubin per target, PTX for
// forward compatibility), a manifest saying which kernel to launch how for
// each layer and batch size M, and the packed weights. The runtime owns the
// format; the compiler (quant-kernelgen) writes it through writeArtifact and
// never defines its own. See ../shared/docs/DESIGN.md ("Artifact").
//
// File layout (all integers little-endian):
//
//   0   8 bytes  magic 0x89 'Q' 'C' 'A' 'R' 'T' '\r' '\n'
//   8   u32      format version (kArtifactVersion)
//   12  u32      header bytes (48)
//   16  u64      manifest bytes M
//   24  u64      total file bytes
//   32  u64      FNV-1a 64 checksum of bytes [48, end)
//   40  u64      reserved, 0
//   48  M bytes  manifest: compact UTF-8 JSON
//   ... sections, each starting at the next multiple of 64 (zero padding in
//       between), in the order the manifest's "sections" array lists them;
//       the file ends exactly at the end of the last one. A section is a
//       kernel image or the single safetensors blob of packed tensors.
//
// Each module's manifest entry also records its launch contract (version
// 2): the layer configuration it was compiled for (N, K, bits, group size,
// sym) and, in launch order, every launch of its kernels the compiler
// planned (block, grid, tile, shared memory, workspace, M range). The
// writer derives it from the layers and refuses a module launched for two
// configurations; the reader requires the layers' launches to be exactly
// those, field by field, and every block to fit the PTX entry's .reqntid /
// .maxntid. An edited launch field is therefore rejected before any launch
// even with the checksum recomputed.
//
// The reader treats every file as hostile: sizes are checked before
// anything is allocated, sections must tile the file, every cross reference
// (launch -> module/kernel, layer -> tensor, image -> section) must resolve,
// and every failure is a Status naming the file and the layer, variant,
// launch, kernel or tensor at fault.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_ARTIFACT_H
#define QC_RUNTIME_ARTIFACT_H

#include "qc/runtime/KernelAbi.h"
#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qc {

/// The format version this build writes and the only one it reads.
/// Version 2 added each module's launch contract (above); version 1
/// files are refused with a request to regenerate them.
constexpr uint32_t kArtifactVersion = 2;

/// One compiled form of a module.
struct ArtifactImage {
  /// "sm_80", "sm_90a", ... for cubins; "ptx" or "compute_80" for PTX.
  std::string target;
  /// "cubin" or "ptx".
  std::string kind;
  /// The cubin (ELF) or PTX text (no trailing NUL needed).
  std::vector<uint8_t> bytes;
};

/// A GPU module: its kernels (entry names) and its images, all of which
/// must define every kernel listed.
struct ArtifactModule {
  std::string name;                  ///< unique in the artifact
  std::vector<std::string> kernels;  ///< entry points, unique
  std::vector<ArtifactImage> images; ///< at least one; (target, kind) unique
};

/// The parameter names a launch may pass, in the kernel's argument order.
/// Pointers are 64-bit device addresses passed by value; "M" is an int32.
///   x: fp16 [M, K]; y: fp16 [M, N]; qweight/scales/zeros: the layer's
///   mma16x64 tensors; workspace: fp32, workspaceBytesPerRow * M bytes;
///   w: fp16 [N, K] row-major, the output of a "dequant" variant.
bool isArtifactParamName(const std::string &name);

/// One kernel launch. grid = (gridX, ceil(M / tileM), gridZ).
struct ArtifactLaunch {
  std::string module;              ///< an ArtifactModule name
  std::string kernel;              ///< one of that module's kernels
  uint32_t block[3] = {1, 1, 1};   ///< threads per block
  uint32_t gridX = 1;              ///< blocks along x
  uint32_t tileM = 1;              ///< rows of M per block along y
  uint32_t gridZ = 1;              ///< blocks along z (split-K slices)
  uint32_t sharedBytes = 0;        ///< dynamic shared memory
  std::vector<std::string> params; ///< kernel arguments by name, in order
};

/// A way to compute one layer for M in [minM, maxM]. What the runtime does
/// with it follows its kernel ABI (KernelAbi.h), not its family's name:
/// Gemm variants compute y = x W^T and their M ranges must not overlap
/// within a layer; a DequantW variant instead writes W as fp16 to "w" (for
/// the dequantize-then-cuBLAS comparison) and its M range is advisory.
struct ArtifactVariant {
  /// The compiler's kernel family ("splitk", "mma", "dequant", ...).
  std::string family;
  /// The ABI; unset means the family's built-in one (builtinFamilyAbi),
  /// the only way the families that predate the manifest key are written
  /// ("abi" is stored only when it differs from the built-in one).
  std::optional<KernelAbi> abi;
  int64_t minM = 1;                     ///< smallest M served
  int64_t maxM = 1;                     ///< largest M served
  std::vector<ArtifactLaunch> launches; ///< run in order
  uint64_t workspaceBytesPerRow = 0;    ///< workspace bytes = this * M
  bool zeroWorkspace = false;           ///< memset the workspace to 0 first
};

/// One quantized linear layer y = x W^T, W: N x K.
struct ArtifactLayer {
  std::string name;                ///< unique in the artifact
  int64_t N = 0;                   ///< output features
  int64_t K = 0;                   ///< input features
  int bits = 4;                    ///< code width
  int64_t groupSize = -1;          ///< G, or -1 for per-channel
  bool sym = true;                 ///< symmetric (no zeros tensor)
  std::string layout = "mma16x64"; ///< weight layout of the tensors
  /// Role ("qweight", "scales", "zeros") -> tensor name in
  /// Artifact::tensors. Empty for a kernel-only layer (benchmarks pack
  /// their own random weights); otherwise complete for the layout.
  std::map<std::string, std::string> tensors;
  std::vector<ArtifactVariant> variants; ///< at least one
};

/// A packed tensor stored in the artifact.
struct ArtifactTensor {
  DType dtype = DType::I32;   ///< element type
  std::vector<int64_t> shape; ///< dims
  std::vector<uint8_t> bytes; ///< little-endian contents
};

/// The whole artifact in memory.
struct Artifact {
  uint32_t version = kArtifactVersion; ///< format version read/written
  std::string producer;                ///< free text, e.g. tool + version
  std::vector<ArtifactModule> modules; ///< GPU modules
  std::vector<ArtifactLayer> layers;   ///< layers in schedule order
  std::map<std::string, ArtifactTensor> tensors; ///< packed tensors by name
};

/// Checks every invariant the reader enforces (names, ranges, launch
/// shapes, module/kernel and tensor references, tensor shapes for the
/// layout). Messages start with `displayName`.
Status validateArtifact(const Artifact &a, const std::string &displayName);

/// Validates `a` and produces the file bytes (deterministic).
Status serializeArtifact(const Artifact &a, std::vector<uint8_t> &out);

/// Validates `a` and writes it to `path` atomically (writeFileAtomically):
/// a reader sees the old file or the complete new one.
Status writeArtifact(const std::string &path, const Artifact &a);

/// Parses and validates the file image `data[0, size)`; messages start with
/// `displayName`. `out` is only modified on success.
Status parseArtifact(const uint8_t *data, size_t size,
                     const std::string &displayName, Artifact &out);

/// Reads, parses and validates `path`; messages start with `path`.
Status readArtifact(const std::string &path, Artifact &out);

/// The layer called `name`, or nullptr.
const ArtifactLayer *findLayer(const Artifact &a, const std::string &name);

/// The module called `name`, or nullptr.
const ArtifactModule *findModule(const Artifact &a, const std::string &name);

/// The non-"dequant" variant of `layer` whose [minM, maxM] holds M, or
/// nullptr when none does.
const ArtifactVariant *selectVariant(const ArtifactLayer &layer, int64_t M);

/// The first variant of `family`, or nullptr.
const ArtifactVariant *findVariant(const ArtifactLayer &layer,
                                   const std::string &family);

/// The ABI of a validated variant: its own or its family's built-in one.
KernelAbi variantAbi(const ArtifactVariant &v);

/// The first variant with ABI `abi`, or nullptr.
const ArtifactVariant *findVariantByAbi(const ArtifactLayer &layer,
                                        KernelAbi abi);

/// Stores `t` as the tensors "<layer.name>.qweight", ".scales" and (asym)
/// ".zeros" and points layer.tensors at them. Fails if `t` does not match
/// the layer's N/K/bits/group/sym or a name is taken.
Status addLayerTensors(Artifact &a, ArtifactLayer &layer,
                       const MMA16x64Tensors &t);

/// Rebuilds the layer's MMA16x64Tensors from the artifact's tensors; fails
/// (naming the layer) for a kernel-only layer.
Status layerTensors(const Artifact &a, const ArtifactLayer &layer,
                    MMA16x64Tensors &out);

} // namespace qc

#endif // QC_RUNTIME_ARTIFACT_H
