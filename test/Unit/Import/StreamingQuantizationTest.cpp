//===- StreamingQuantizationTest.cpp - Layer-by-layer quantization --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every quantization pass on a Hugging Face checkpoint reads one layer's
// weight (one decoder block, for the block-wise methods) at a time from the
// lazily opened files and spills the packed tensors to disk as it goes.
// These tests run the registered passes that way and with the whole model
// loaded first (setLoadWholeModelForTesting) and check that the overlay is
// the same file byte for byte, from sharded bf16 and single f32
// checkpoints and from the bundled SmolLM2 GGUF; that quant-compile's
// samples-only trace serves the block-wise methods exactly; and that a bad
// tensor met mid-stream fails the pass naming it and writes nothing.
//
//===----------------------------------------------------------------------===//

#include "ImportTestUtil.h"
#include "LayerRewriter.h"

#include "qc/Calibration/Calibrate.h"
#include "qc/Calibration/Trace.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Llama2C.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "LLM/IR/LLMOps.h"

#include "mlir/IR/Diagnostics.h"

#include <fstream>
#include <set>
#include <sstream>

using namespace qc::test;

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K/stories260K.bin";

std::string freshDir(const std::string &name) {
  return qc::test::freshDir("streaming", name);
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs `pass` (its options without weights-out) on a fresh module of
/// `folder`, streamed or with the whole model loaded first, and returns
/// the overlay's bytes.
std::string runPass(const std::string &folder, const std::string &pass,
                    const std::string &out, bool wholeModel) {
  mlir::qc::setLoadWholeModelForTesting(wholeModel);
  Model m;
  open(folder, m);
  std::string pipeline =
      pass.substr(0, pass.size() - 1) + " weights-out=" + out + "}";
  runPasses(m, pipeline);
  mlir::qc::setLoadWholeModelForTesting(false);
  return readBytes(out);
}

/// Runs `pipeline` on `module`, expects it to fail and returns the
/// diagnostics.
std::string failingPipeline(mlir::ModuleOp module,
                            const std::string &pipeline) {
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(&context(), [&](mlir::Diagnostic &d) {
    diagnostics += d.str() + "\n";
    return mlir::success();
  });
  mlir::PassManager pm(&context());
  EXPECT_TRUE(
      mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, llvm::errs())));
  EXPECT_TRUE(mlir::failed(pm.run(module))) << pipeline;
  return diagnostics;
}

} // namespace

TEST(StreamingQuantization, ShardedBF16CheckpointStreamsToTheSameOverlay) {
  std::string dir = freshDir("bf16");
  // Shards of 64 KiB: the layers' tensors are spread over many files.
  std::string folder =
      writeStoriesFolder(dir + "/model", qc::DType::BF16, 64 << 10);
  const std::string rtn = "wq-rtn{bits=4 group-size=32 sym=false}";
  std::string streamed =
      runPass(folder, rtn, dir + "/streamed.safetensors", false);
  std::string whole = runPass(folder, rtn, dir + "/whole.safetensors", true);
  ASSERT_FALSE(whole.empty());
  EXPECT_EQ(streamed, whole);
  // Nothing but the outputs and the model folder is left (the spill file
  // has no name).
  int entries = 0;
  for (const auto &e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 3);
}

TEST(StreamingQuantization, RegisteredPassesStreamToTheWholeModelResult) {
  std::string dir = freshDir("passes");
  std::string folder = writeStoriesFolder(dir + "/model", qc::DType::F32, 0);
  const std::string rtn = "wq-rtn{bits=3 group-size=16 sym=false}";
  std::string whole = runPass(folder, rtn, dir + "/whole.safetensors", true);
  Model m;
  open(folder, m);
  runPasses(m, rtn.substr(0, rtn.size() - 1) + " weights-out=" + dir +
                   "/pass.safetensors}");
  EXPECT_EQ(readBytes(dir + "/pass.safetensors"), whole);

  // Chained passes carry the earlier overlay over: HQQ after RTN on the
  // same folder, restricted to the MLP, keeps RTN's attention tensors.
  runPasses(m, "wq-hqq{bits=4 group-size=32 layout=rows exclude=self_attn "
               "weights-out=" +
                   dir + "/chain.safetensors}");
  std::unique_ptr<qc::SafetensorsFile> chain;
  qc::Status s = qc::SafetensorsFile::open(dir + "/chain.safetensors", chain);
  ASSERT_TRUE(s) << s.message();
  EXPECT_NE(chain->find("model.layers.0.self_attn.q_proj.qweight"), nullptr);
  EXPECT_NE(chain->find("model.layers.0.mlp.up_proj.qweight"), nullptr);
}

// A GGUF model streams too: each layer is dequantized (Q/K rows
// un-permuted) from the mapped file when the pass reaches it.
TEST(StreamingQuantization, GgufModelStreamsToTheWholeModelResult) {
  std::string dir = freshDir("gguf");
  const std::string smol =
      kShared + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  const std::string rtn = "wq-rtn{bits=4 group-size=64 sym=false}";
  std::string streamed =
      runPass(smol, rtn, dir + "/streamed.safetensors", false);
  std::string whole = runPass(smol, rtn, dir + "/whole.safetensors", true);
  ASSERT_FALSE(whole.empty());
  EXPECT_EQ(streamed, whole);
}

TEST(StreamingQuantization,
     ANonFiniteWeightMetMidStreamNamesItAndWritesNothing) {
  std::string dir = freshDir("nan");
  qc::ModelWeights w;
  ASSERT_TRUE(qc::loadLlama2C(kStories, w));
  ASSERT_TRUE(qc::writeHFCheckpoint(dir + "/model", w, qc::DType::F32));
  // Poison the last layer's down_proj in the file itself (the writer
  // refuses NaN), so that the lazy load succeeds and the pass meets it
  // after quantizing every earlier layer.
  std::string path = dir + "/model/model.safetensors";
  std::string bytes = readBytes(path);
  std::unique_ptr<qc::SafetensorsFile> f;
  ASSERT_TRUE(qc::SafetensorsFile::parse(
      reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(), path, f));
  const std::string victim = "model.layers.4.mlp.down_proj.weight";
  const qc::TensorInfo *info = f->find(victim);
  ASSERT_NE(info, nullptr);
  size_t at = 8 + f->headerSize() + info->begin + 4 * 7;
  const uint32_t nanBits = 0x7FC00000u;
  std::memcpy(&bytes[at], &nanBits, 4);
  f.reset();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  Model m;
  qc::LoadOptions lazy;
  lazy.lazy = true;
  qc::Status opened =
      mlir::qc::openModel(context(), dir + "/model", m.module, m.weights, lazy);
  ASSERT_TRUE(opened) << opened.message();
  const std::string out = dir + "/out.safetensors";
  std::string diagnostics = failingPipeline(
      *m.module, "wq-rtn{bits=4 group-size=32 weights-out=" + out + "}");
  EXPECT_NE(diagnostics.find(victim), std::string::npos) << diagnostics;
  EXPECT_NE(diagnostics.find("NaN"), std::string::npos) << diagnostics;
  EXPECT_FALSE(std::filesystem::exists(out));
}

// The block-wise methods read one decoder block at a time from a lazily
// opened checkpoint, and hand each block's layers to the rewriter as they
// are done; sequential GPTQ and AutoRound also work on the block in place.
// The overlay is the whole-model result byte for byte.
TEST(StreamingQuantization, BlockwiseMethodsStreamToTheWholeModelResult) {
  std::string dir = freshDir("blockwise");
  std::string folder =
      writeStoriesFolder(dir + "/model", qc::DType::BF16, 96 << 10);
  std::string trace = writeStoriesTrace(folder, dir + "/trace.safetensors",
                                        /*samplesOnly=*/false);
  for (const std::string &pass :
       {"wq-gptq{bits=4 group-size=32 sym=false act-order=true trace=" + trace +
            "}",
        "wq-awq{bits=4 group-size=32 sym=false trace=" + trace + "}",
        "wq-autoround{bits=3 group-size=32 sym=false iters=4 trace=" + trace +
            "}"}) {
    std::string streamed =
        runPass(folder, pass, dir + "/streamed.safetensors", false);
    std::string whole = runPass(folder, pass, dir + "/whole.safetensors", true);
    ASSERT_FALSE(whole.empty()) << pass;
    EXPECT_EQ(streamed, whole) << pass;
  }
}

// What quant-compile records for the block-wise methods (the sampled
// sequences only, no forward pass) gives them exactly what a full trace
// does; GPTQ without sequential, which needs per-layer statistics, says so.
TEST(StreamingQuantization, SampledSequencesAreAllTheBlockwiseMethodsRead) {
  std::string dir = freshDir("samples");
  std::string folder = writeStoriesFolder(dir + "/model", qc::DType::F32, 0);
  std::string full = writeStoriesTrace(folder, dir + "/full.safetensors",
                                       /*samplesOnly=*/false);
  std::string samples = writeStoriesTrace(folder, dir + "/samples.safetensors",
                                          /*samplesOnly=*/true);
  qc::CalibrationTrace a, b;
  ASSERT_TRUE(qc::readTrace(full, a));
  ASSERT_TRUE(qc::readTrace(samples, b));
  EXPECT_EQ(a.modelFingerprint, b.modelFingerprint);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.sampleTokens, b.sampleTokens);
  EXPECT_EQ(a.blockInput, b.blockInput);
  EXPECT_LT(std::filesystem::file_size(samples),
            std::filesystem::file_size(full));

  std::string gptq = "wq-gptq{bits=4 group-size=32 sym=false trace=";
  EXPECT_EQ(
      runPass(folder, gptq + full + "}", dir + "/a.safetensors", false),
      runPass(folder, gptq + samples + "}", dir + "/b.safetensors", false));

  Model m;
  open(folder, m);
  std::string diagnostics =
      failingPipeline(*m.module, "wq-gptq{sequential=false trace=" + samples +
                                     " weights-out=" + dir + "/c.safetensors}");
  EXPECT_NE(diagnostics.find("sampled sequences only"), std::string::npos)
      << diagnostics;
}

// A quantized model opened lazily and then given materializeModuleParams
// (what quant-run does) holds in memory only what its IR computes with:
// the packed layers from its overlay and the float tensors still named by
// llm.param (embeddings, norms, the head), not the quantized layers' fp32
// weights from the original checkpoint, which stay unread.
TEST(StreamingQuantization, RunningAQuantizedModelReadsOnlyItsParameters) {
  std::string dir = freshDir("params");
  std::string folder =
      writeStoriesFolder(dir + "/hf", qc::DType::F32, /*shardBytes=*/0);
  Model m;
  open(folder, m);
  runPasses(m, "wq-rtn{bits=4 group-size=32 weights-out=" + dir +
                   "/w.safetensors}");
  std::string irPath = dir + "/model.mlir";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(irPath, ec);
    ASSERT_FALSE(ec) << ec.message();
    m.module->print(os);
  }
  Model run;
  qc::LoadOptions lazy;
  lazy.lazy = true;
  qc::Status s =
      mlir::qc::openModel(context(), irPath, run.module, run.weights, lazy);
  ASSERT_TRUE(s) << s.message();
  s = mlir::qc::materializeModuleParams(*run.module, run.weights);
  ASSERT_TRUE(s) << s.message();
  std::set<std::string> params;
  run.module->walk(
      [&](mlir::qc::llm::ParamOp p) { params.insert(p.getName().str()); });
  int floatParams = 0, unread = 0;
  for (const auto &[name, t] : run.weights.tensors) {
    if (params.count(name)) {
      EXPECT_TRUE(t.resident()) << name;
      // The values an eager load gives.
      EXPECT_EQ(t.data, m.weights.find(name)->data) << name;
      ++floatParams;
    } else {
      EXPECT_FALSE(t.resident()) << name;
      ++unread;
    }
  }
  EXPECT_GT(floatParams, 0);
  // Every linear of the 5 blocks was quantized: 7 fp32 weights each unread.
  EXPECT_EQ(unread, 35);
  EXPECT_TRUE(
      run.weights.packed.count("model.layers.0.self_attn.q_proj.qweight"));
  std::filesystem::remove_all(dir);
}
