//===- LLMAttrs.td - Attributes of the `llm` dialect -------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LLM_ATTRS_TD
#define QC_LLM_ATTRS_TD

include "LLM/IR/LLMBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/AttrTypeBase.td"

def LLM_RopeLayoutInterleaved : I32EnumAttrCase<"interleaved", 0>;
def LLM_RopeLayoutHalf : I32EnumAttrCase<"half", 1>;

// llama2.c rotates pairs (2i, 2i+1); Hugging Face's rotate_half rotates
// (i, i + head_dim/2). Both appear in real checkpoints, so the op carries
// which one its weights were trained with.
def LLM_RopeLayout : I32EnumAttr<"RopeLayout",
    "which feature pairs rotary embeddings rotate",
    [LLM_RopeLayoutInterleaved, LLM_RopeLayoutHalf]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::qc::llm";
}

def LLM_RopeLayoutAttr : EnumAttr<LLM_Dialect, LLM_RopeLayout, "rope_layout"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // QC_LLM_ATTRS_TD
