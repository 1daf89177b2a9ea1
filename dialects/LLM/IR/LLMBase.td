//===- LLMBase.td - The model-level `llm` dialect ----------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// `llm` describes a LLaMA-family decoder at the level its importers see it:
// embeddings, norms, linears, rotary embeddings, attention. The structure is
// kept explicit (which norm feeds which linear) because AWQ folds scales into
// norms and the GPU lowering fuses around linears.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LLM_BASE_TD
#define QC_LLM_BASE_TD

include "mlir/IR/OpBase.td"

def LLM_Dialect : Dialect {
  let name = "llm";
  let summary = "Model-level operations of LLaMA-family decoders";
  let description = [{
    Value-semantic (tensor) operations that describe one forward pass of a
    decoder over a sequence of tokens. Activations are `[T, features]`
    tensors, weights use the Hugging Face `[out, in]` layout, and parameters
    are referenced by name through `llm.param`, so the IR never has to hold
    the weights themselves.
  }];
  let cppNamespace = "::mlir::qc::llm";
  let useDefaultAttributePrinterParser = 1;
}

class LLM_Op<string mnemonic, list<Trait> traits = []>
    : Op<LLM_Dialect, mnemonic, traits>;

#endif // QC_LLM_BASE_TD
