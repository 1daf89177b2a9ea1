//===- WQBase.td - The weight-quantized `wq` dialect -------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// `wq` holds the weight-only quantized counterparts of `llm.linear`: packed
// integer codes plus per-group scales (and zero points or a codebook), with
// the packing layout as an explicit attribute. The quantization passes
// produce these ops; the CPU and GPU lowerings and the GPTQ exporter
// consume them. It is not named `quant`: upstream MLIR owns that dialect.
//
//===----------------------------------------------------------------------===//

#ifndef QC_WQ_BASE_TD
#define QC_WQ_BASE_TD

include "mlir/IR/OpBase.td"

def WQ_Dialect : Dialect {
  let name = "wq";
  let summary = "Weight-only quantized linear operations";
  let description = [{
    Value-semantic (tensor) operations on weights stored as packed integer
    codes with group-wise scales. Activations stay in floating point; the
    weights are dequantized (in registers on the GPU, in the loop body on
    the CPU) as they are consumed. Every op carries the full quantization
    scheme (bits, group size, symmetry, scale/zero dtypes, codebook) and the
    packing layout, and its verifier checks the shapes of all packed
    tensors against them, so a pass or importer that produces inconsistent
    tensors is caught where it happens.
  }];
  let cppNamespace = "::mlir::qc::wq";
  let useDefaultAttributePrinterParser = 1;
}

class WQ_Op<string mnemonic, list<Trait> traits = []>
    : Op<WQ_Dialect, mnemonic, traits>;

#endif // QC_WQ_BASE_TD
