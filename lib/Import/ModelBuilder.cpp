//===- ModelBuilder.cpp - Build `llm` IR for a LLaMA-family model ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Both importers (llama2.c and Hugging Face) first produce a ModelConfig and
// Hugging Face-named tensors; this file turns the configuration into the
// model-level IR. Keeping one builder means the two import paths cannot
// drift apart: they differ only in the RoPE layout attribute.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/ModelBuilder.h"

#include "LLM/IR/LLMOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cassert>
#include <cmath>

using namespace mlir;
using namespace mlir::qc;

namespace {

/// Emits the ops of one model; a small stateful helper so that each op gets
/// the right layer location without threading it through every call.
class Emitter {
public:
  Emitter(OpBuilder &b, const ::qc::ModelConfig &cfg) : b(b), cfg(cfg) {
    f32 = b.getF32Type();
    // validateModelConfig (run by every loader) already computed these once;
    // a failure here would mean an unvalidated config reached the builder.
    ::qc::Status s = ::qc::computeRopeParameters(cfg, ropeParams);
    assert(s.isOk() && "model config was not validated");
    (void)s;
  }

  /// A rank-2 activation type [?, n].
  RankedTensorType act(int64_t n) {
    return RankedTensorType::get({ShapedType::kDynamic, n}, f32);
  }

  Location at(const std::string &name) {
    return NameLoc::get(b.getStringAttr(name));
  }

  Value param(const std::string &name, ArrayRef<int64_t> shape) {
    return llm::ParamOp::create(b, at(name), RankedTensorType::get(shape, f32),
                                b.getStringAttr(name));
  }

  Value linear(const std::string &layer, Value x, int64_t out, int64_t in,
               bool bias) {
    Value w = param(layer + ".weight", {out, in});
    Value bv = bias ? param(layer + ".bias", {out}) : Value();
    return llm::LinearOp::create(b, at(layer), act(out), x, w, bv);
  }

  Value rmsNorm(const std::string &name, Value x) {
    Value w = param(name + ".weight", {cfg.dim});
    return llm::RMSNormOp::create(b, at(name), act(cfg.dim), x, w,
                                  b.getF32FloatAttr(cfg.normEps));
  }

  Value rope(const std::string &layer, Value x, int64_t heads) {
    auto layout = cfg.ropeLayout == ::qc::RopeLayout::Interleaved
                      ? llm::RopeLayout::interleaved
                      : llm::RopeLayout::half;
    // The default rotary embedding is computed by the op from theta; any
    // other (scaled, partial) carries its resolved frequencies.
    IntegerAttr rotaryDim;
    DenseF32ArrayAttr invFreq;
    FloatAttr attentionScaling;
    if (!ropeParams.isDefault) {
      if (ropeParams.rotaryDim != cfg.headDim)
        rotaryDim = b.getI64IntegerAttr(ropeParams.rotaryDim);
      invFreq = b.getDenseF32ArrayAttr(ropeParams.invFreq);
      if (ropeParams.attentionScaling != 1.0f)
        attentionScaling = b.getF32FloatAttr(ropeParams.attentionScaling);
    }
    return llm::RopeOp::create(b, at(layer), x.getType(), x, /*offset=*/Value(),
                               b.getI64IntegerAttr(heads),
                               b.getI64IntegerAttr(cfg.headDim),
                               b.getF32FloatAttr(cfg.ropeTheta),
                               llm::RopeLayoutAttr::get(b.getContext(), layout),
                               rotaryDim, invFreq, attentionScaling);
  }

  /// One decoder block: pre-norm attention and SwiGLU MLP with residuals.
  Value block(int64_t l, Value x) {
    std::string p = "model.layers." + std::to_string(l);
    int64_t qDim = cfg.nHeads * cfg.headDim, kvDim = cfg.nKVHeads * cfg.headDim;
    Value h = rmsNorm(p + ".input_layernorm", x);
    Value q =
        linear(p + ".self_attn.q_proj", h, qDim, cfg.dim, cfg.attentionBias);
    Value k =
        linear(p + ".self_attn.k_proj", h, kvDim, cfg.dim, cfg.attentionBias);
    Value v =
        linear(p + ".self_attn.v_proj", h, kvDim, cfg.dim, cfg.attentionBias);
    q = rope(p + ".self_attn.rope_q", q, cfg.nHeads);
    k = rope(p + ".self_attn.rope_k", k, cfg.nKVHeads);
    float scale = 1.0f / std::sqrt(static_cast<float>(cfg.headDim));
    Value o = llm::AttentionOp::create(
        b, at(p + ".self_attn"), act(qDim), q, k, v,
        b.getI64IntegerAttr(cfg.nHeads), b.getI64IntegerAttr(cfg.nKVHeads),
        b.getI64IntegerAttr(cfg.headDim), b.getF32FloatAttr(scale),
        b.getBoolAttr(true));
    o = linear(p + ".self_attn.o_proj", o, cfg.dim, qDim, false);
    x = llm::AddOp::create(b, at(p + ".residual_attn"), x.getType(), x, o);
    Value h2 = rmsNorm(p + ".post_attention_layernorm", x);
    Value g = linear(p + ".mlp.gate_proj", h2, cfg.hiddenDim, cfg.dim, false);
    Value u = linear(p + ".mlp.up_proj", h2, cfg.hiddenDim, cfg.dim, false);
    Value a = llm::SiluMulOp::create(b, at(p + ".mlp.act"), g.getType(), g, u);
    Value d = linear(p + ".mlp.down_proj", a, cfg.dim, cfg.hiddenDim, false);
    return llm::AddOp::create(b, at(p + ".residual_mlp"), x.getType(), x, d);
  }

private:
  OpBuilder &b;
  const ::qc::ModelConfig &cfg;
  ::qc::RopeParameters ropeParams;
  Type f32;
};

} // namespace

OwningOpRef<ModuleOp>
mlir::qc::buildModelModule(MLIRContext &ctx, const ::qc::ModelConfig &cfg,
                           const CheckpointRef &ckpt,
                           const ModelBuildOptions &options) {
  ctx.loadDialect<llm::LLMDialect, func::FuncDialect>();
  OpBuilder b(&ctx);
  Location loc = NameLoc::get(b.getStringAttr("model"));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  module->getOperation()->setAttr("llm.checkpoint", b.getStringAttr(ckpt.path));
  module->getOperation()->setAttr("llm.checkpoint_format",
                                  b.getStringAttr(ckpt.format));
  SmallVector<NamedAttribute> conf = {
      b.getNamedAttr("model_type", b.getStringAttr(cfg.modelType)),
      b.getNamedAttr("dim", b.getI64IntegerAttr(cfg.dim)),
      b.getNamedAttr("hidden_dim", b.getI64IntegerAttr(cfg.hiddenDim)),
      b.getNamedAttr("n_layers", b.getI64IntegerAttr(cfg.nLayers)),
      b.getNamedAttr("n_heads", b.getI64IntegerAttr(cfg.nHeads)),
      b.getNamedAttr("n_kv_heads", b.getI64IntegerAttr(cfg.nKVHeads)),
      b.getNamedAttr("head_dim", b.getI64IntegerAttr(cfg.headDim)),
      b.getNamedAttr("vocab_size", b.getI64IntegerAttr(cfg.vocabSize)),
      b.getNamedAttr("max_seq_len", b.getI64IntegerAttr(cfg.maxSeqLen)),
      b.getNamedAttr("tied_embeddings", b.getBoolAttr(cfg.tiedEmbeddings)),
  };
  module->getOperation()->setAttr("llm.config", b.getDictionaryAttr(conf));

  Emitter e(b, cfg);
  auto tokensType =
      RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  SmallVector<Type> resultTypes = {e.act(cfg.vocabSize)};
  if (options.hiddenStates)
    resultTypes.append(static_cast<size_t>(cfg.nLayers + 1), e.act(cfg.dim));
  auto fnType = b.getFunctionType({tokensType}, resultTypes);
  b.setInsertionPointToEnd(module->getBody());
  auto fn = func::FuncOp::create(b, loc, "forward", fnType);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);

  Value table = e.param("model.embed_tokens.weight", {cfg.vocabSize, cfg.dim});
  Value x =
      llm::EmbeddingOp::create(b, e.at("model.embed_tokens"), e.act(cfg.dim),
                               table, entry->getArgument(0));
  SmallVector<Value> hidden;
  for (int64_t l = 0; l < cfg.nLayers; ++l) {
    x = e.block(l, x);
    hidden.push_back(x);
  }
  x = e.rmsNorm("model.norm", x);
  hidden.push_back(x);
  Value head = cfg.tiedEmbeddings
                   ? table
                   : e.param("lm_head.weight", {cfg.vocabSize, cfg.dim});
  Value logits =
      llm::LogitsOp::create(b, e.at("lm_head"), e.act(cfg.vocabSize), x, head);
  SmallVector<Value> results = {logits};
  if (options.hiddenStates)
    results.append(hidden.begin(), hidden.end());
  func::ReturnOp::create(b, loc, results);
  return module;
}

bool mlir::qc::getCheckpointRef(ModuleOp module, CheckpointRef &out) {
  auto path = module->getAttrOfType<StringAttr>("llm.checkpoint");
  auto format = module->getAttrOfType<StringAttr>("llm.checkpoint_format");
  if (!path || !format)
    return false;
  out.path = path.str();
  out.format = format.str();
  return true;
}
