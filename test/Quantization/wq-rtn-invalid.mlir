// Tests that wq-rtn reports bad options and inputs with a diagnostic and a
// non-zero exit, and leaves no half-written output.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-rtn="bits=4" 2>&1 | FileCheck %s --check-prefix=NOOUT
// NOOUT: error: wq-rtn: the weights-out option is required

// layout and scale-dtype are enum options: the option parser refuses a value
// it does not list, naming the valid ones (test/Tools/quant-opt-enum-options.test
// has more).
// RUN: not quant-opt %t.mlir -wq-rtn="layout=marlin weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=LAYOUT
// LAYOUT: for the --layout option: 'marlin' is not a valid value (expected auto, gptq or rows)
// RUN: not test -e %t.st

// RUN: not quant-opt %t.mlir -wq-rtn="scale-dtype=f8 weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=SCALE
// SCALE: for the --scale-dtype option: 'f8' is not a valid value (expected f16, bf16 or f32)

// RUN: not quant-opt %t.mlir -wq-rtn="bits=5 weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=BITS
// BITS: error: wq-rtn: option bits = 5 is out of range (valid: 2, 3, 4 or 8)

// RUN: not quant-opt %t.mlir -wq-rtn="exclude=( weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=REGEX
// REGEX: error: wq-rtn: invalid exclude regex '('

// The overlay may not replace a file of the checkpoint it is computed from
// (device and inode compared): the HF folder's own model.safetensors here.
// RUN: rm -rf %t.hf && quant-import %shared/models/stories260K/stories260K.bin --export-hf %t.hf --dtype f32
// RUN: cp %t.hf/model.safetensors %t.orig.safetensors
// RUN: quant-import %t.hf -o %t.hf.mlir
// RUN: not quant-opt %t.hf.mlir -wq-rtn="bits=4 weights-out=%t.hf/./model.safetensors" 2>&1 | FileCheck %s --check-prefix=SAMEFILE
// SAMEFILE: error: wq-rtn: weights-out {{.*}}model.safetensors is the input {{.*}}model.safetensors: writing it would destroy the input; choose another output (nothing was written)
// RUN: cmp %t.hf/model.safetensors %t.orig.safetensors

// GPTQ's 3-bit packing cannot represent the N = 172 gate projections: an
// explicit layout=gptq is refused from the shapes, before any layer is
// quantized, naming the layer and the way out.
// RUN: not quant-opt %t.mlir -wq-rtn="bits=3 layout=gptq weights-out=%t.3bit.st" 2>&1 | FileCheck %s --check-prefix=GPTQ3
// GPTQ3: error: wq-rtn: layer 'model.layers.0.mlp.gate_proj' [172x64]: 3-bit zero points in the gptq layout need N % 32 == 0, got N = 172; use layout=rows (or layout=auto, which picks rows when the gptq layout cannot hold a layer)
// RUN: not test -e %t.3bit.st
// The same for a scale dtype the gptq layout cannot store.
// RUN: not quant-opt %t.mlir -wq-rtn="layout=gptq scale-dtype=bf16 weights-out=%t.bf16.st" 2>&1 | FileCheck %s --check-prefix=GPTQBF16
// GPTQBF16: error: wq-rtn: layer 'model.layers.0.self_attn.q_proj' [64x64]: the gptq layout stores fp16 scales (scale-dtype is not f16); use layout=rows
// RUN: not test -e %t.bf16.st

// The default layout (auto) picks the rows layout for such a model and says
// why in a remark.
// RUN: quant-opt %t.mlir -wq-rtn="bits=3 weights-out=%t.auto.st" -o %t.auto.mlir 2>&1 | FileCheck %s --check-prefix=AUTO
// AUTO: remark: wq-rtn: layout=auto chose the rows layout for every layer because layer 'model.layers.0.mlp.gate_proj' [172x64]: 3-bit zero points in the gptq layout need N % 32 == 0
// RUN: FileCheck %s --check-prefix=AUTOIR --input-file=%t.auto.mlir
// AUTOIR: wq.linear {{.*}}bits = 3 : i64{{.*}}layout = #wq.layout<rows>
// AUTOIR-NOT: #wq.layout<gptq>
// A model the gptq layout holds keeps it under auto, without a remark.
// RUN: quant-opt %t.mlir -wq-rtn="bits=4 weights-out=%t.auto4.st" -o %t.auto4.mlir 2>&1 | FileCheck %s --check-prefix=AUTO4 --allow-empty
// AUTO4-NOT: remark
// RUN: FileCheck %s --check-prefix=AUTO4IR --input-file=%t.auto4.mlir
// AUTO4IR: wq.linear {{.*}}layout = #wq.layout<gptq>
// AUTO4IR-NOT: #wq.layout<rows>

// A module that does not name its checkpoint.
// RUN: echo 'module { func.func @forward(%%a: tensor<?xi32>) { return } }' > %t.bare.mlir
// RUN: not quant-opt %t.bare.mlir -wq-rtn="weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOCKPT
// NOCKPT: error: wq-rtn: the module has no llm.checkpoint / llm.checkpoint_format attributes naming its weights
