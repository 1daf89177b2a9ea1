//===- KernelConfigTest.cpp - Tile configurations and GPTQ unpacking ------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The non-IR parts of the GPU code generator: the tile-list parser used by
// convert-wq-to-gpu and quant-kernelgen, the default variants (M ranges
// that tile [1, 2^30] without overlap, split-K within bounds, every config
// accepted by verifyGPUConfig), and the GPTQ unpacking that feeds the
// mma16x64 packer (inverse of the quantization library's packers).
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "qc/Quantization/Algorithms/Packing.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::qc;

namespace {

TEST(GPUTileConfig, ParsesFamiliesKeysAndRanges) {
  SmallVector<GPUTileConfig> t;
  std::string err;
  ASSERT_TRUE(succeeded(parseGPUTileConfigs(
      "splitk:warps=8,split-k=4,stages=3,m=1-4; mma:tile-m=32,warps=2,"
      "tiles-n=2,stages=4,m=5-64;dequant",
      t, err)))
      << err;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].family, "splitk");
  EXPECT_EQ(t[0].warps, 8);
  EXPECT_EQ(t[0].splitK, 4);
  EXPECT_EQ(t[0].stages, 3);
  EXPECT_EQ(t[0].minM, 1);
  EXPECT_EQ(t[0].maxM, 4);
  EXPECT_EQ(t[1].family, "mma");
  EXPECT_EQ(t[1].tileM, 32);
  EXPECT_EQ(t[1].tilesN, 2);
  EXPECT_EQ(t[1].minM, 5);
  EXPECT_EQ(t[1].maxM, 64);
  EXPECT_EQ(t[2].family, "dequant");
}

TEST(GPUTileConfig, RejectsBadSpecsWithAMessage) {
  for (const char *bad :
       {"wgmma:warps=4", "splitk:warps=four", "mma:depth=3", "splitk:m=1"}) {
    SmallVector<GPUTileConfig> t;
    std::string err;
    EXPECT_TRUE(failed(parseGPUTileConfigs(bad, t, err))) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(GPUTileConfig, DefaultsCoverEveryMOnceAndVerify) {
  MLIRContext ctx;
  for (auto [n, k, g] : {std::tuple<int64_t, int64_t, int64_t>{4096, 4096, 128},
                         {11008, 4096, 32},
                         {4096, 14336, -1},
                         {20, 72, 16},
                         {28672, 8192, 128}}) {
    GPULayerConfig layer{n, k, 4, g, true};
    SmallVector<GPUTileConfig> cfgs = defaultGPUTileConfigs(layer);
    int64_t nextM = 1;
    for (const GPUTileConfig &t : cfgs) {
      EXPECT_TRUE(succeeded(verifyGPUConfig(
          layer, t, [&] { return emitError(UnknownLoc::get(&ctx)); })));
      if (t.family == "dequant")
        continue;
      EXPECT_EQ(t.minM, nextM) << n << "x" << k;
      nextM = t.maxM + 1;
      EXPECT_GE(t.splitK, 1);
      EXPECT_LE(t.splitK, (k + 63) / 64);
    }
    EXPECT_EQ(nextM, (int64_t(1) << 30) + 1);
  }
}

// The registries: the families in registry order with their ABIs, the int4
// decoder, and formats no decoder claims refused with the reason (never a
// crash), by the same checks the pass and quant-kernelgen use.
TEST(GPURegistry, ListsFamiliesAndRefusesUnclaimedFormats) {
  std::vector<GPURegistryEntry> fams = listGPUKernelFamilies();
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].name, "splitk");
  EXPECT_EQ(fams[0].abi, "gemm");
  EXPECT_EQ(fams[1].name, "mma");
  EXPECT_EQ(fams[1].abi, "gemm");
  EXPECT_EQ(fams[2].name, "dequant");
  EXPECT_EQ(fams[2].abi, "dequant_w");
  for (const GPURegistryEntry &f : fams)
    EXPECT_FALSE(f.summary.empty()) << f.name;
  std::vector<GPURegistryEntry> decs = listGPUWeightDecoders();
  ASSERT_EQ(decs.size(), 1u);
  EXPECT_EQ(decs[0].name, "int4");

  GPULayerConfig ok{256, 512, 4, 128, false};
  EXPECT_EQ(checkGPUWeightFormat(ok), "");
  EXPECT_EQ(checkGPULayer(ok), "");
  GPULayerConfig b8 = ok;
  b8.bits = 8;
  EXPECT_EQ(checkGPUWeightFormat(b8),
            "GPU kernels support bits = 4 only (the mma16x64 layout), got "
            "bits = 8");
  GPULayerConfig ao = ok;
  ao.actOrder = true;
  EXPECT_NE(checkGPUWeightFormat(ao).find("act-order (g_idx) layers are not "
                                          "supported"),
            std::string::npos);
  GPULayerConfig nf4 = ok;
  nf4.codebook = true;
  EXPECT_NE(checkGPUWeightFormat(nf4).find("NF4 (codebook)"),
            std::string::npos);
  GPULayerConfig k100 = ok;
  k100.k = 100;
  EXPECT_EQ(checkGPUWeightFormat(k100), "");
  EXPECT_NE(checkGPULayer(k100).find("multiple of 8"), std::string::npos);

  // verifyGPUConfig refuses through the diagnostic, for every family.
  MLIRContext ctx;
  std::string diag;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    diag = d.str();
    return success();
  });
  for (const GPURegistryEntry &f : fams) {
    GPUTileConfig t;
    t.family = f.name;
    diag.clear();
    EXPECT_TRUE(failed(verifyGPUConfig(
        ao, t, [&] { return emitError(UnknownLoc::get(&ctx)); })));
    EXPECT_NE(diag.find("act-order"), std::string::npos) << f.name;
  }
  GPUTileConfig unknown;
  unknown.family = "wgmma";
  EXPECT_TRUE(failed(verifyGPUConfig(
      ok, unknown, [&] { return emitError(UnknownLoc::get(&ctx)); })));
  EXPECT_EQ(diag, "unknown kernel family 'wgmma' (expected splitk, mma or "
                  "dequant)");
}

TEST(GPUTileConfig, ModuleNamesEncodeTheConfiguration) {
  EXPECT_EQ(getGPUModuleName({4096, 11008, 4, 128, true}),
            "wq_n4096_k11008_b4_g128_sym");
  EXPECT_EQ(getGPUModuleName({64, 72, 4, -1, false}), "wq_n64_k72_b4_gc_asym");
}

TEST(GPTQUnpack, InvertsTheQuantizationLibraryPackers) {
  const int64_t n = 20, k = 72, groups = 3;
  std::mt19937 rng(3);
  std::vector<uint8_t> codes(n * k), stored(groups * n);
  for (auto &c : codes)
    c = rng() % 16;
  for (auto &z : stored)
    z = rng() % 15; // v1 stores z - 1; z = 0 is not representable
  // qweight [ceil(K/8), N]: column n is the stream of q[n, 0..K).
  int64_t words = ::qc::quant::packedWordCount(k, 4);
  std::vector<int32_t> qweight(words * n);
  for (int64_t col = 0; col < n; ++col)
    ::qc::quant::packCodeStream(codes.data() + col * k, 1, k, 4,
                                qweight.data() + col, n);
  int64_t zw = ::qc::quant::packedWordCount(n, 4);
  std::vector<int32_t> qzeros(groups * zw);
  for (int64_t g = 0; g < groups; ++g)
    ::qc::quant::packCodeStream(stored.data() + g * n, 1, n, 4,
                                qzeros.data() + g * zw, 1);

  std::vector<uint8_t> back;
  unpackGPTQCodes4(n, k, qweight.data(), back);
  EXPECT_EQ(back, codes);
  std::vector<float> zeros;
  unpackGPTQZerosV1(n, groups, qzeros.data(), zeros);
  ASSERT_EQ(zeros.size(), size_t(groups * n));
  for (int64_t i = 0; i < groups * n; ++i)
    EXPECT_EQ(zeros[i], float(stored[i] + 1)) << i;
}

} // namespace
