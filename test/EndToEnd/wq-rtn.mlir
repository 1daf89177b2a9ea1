// End-to-end: wq-rtn on the shared stories260K model: import, quantize every
// block, run the result on the CPU path (perplexity, KL divergence to the
// float model). Standalone pass tests: test/Quantization/wq-rtn*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-opt %t.mlir -wq-rtn="bits=4 group-size=32 sym=false weights-out=%t.asym.safetensors exclude=mlp\.down_proj" -o %t.asym.mlir
// RUN: FileCheck %s --input-file=%t.asym.mlir
// RUN: quant-opt %t.mlir -wq-rtn="bits=3 group-size=-1 layout=rows scale-dtype=bf16 weights-out=%t.sym.safetensors" | FileCheck %s --check-prefix=SYM
// RUN: quant-run %t.asym.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 1022 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that wq-rtn rewrites every llm.linear of the bundled model (except
// the excluded down projections) into wq.linear over packed parameters in
// the GPTQ layout with v1 integer zeros, records the overlay file, keeps the
// classifier in full precision, and that the result runs on the CPU path.

// CHECK: llm.weights_overlay = "{{.*}}asym.safetensors"
// CHECK: %[[Q:.*]] = llm.param "model.layers.0.self_attn.q_proj.qweight" : tensor<8x64xi32>
// CHECK: %[[S:.*]] = llm.param "model.layers.0.self_attn.q_proj.scales" : tensor<2x64xf16>
// CHECK: %[[Z:.*]] = llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x8xi32>
// CHECK: wq.linear %{{.*}}, %[[Q]], %[[S]] zeros(%[[Z]]) {bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<gptq>, out_features = 64 : i64, scale_dtype = f16, sym = false, zero_dtype = i32}
// CHECK-NOT: llm.param "model.layers.0.self_attn.q_proj.weight"
// CHECK: llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x172xf32>
// CHECK: llm.linear
// CHECK: llm.logits

// Tests symmetric per-channel 3-bit codes in the rows layout with bf16
// scales (K = 172 is fine there: the last word is partial).
// SYM: llm.param "model.layers.0.mlp.down_proj.qweight" : tensor<64x17xi32>
// SYM: llm.param "model.layers.0.mlp.down_proj.scales" : tensor<1x64xbf16>
// SYM: wq.linear {{.*}}bits = 3 : i64, group_size = -1 : i64{{.*}}layout = #wq.layout<rows>{{.*}}sym = true

// EXEC: perplexity: {{[0-9]+\.[0-9]+}} (nll {{.*}}, 1022 tokens

// Tests that the quantized model differs from the float one by a positive
// KL divergence.
// RUN: quant-run %t.asym.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress --kl-reference %shared/models/stories260K/stories260K.bin | FileCheck %s --check-prefix=KL
// KL: kl divergence to {{.*}}: 0.{{0*[1-9][0-9]*}} nats/token
