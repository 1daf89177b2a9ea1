//===- ArtifactTest.cpp - Tests of the artifact writer and reader ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Artifact.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <set>

namespace qc {
namespace {

std::vector<uint8_t> bytesOf(const std::string &s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

ArtifactLaunch launch(const std::string &module, const std::string &kernel,
                      std::vector<std::string> params, uint32_t tileM = 16) {
  ArtifactLaunch L;
  L.module = module;
  L.kernel = kernel;
  L.block[0] = 128;
  L.gridX = 3;
  L.tileM = tileM;
  L.gridZ = 2;
  L.sharedBytes = 4096;
  L.params = std::move(params);
  return L;
}

/// A small but complete artifact: two modules (cubin + PTX images), one
/// layer with packed asym tensors and three variant families, one
/// kernel-only symmetric layer.
Artifact sampleArtifact() {
  Artifact a;
  a.producer = "ArtifactTest";
  ArtifactModule gemm;
  gemm.name = "gemm_40x172";
  gemm.kernels = {"splitk_kernel", "mma_kernel", "reduce_kernel"};
  std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F'};
  for (int i = 0; i < 300; ++i)
    elf.push_back(uint8_t(i * 7));
  gemm.images.push_back({"sm_80", "cubin", elf});
  elf[5] ^= 0xFF;
  gemm.images.push_back({"sm_90a", "cubin", elf});
  gemm.images.push_back(
      {"ptx", "ptx", bytesOf(".version 7.0\n.target sm_80\n// ...\n")});
  a.modules.push_back(gemm);
  ArtifactModule deq;
  deq.name = "dequant";
  deq.kernels = {"dequant_kernel"};
  deq.images.push_back({"compute_80", "ptx", bytesOf(".version 7.0\n")});
  a.modules.push_back(deq);
  // A module is compiled for one layer configuration: the 4096x4096 layer
  // has its own.
  ArtifactModule big;
  big.name = "gemm_4096x4096";
  big.kernels = {"mma_kernel"};
  big.images.push_back({"sm_90a", "cubin", elf});
  a.modules.push_back(big);

  ArtifactLayer l;
  l.name = "L1";
  l.N = 40;
  l.K = 172;
  l.bits = 4;
  l.groupSize = 32;
  l.sym = false;
  ArtifactVariant splitk;
  splitk.family = "splitk";
  splitk.minM = 1;
  splitk.maxM = 8;
  splitk.workspaceBytesPerRow = 40 * 4;
  splitk.zeroWorkspace = true;
  splitk.launches.push_back(
      launch("gemm_40x172", "splitk_kernel",
             {"x", "qweight", "scales", "zeros", "workspace", "M"}, 8));
  splitk.launches.push_back(
      launch("gemm_40x172", "reduce_kernel", {"workspace", "y", "M"}, 8));
  ArtifactVariant mma;
  mma.family = "mma";
  mma.minM = 9;
  mma.maxM = 256;
  mma.launches.push_back(launch("gemm_40x172", "mma_kernel",
                                {"x", "qweight", "scales", "zeros", "y", "M"}));
  ArtifactVariant dq;
  dq.family = "dequant";
  dq.minM = 1;
  dq.maxM = 256;
  dq.launches.push_back(
      launch("dequant", "dequant_kernel", {"qweight", "scales", "zeros", "w"}));
  l.variants = {splitk, mma, dq};

  std::mt19937 rng(3);
  std::vector<uint8_t> codes(40 * 172);
  for (auto &c : codes)
    c = uint8_t(rng() % 16);
  std::vector<float> scales(6 * 40), zeros(6 * 40);
  for (size_t i = 0; i < scales.size(); ++i) {
    scales[i] = 0.001f * float(1 + rng() % 100);
    zeros[i] = float(rng() % 16);
  }
  MMA16x64Tensors t;
  EXPECT_TRUE(packMMA16x64(4, 40, 172, 32, false, codes.data(), scales.data(),
                           zeros.data(), t));
  EXPECT_TRUE(addLayerTensors(a, l, t));
  a.layers.push_back(l);

  ArtifactLayer k;
  k.name = "4096x4096";
  k.N = 4096;
  k.K = 4096;
  k.groupSize = 128;
  k.sym = true;
  ArtifactVariant kv;
  kv.family = "mma";
  kv.minM = 1;
  kv.maxM = 256;
  kv.launches.push_back(launch("gemm_4096x4096", "mma_kernel",
                               {"x", "qweight", "scales", "y", "M"}));
  k.variants = {kv};
  a.layers.push_back(k);
  return a;
}

void expectSame(const Artifact &a, const Artifact &b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.producer, b.producer);
  ASSERT_EQ(a.modules.size(), b.modules.size());
  for (size_t i = 0; i < a.modules.size(); ++i) {
    EXPECT_EQ(a.modules[i].name, b.modules[i].name);
    EXPECT_EQ(a.modules[i].kernels, b.modules[i].kernels);
    ASSERT_EQ(a.modules[i].images.size(), b.modules[i].images.size());
    for (size_t j = 0; j < a.modules[i].images.size(); ++j) {
      EXPECT_EQ(a.modules[i].images[j].target, b.modules[i].images[j].target);
      EXPECT_EQ(a.modules[i].images[j].kind, b.modules[i].images[j].kind);
      EXPECT_EQ(a.modules[i].images[j].bytes, b.modules[i].images[j].bytes);
    }
  }
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const ArtifactLayer &x = a.layers[i], &y = b.layers[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.N, y.N);
    EXPECT_EQ(x.K, y.K);
    EXPECT_EQ(x.bits, y.bits);
    EXPECT_EQ(x.groupSize, y.groupSize);
    EXPECT_EQ(x.sym, y.sym);
    EXPECT_EQ(x.layout, y.layout);
    EXPECT_EQ(x.tensors, y.tensors);
    ASSERT_EQ(x.variants.size(), y.variants.size());
    for (size_t v = 0; v < x.variants.size(); ++v) {
      const ArtifactVariant &p = x.variants[v], &r = y.variants[v];
      EXPECT_EQ(p.family, r.family);
      EXPECT_EQ(p.minM, r.minM);
      EXPECT_EQ(p.maxM, r.maxM);
      EXPECT_EQ(p.workspaceBytesPerRow, r.workspaceBytesPerRow);
      EXPECT_EQ(p.zeroWorkspace, r.zeroWorkspace);
      ASSERT_EQ(p.launches.size(), r.launches.size());
      for (size_t l = 0; l < p.launches.size(); ++l) {
        const ArtifactLaunch &P = p.launches[l], &R = r.launches[l];
        EXPECT_EQ(P.module, R.module);
        EXPECT_EQ(P.kernel, R.kernel);
        for (int d = 0; d < 3; ++d)
          EXPECT_EQ(P.block[d], R.block[d]);
        EXPECT_EQ(P.gridX, R.gridX);
        EXPECT_EQ(P.tileM, R.tileM);
        EXPECT_EQ(P.gridZ, R.gridZ);
        EXPECT_EQ(P.sharedBytes, R.sharedBytes);
        EXPECT_EQ(P.params, R.params);
      }
    }
  }
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto &kv : a.tensors) {
    auto it = b.tensors.find(kv.first);
    ASSERT_NE(it, b.tensors.end()) << kv.first;
    EXPECT_EQ(kv.second.dtype, it->second.dtype);
    EXPECT_EQ(kv.second.shape, it->second.shape);
    EXPECT_EQ(kv.second.bytes, it->second.bytes);
  }
}

/// Replaces the first occurrence of `from` in the manifest by `to` (same
/// length, so offsets stay valid) and fixes the checksum, producing a file
/// that only the manifest checks can reject.
void patchManifest(std::vector<uint8_t> &file, const std::string &from,
                   const std::string &to) {
  ASSERT_EQ(from.size(), to.size());
  uint64_t manifestBytes;
  std::memcpy(&manifestBytes, file.data() + 16, 8);
  std::string text(file.begin() + 48, file.begin() + 48 + manifestBytes);
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  std::memcpy(file.data() + 48 + at, to.data(), to.size());
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 48; i < file.size(); ++i) {
    h ^= file[i];
    h *= 0x100000001b3ull;
  }
  std::memcpy(file.data() + 32, &h, 8);
}

Status parse(const std::vector<uint8_t> &file, Artifact &out) {
  return parseArtifact(file.data(), file.size(), "t.qcart", out);
}

TEST(Artifact, RoundTripThroughAFile) {
  test::TempDir dir;
  Artifact a = sampleArtifact();
  const std::string path = dir.file("k.qcart");
  Status st = writeArtifact(path, a);
  ASSERT_TRUE(st) << st.message();
  Artifact b;
  st = readArtifact(path, b);
  ASSERT_TRUE(st) << st.message();
  expectSame(a, b);

  // Deterministic: the read-back artifact serializes to the same bytes.
  std::vector<uint8_t> x, y;
  ASSERT_TRUE(serializeArtifact(a, x));
  ASSERT_TRUE(serializeArtifact(b, y));
  EXPECT_EQ(x, y);
  // Sections are 64-byte aligned: the first image's bytes start there.
  const auto &elf = a.modules[0].images[0].bytes;
  auto it = std::search(x.begin(), x.end(), elf.begin(), elf.end());
  ASSERT_NE(it, x.end());
  EXPECT_EQ((it - x.begin()) % 64, 0);

  // Packed tensors come back bit exact and usable.
  MMA16x64Tensors t;
  st = layerTensors(b, b.layers[0], t);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(t.N, 40);
  EXPECT_EQ(t.numGroups, 6);
  EXPECT_FALSE(t.sym);
  MMA16x64Tensors t0;
  ASSERT_TRUE(layerTensors(a, a.layers[0], t0));
  EXPECT_EQ(t.qweight, t0.qweight);
  EXPECT_EQ(t.scales, t0.scales);
  EXPECT_EQ(t.zeros, t0.zeros);
  st = layerTensors(b, b.layers[1], t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("kernel-only"), std::string::npos);

  // Variant selection by M.
  EXPECT_EQ(selectVariant(b.layers[0], 1)->family, "splitk");
  EXPECT_EQ(selectVariant(b.layers[0], 8)->family, "splitk");
  EXPECT_EQ(selectVariant(b.layers[0], 9)->family, "mma");
  EXPECT_EQ(selectVariant(b.layers[0], 256)->family, "mma");
  EXPECT_EQ(selectVariant(b.layers[0], 257), nullptr);
  EXPECT_NE(findVariant(b.layers[0], "dequant"), nullptr);
  EXPECT_EQ(findVariant(b.layers[1], "dequant"), nullptr);
  EXPECT_NE(findLayer(b, "4096x4096"), nullptr);
  EXPECT_EQ(findLayer(b, "nope"), nullptr);
}

TEST(Artifact, EmptyArtifactRoundTrips) {
  Artifact a;
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(a, file));
  Artifact b;
  Status st = parse(file, b);
  ASSERT_TRUE(st) << st.message();
  EXPECT_TRUE(b.layers.empty());
}

TEST(Artifact, TruncatedAtEveryCutPointIsAnError) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  for (size_t cut = 0; cut < file.size(); ++cut) {
    Artifact b;
    Status st = parseArtifact(file.data(), cut, "t.qcart", b);
    ASSERT_FALSE(st) << "cut at " << cut;
    ASSERT_EQ(st.message().rfind("t.qcart: ", 0), 0u) << st.message();
    if (cut >= 48) {
      ASSERT_NE(st.message().find("truncated"), std::string::npos)
          << st.message();
    }
  }
  // Appended bytes are rejected too.
  file.push_back(0);
  Artifact b;
  Status st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("trailing bytes"), std::string::npos);
}

TEST(Artifact, EveryCorruptedByteIsAnError) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  for (size_t i = 0; i < file.size(); ++i) {
    std::vector<uint8_t> bad = file;
    bad[i] ^= uint8_t(1u << (i % 8));
    Artifact b;
    ASSERT_FALSE(parse(bad, b)) << "flipped byte " << i;
  }
}

TEST(Artifact, WrongMagic) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  file[1] = 'X';
  Artifact b;
  Status st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: not a qc artifact (bad magic"),
            std::string::npos)
      << st.message();
}

TEST(Artifact, FutureVersionIsRefusedClearly) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  uint32_t v = kArtifactVersion + 1;
  std::memcpy(file.data() + 8, &v, 4); // the checksum does not cover the header
  Artifact b;
  Status st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("format version " + std::to_string(v) +
                              " is newer than this build"),
            std::string::npos)
      << st.message();
  // A manifest whose version disagrees with the header is refused too.
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  patchManifest(file, "\"version\":" + std::to_string(kArtifactVersion),
                "\"version\":0");
  st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("disagrees"), std::string::npos);
}

TEST(Artifact, LaunchOfAKernelMissingFromItsModule) {
  // The writer refuses it...
  Artifact a = sampleArtifact();
  a.layers[0].variants[1].launches[0].kernel = "mma_kernex";
  std::vector<uint8_t> file;
  Status st = serializeArtifact(a, file);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("layer \"L1\": variant 1 (mma): launch 0: kernel "
                              "\"mma_kernex\" is missing from module "
                              "\"gemm_40x172\""),
            std::string::npos)
      << st.message();
  // ...and so does the reader, for a file written by something else.
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  // (the launch, not the module's contract, which names it first)
  patchManifest(file, "\"module\":\"gemm_40x172\",\"kernel\":\"mma_kernel\"",
                "\"module\":\"gemm_40x172\",\"kernel\":\"mma_kernex\"");
  Artifact b;
  st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: layer \"L1\": variant 1 (mma): launch "
                              "0: kernel \"mma_kernex\" is missing from module "
                              "\"gemm_40x172\" (its kernels: splitk_kernel, "
                              "mma_kernel, reduce_kernel)"),
            std::string::npos)
      << st.message();
  // A launch naming an unknown module.
  a = sampleArtifact();
  a.layers[1].variants[0].launches[0].module = "nomodule";
  st = serializeArtifact(a, file);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("layer \"4096x4096\": variant 0 (mma): launch 0: "
                              "module \"nomodule\" is not in the artifact"),
            std::string::npos)
      << st.message();
}

TEST(Artifact, LayerReferencingAMissingTensor) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  patchManifest(file, "\"L1.scales\"", "\"L1.scalez\"");
  Artifact b;
  Status st = parse(file, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: layer \"L1\": scales tensor "
                              "\"L1.scalez\" is not in the artifact"),
            std::string::npos)
      << st.message();

  Artifact a = sampleArtifact();
  a.layers[0].tensors.erase("zeros");
  st = serializeArtifact(a, file);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("layer \"L1\": no zeros tensor"),
            std::string::npos)
      << st.message();

  a = sampleArtifact();
  a.tensors["L1.scales"].shape = {6, 40}; // unpadded: wrong for the layout
  a.tensors["L1.scales"].bytes.resize(6 * 40 * 2);
  st = serializeArtifact(a, file);
  ASSERT_FALSE(st);
  EXPECT_NE(
      st.message().find("scales tensor \"L1.scales\" must be F16 [6, 48]"),
      std::string::npos)
      << st.message();
}

// The manifest's "abi" key: omitted for the built-in families (their files
// stay as before), written and read back for a new family, which the
// runtime then treats by its ABI alone (selection by M, the dequant role).
TEST(Artifact, KernelAbiOfNewAndBuiltinFamilies) {
  Artifact a = sampleArtifact();
  a.layers[0].variants[1].abi = KernelAbi::Gemm; // mma: the built-in ABI
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(a, file));
  std::string text(file.begin(), file.end());
  EXPECT_EQ(text.find("\"abi\""), std::string::npos);
  Artifact back;
  ASSERT_TRUE(parse(file, back));
  EXPECT_EQ(variantAbi(back.layers[0].variants[1]), KernelAbi::Gemm);
  EXPECT_EQ(variantAbi(back.layers[0].variants[2]), KernelAbi::DequantW);

  a.layers[0].variants[1].family = "wgmma";
  a.layers[0].variants[2].family = "dequant2";
  a.layers[0].variants[2].abi = KernelAbi::DequantW;
  ASSERT_TRUE(serializeArtifact(a, file));
  text.assign(file.begin(), file.end());
  EXPECT_NE(text.find("\"abi\":\"gemm\""), std::string::npos);
  EXPECT_NE(text.find("\"abi\":\"dequant_w\""), std::string::npos);
  ASSERT_TRUE(parse(file, back));
  const ArtifactLayer &l = back.layers[0];
  EXPECT_EQ(l.variants[1].family, "wgmma");
  ASSERT_TRUE(l.variants[1].abi.has_value());
  EXPECT_EQ(selectVariant(l, 100), &l.variants[1]);
  EXPECT_EQ(findVariantByAbi(l, KernelAbi::DequantW), &l.variants[2]);

  std::string from = "\"abi\":\"gemm\"", to = "\"abi\":\"gemx\"";
  patchManifest(file, from, to);
  Status st = parse(file, back);
  ASSERT_FALSE(st);
  EXPECT_NE(
      st.message().find("unknown abi \"gemx\" (expected gemm, dequant_w)"),
      std::string::npos)
      << st.message();
}

TEST(Artifact, InvalidManifestsAreRejected) {
  struct Case {
    std::function<void(Artifact &)> edit;
    const char *expect;
  };
  std::vector<Case> cases = {
      {[](Artifact &a) { a.layers[0].variants[1].minM = 8; },
       "overlaps variant 0"},
      {[](Artifact &a) { a.layers[0].variants[1].family = "wgmma"; },
       "unknown family \"wgmma\""},
      {[](Artifact &a) {
         a.layers[0].variants[1].launches[0].params.push_back("bias");
       },
       "unknown parameter \"bias\""},
      {[](Artifact &a) {
         a.layers[1].variants[0].launches[0].params.push_back("zeros");
       },
       "passes zeros but the layer is symmetric"},
      {[](Artifact &a) {
         a.layers[0].variants[1].launches[0].params.push_back("workspace");
       },
       "passes workspace but the variant sizes none"},
      {[](Artifact &a) { a.layers[0].variants[1].launches[0].block[1] = 16; },
       "2048 threads per block"},
      {[](Artifact &a) { a.layers[0].variants[1].launches[0].tileM = 0; },
       "tileM"},
      {[](Artifact &a) { a.layers[0].variants[0].maxM = 0; },
       "invalid M range"},
      {[](Artifact &a) { a.layers[0].variants.clear(); }, "no kernel variants"},
      {[](Artifact &a) { a.layers[1].name = "L1"; },
       "layer \"L1\" defined twice"},
      {[](Artifact &a) { a.layers[1].bits = 3; }, "3-bit"},
      {[](Artifact &a) { a.layers[1].layout = "gptq"; },
       "unknown weight layout"},
      {[](Artifact &a) { a.modules[0].images[0].target = "ampere"; },
       "cubin target must look like sm_80"},
      {[](Artifact &a) { a.modules[1].images[0].bytes.clear(); }, "is empty"},
      {[](Artifact &a) { a.modules[1].kernels.clear(); }, "lists no kernels"},
      {[](Artifact &a) { a.tensors["L1.qweight"].bytes.pop_back(); },
       "tensor \"L1.qweight\" holds"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Artifact a = sampleArtifact();
    cases[i].edit(a);
    std::vector<uint8_t> file;
    Status st = serializeArtifact(a, file);
    ASSERT_FALSE(st) << "case " << i;
    EXPECT_NE(st.message().find(cases[i].expect), std::string::npos)
        << "case " << i << ": " << st.message();
  }
}

TEST(Artifact, ContainerChecks) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  Artifact b;
  // An unknown manifest key (a producer typo) is an error, not ignored.
  std::vector<uint8_t> bad = file;
  patchManifest(bad, "\"producer\"", "\"produser\"");
  Status st = parse(bad, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("unknown key \"produser\""), std::string::npos)
      << st.message();
  // Non-zero padding between sections.
  bad = file;
  uint64_t manifestBytes;
  std::memcpy(&manifestBytes, bad.data() + 16, 8);
  ASSERT_NE((48 + manifestBytes) % 64, 0u) << "no padding to corrupt";
  bad[48 + manifestBytes] = 1;
  patchManifest(bad, "{", "{"); // recompute the checksum only
  st = parse(bad, b);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("non-zero padding"), std::string::npos)
      << st.message();
  // A missing file names the path.
  st = readArtifact("/nonexistent/dir/k.qcart", b);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message().rfind("/nonexistent/dir/k.qcart: cannot open", 0), 0u);
}

TEST(Artifact, WriteIsAtomic) {
  test::TempDir dir;
  const std::string path = dir.file("k.qcart");
  Artifact a = sampleArtifact();
  ASSERT_TRUE(writeArtifact(path, a));
  Artifact changed = sampleArtifact();
  changed.producer = "second";
  setAtomicWriteFaultForTesting(100);
  Status st = writeArtifact(path, changed);
  setAtomicWriteFaultForTesting(-1);
  ASSERT_FALSE(st);
  Artifact b;
  ASSERT_TRUE(readArtifact(path, b));
  EXPECT_EQ(b.producer, "ArtifactTest");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"k.qcart"});
  // An invalid artifact never reaches the disk.
  changed.layers[0].variants.clear();
  ASSERT_FALSE(writeArtifact(path, changed));
  ASSERT_TRUE(readArtifact(path, b));
  EXPECT_EQ(b.producer, "ArtifactTest");
}

/// One token of a manifest's JSON text: a number, or a string (value or
/// key), as the byte range [begin, end) of its text (a string's range is
/// its content, without the quotes); `key` is the nearest object key before
/// it, to name the field in failure messages.
struct ManifestToken {
  size_t begin = 0, end = 0;
  bool isString = false, isKey = false;
  std::string key;
};

std::vector<ManifestToken> manifestTokens(const std::string &m) {
  std::vector<ManifestToken> out;
  std::string lastKey;
  for (size_t i = 0; i < m.size();) {
    char c = m[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < m.size() && m[j] != '"')
        j += m[j] == '\\' ? 2 : 1;
      ManifestToken t;
      t.begin = i + 1;
      t.end = j;
      t.isString = true;
      size_t k = j + 1;
      while (k < m.size() && m[k] == ' ')
        ++k;
      t.isKey = k < m.size() && m[k] == ':';
      if (t.isKey)
        lastKey = m.substr(t.begin, t.end - t.begin);
      t.key = lastKey;
      out.push_back(t);
      i = j + 1;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      while (j < m.size() && std::strchr("-+.eE0123456789", m[j]))
        ++j;
      ManifestToken t;
      t.begin = i;
      t.end = j;
      t.key = lastKey;
      out.push_back(t);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

/// One accepted edit: the field's key and a readable description.
struct AcceptedEdit {
  std::string key, what;
};

/// Edits the manifest of `file` field by field: every number (offsets,
/// sizes, counts, launch dimensions, M ranges, bits, group sizes) replaced
/// by a same-length all-nines value, by 0 and by -1, and every string
/// (kernel, module, tensor and layer names, families, targets, parameter
/// names, dtypes, keys) by z's and by "", each time with the checksum fixed
/// so that only the manifest checks can catch it. Same-length edits (JSON
/// whitespace pads the shorter ones) keep the sections where they are.
/// Returns the edits parseArtifact accepted; checks that every rejection
/// names the file, and counts the rejections in `rejected`.
std::vector<AcceptedEdit> sweepManifest(const std::vector<uint8_t> &file,
                                        int &rejected) {
  std::vector<AcceptedEdit> accepted;
  uint64_t manifestBytes;
  std::memcpy(&manifestBytes, file.data() + 16, 8);
  const std::string manifest(file.begin() + 48,
                             file.begin() + 48 + manifestBytes);
  std::vector<ManifestToken> tokens = manifestTokens(manifest);
  EXPECT_GT(tokens.size(), 100u);
  rejected = 0;
  for (const ManifestToken &t : tokens) {
    const size_t len = t.end - t.begin;
    if (len == 0)
      continue;
    // (text, start offset relative to the token, bytes replaced)
    std::vector<std::string> edits;
    if (t.isString) {
      edits.push_back(std::string(len, 'z'));
      edits.push_back("\"\"" + std::string(len, ' ')); // ends the string
    } else {
      edits.push_back(std::string(len, '9'));
      edits.push_back("0" + std::string(len - 1, ' '));
      if (len >= 2)
        edits.push_back("-1" + std::string(len - 2, ' '));
    }
    for (const std::string &edit : edits) {
      size_t at = t.begin, n = len;
      if (edit.size() == len + 2) { // replaces the quotes as well
        at -= 1;
        n += 2;
      }
      if (manifest.compare(at, n, edit) == 0)
        continue; // no change
      std::vector<uint8_t> bad = file;
      std::memcpy(bad.data() + 48 + at, edit.data(), n);
      uint64_t h = 0xcbf29ce484222325ull;
      for (size_t i = 48; i < bad.size(); ++i) {
        h ^= bad[i];
        h *= 0x100000001b3ull;
      }
      std::memcpy(bad.data() + 32, &h, 8);
      Artifact out;
      Status st = parseArtifact(bad.data(), bad.size(), "edited.qcart", out);
      if (!st) {
        ++rejected;
        EXPECT_EQ(st.message().rfind("edited.qcart", 0), 0u) << st.message();
        continue;
      }
      accepted.push_back({t.key, "'" + t.key + "' at manifest byte " +
                                     std::to_string(t.begin) + ": '" +
                                     manifest.substr(t.begin, len) + "' -> '" +
                                     edit + "'"});
    }
  }
  return accepted;
}

/// Fields where another value of the same type is as valid: the producer's
/// free-form name and layer names (unique, which the sweep's same-length
/// z's keep). Module, kernel and tensor names are cross-references and are
/// NOT here.
bool benignEdit(const std::string &key) {
  return key == "producer" || key == "name";
}

/// parseArtifact runs before any driver call or launch (quant-bench,
/// GpuRuntime), so a rejection here is a rejection before any launch.
/// Offsets, sizes, counts, kernel/module/tensor names, families, targets,
/// parameters, dtypes and keys: every edit is rejected.
TEST(Artifact, ManifestEditedFieldByFieldIsRejected) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  int rejected = 0;
  std::vector<AcceptedEdit> accepted = sweepManifest(file, rejected);
  EXPECT_GT(rejected, 300);
  for (const AcceptedEdit &a : accepted)
    if (!benignEdit(a.key))
      ADD_FAILURE() << "accepted edit of " << a.what;
}

/// A finding of the reliability sweep: launch geometry (grid_x, grid_z,
/// block, tile_m, shared_bytes), workspace size, M ranges and the N / K /
/// group size of a layer without tensors used to be trusted, so an edit
/// (with the checksum fixed) launched a kernel with too few blocks or a
/// smaller workspace. Format version 2 records each module's launch
/// contract; every such edit is now rejected, with a message naming the
/// module, the kernel and the field.
TEST(Artifact, ManifestLaunchGeometryEditsAreRejected) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  uint64_t manifestBytes;
  std::memcpy(&manifestBytes, file.data() + 16, 8);
  const std::string manifest(file.begin() + 48,
                             file.begin() + 48 + manifestBytes);
  for (const char *key :
       {"\"grid_x\"", "\"tile_m\"", "\"grid_z\"", "\"shared_bytes\"",
        "\"workspace_bytes_per_row\"", "\"min_m\"", "\"max_m\"", "\"block\"",
        "\"contract\""})
    EXPECT_NE(manifest.find(key), std::string::npos) << key;
  int rejected = 0;
  std::vector<AcceptedEdit> accepted = sweepManifest(file, rejected);
  for (const AcceptedEdit &a : accepted)
    if (!benignEdit(a.key))
      ADD_FAILURE() << "accepted edit of " << a.what;
}

TEST(Artifact, LaunchContractMessagesNameModuleKernelAndField) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  // The first launch's grid_x (3) -> 9: the splitk launch of layer L1.
  std::vector<uint8_t> bad = file;
  patchManifest(bad, "\"grid_x\":3,\"tile_m\":8", "\"grid_x\":9,\"tile_m\":8");
  Artifact out;
  Status st = parseArtifact(bad.data(), bad.size(), "edited.qcart", out);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("module \"gemm_40x172\""), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("grid_x"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("splitk_kernel"), std::string::npos)
      << st.message();
}

TEST(Artifact, WriterRefusesAModuleLaunchedForTwoConfigurations) {
  Artifact a = sampleArtifact();
  // The 4096x4096 layer launching the 40x172 module's kernel: a module is
  // compiled for one layer configuration.
  a.layers[1].variants[0].launches[0].module = "gemm_40x172";
  std::vector<uint8_t> file;
  Status st = serializeArtifact(a, file);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("another configuration"), std::string::npos)
      << st.message();
  // One kernel serving two variants with different grids is allowed (a
  // split-K finalize kernel does): each use is recorded.
  a = sampleArtifact();
  a.layers[0].variants[1].launches.push_back(
      a.layers[0].variants[1].launches[0]);
  a.layers[0].variants[1].launches[1].gridX = 7;
  ASSERT_TRUE(serializeArtifact(a, file))
      << serializeArtifact(a, file).message();
  Artifact b;
  EXPECT_TRUE(parseArtifact(file.data(), file.size(), "t.qcart", b));
}

TEST(Artifact, BlockMustFitThePtxEntryDirectives) {
  Artifact a = sampleArtifact();
  a.modules[0].images[2].bytes =
      bytesOf(".version 7.0\n.target sm_80\n.visible .entry mma_kernel(\n"
              "  .param .u64 p0\n)\n.maxntid 64, 1, 1\n{\n  ret;\n}\n");
  std::vector<uint8_t> file;
  Status st = serializeArtifact(a, file);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find(".maxntid"), std::string::npos) << st.message();
  a.modules[0].images[2].bytes =
      bytesOf(".version 7.0\n.target sm_80\n.visible .entry mma_kernel(\n"
              "  .param .u64 p0\n)\n.reqntid 128, 2\n{\n  ret;\n}\n");
  st = serializeArtifact(a, file);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find(".reqntid 128, 2, 1"), std::string::npos)
      << st.message();
  a.modules[0].images[2].bytes =
      bytesOf(".version 7.0\n.target sm_80\n.visible .entry mma_kernel(\n"
              "  .param .u64 p0\n)\n.maxntid 128, 1, 1\n{\n  ret;\n}\n");
  EXPECT_TRUE(serializeArtifact(a, file)) << "block 128 fits .maxntid 128";
}

TEST(Artifact, VersionOneFilesAskToBeRegenerated) {
  std::vector<uint8_t> file;
  ASSERT_TRUE(serializeArtifact(sampleArtifact(), file));
  file[8] = 1; // the header's version; the checksum does not cover it
  Artifact out;
  Status st = parseArtifact(file.data(), file.size(), "old.qcart", out);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("regenerate the artifact"), std::string::npos)
      << st.message();
}

/// The fuzzer's seeds (runtime/fuzz/artifact-corpus): an empty artifact
/// and one small layer with packed tensors, a splitk + mma pair of kernels
/// and PTX entries that carry .maxntid, so that mutations reach the
/// launch-contract checks.
std::vector<std::pair<std::string, std::vector<uint8_t>>> corpusSeeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  Artifact empty;
  empty.producer = "seed";
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(serializeArtifact(empty, bytes));
  seeds.push_back({"empty.qcart", bytes});

  Artifact a;
  a.producer = "seed";
  ArtifactModule m;
  m.name = "gemm_16x64";
  m.kernels = {"splitk_0", "mma_1"};
  m.images.push_back({"ptx", "ptx",
                      bytesOf(".version 8.0\n.target sm_80\n.address_size 64\n"
                              ".visible .entry splitk_0(\n  .param .u64 x\n)\n"
                              ".maxntid 128, 1, 1\n{\n  ret;\n}\n"
                              ".visible .entry mma_1(\n  .param .u64 x\n)\n"
                              ".reqntid 64, 1, 1\n{\n  ret;\n}\n")});
  a.modules.push_back(m);
  ArtifactLayer l;
  l.name = "seed.layer";
  l.N = 16;
  l.K = 64;
  l.bits = 4;
  l.groupSize = 32;
  l.sym = false;
  ArtifactVariant sk;
  sk.family = "splitk";
  sk.minM = 1;
  sk.maxM = 8;
  sk.workspaceBytesPerRow = 16 * 4;
  sk.zeroWorkspace = true;
  ArtifactLaunch L =
      launch("gemm_16x64", "splitk_0",
             {"x", "qweight", "scales", "zeros", "workspace", "M"}, 8);
  sk.launches.push_back(L);
  ArtifactVariant mma;
  mma.family = "mma";
  mma.minM = 9;
  mma.maxM = 64;
  ArtifactLaunch L2 = launch("gemm_16x64", "mma_1",
                             {"x", "qweight", "scales", "zeros", "y", "M"});
  L2.block[0] = 64;
  mma.launches.push_back(L2);
  l.variants = {sk, mma};
  std::vector<uint8_t> codes(16 * 64);
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = uint8_t((i * 7) % 16);
  std::vector<float> scales(2 * 16, 0.01f), zeros(2 * 16, 8.0f);
  MMA16x64Tensors t;
  EXPECT_TRUE(packMMA16x64(4, 16, 64, 32, false, codes.data(), scales.data(),
                           zeros.data(), t));
  EXPECT_TRUE(addLayerTensors(a, l, t));
  a.layers.push_back(l);
  EXPECT_TRUE(serializeArtifact(a, bytes));
  seeds.push_back({"layer_with_tensors.qcart", bytes});
  return seeds;
}

/// The committed seeds are exactly what corpusSeeds() builds (so that a
/// format change cannot leave the fuzzer starting from files the reader
/// refuses at the version check) and each is accepted. With
/// QC_WRITE_ARTIFACT_CORPUS=1 in the environment it (re)writes them first.
TEST(ArtifactFuzzCorpus, SeedsAreValidAndUpToDate) {
  const std::string dir = QC_ARTIFACT_FUZZ_CORPUS;
  bool write = std::getenv("QC_WRITE_ARTIFACT_CORPUS") != nullptr;
  for (const auto &seed : corpusSeeds()) {
    SCOPED_TRACE(seed.first);
    std::string path = dir + "/" + seed.first;
    if (write) {
      std::ofstream o(path, std::ios::binary);
      o.write(reinterpret_cast<const char *>(seed.second.data()),
              static_cast<std::streamsize>(seed.second.size()));
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good()) << "missing seed " << path;
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes, seed.second)
        << "stale seed; rerun with QC_WRITE_ARTIFACT_CORPUS=1";
    Artifact out;
    Status s = readArtifact(path, out);
    EXPECT_TRUE(s.isOk()) << s.message();
  }
}

} // namespace
} // namespace qc
