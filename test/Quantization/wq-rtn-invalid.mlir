// Tests that wq-rtn reports bad options and inputs with a diagnostic on the
// offending op (or on the module, for what concerns the whole run), and
// leaves no half-written output. Each case is a small hand-written module
// (split-file parts below, run with their own options) over a tiny
// generated checkpoint (test/Inputs/tiny-llama2c.sh: dim 64, hidden 80).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin

// Options.
// RUN: cd %t && quant-opt no-weights-out.mlir -verify-diagnostics -wq-rtn="bits=4"
// RUN: cd %t && quant-opt bits.mlir -verify-diagnostics -wq-rtn="bits=5 weights-out=w.st"
// RUN: cd %t && quant-opt regex.mlir -verify-diagnostics -wq-rtn="exclude=( weights-out=w.st"
// RUN: cd %t && quant-opt overrides.mlir -verify-diagnostics -wq-rtn="overrides=q_proj:bits=5 weights-out=w.st"
// RUN: cd %t && quant-opt overrides-form.mlir -verify-diagnostics -wq-rtn="overrides=q_proj weights-out=w.st"
// layout and scale-dtype are enum options: the option parser refuses a value
// it does not list, naming the valid ones (test/Tools/quant-opt-enum-options.test
// has more).
// RUN: cd %t && not quant-opt no-weights-out.mlir -wq-rtn="layout=marlin weights-out=w.st" 2>&1 | FileCheck %s --check-prefix=LAYOUT
// LAYOUT: for the --layout option: 'marlin' is not a valid value (expected auto, gptq or rows)
// RUN: cd %t && not quant-opt no-weights-out.mlir -wq-rtn="scale-dtype=f8 weights-out=w.st" 2>&1 | FileCheck %s --check-prefix=SCALE
// SCALE: for the --scale-dtype option: 'f8' is not a valid value (expected f16, bf16 or f32)
// RUN: not test -e %t/w.st

// The module and its checkpoint.
// RUN: cd %t && quant-opt checkpoint.mlir -split-input-file -verify-diagnostics -wq-rtn="weights-out=w.st"
// RUN: not test -e %t/w.st

// The layout must hold every layer: an explicit layout=gptq is refused from
// the shapes, on the first layer that does not fit, before any layer is
// quantized, naming the way out.
// RUN: cd %t && quant-opt gptq-3bit.mlir -verify-diagnostics -wq-rtn="bits=3 layout=gptq weights-out=w.st"
// RUN: cd %t && quant-opt gptq-bf16.mlir -verify-diagnostics -wq-rtn="layout=gptq scale-dtype=bf16 weights-out=w.st"
// RUN: not test -e %t/w.st

// A journal (journal=DIR) belongs to one run: the same pass with other
// options is refused naming the first difference, and a damaged journal
// names its file; neither writes an overlay.
// RUN: cd %t && quant-opt journal.mlir -wq-rtn="bits=4 weights-out=j1.st journal=jr" -o /dev/null
// RUN: cd %t && quant-opt journal-other.mlir -verify-diagnostics -wq-rtn="bits=8 weights-out=j2.st journal=jr"
// RUN: cd %t && echo '{' > jr/journal.json && quant-opt journal-broken.mlir -verify-diagnostics -wq-rtn="bits=4 weights-out=j2.st journal=jr"
// RUN: not test -e %t/j2.st

// The overlay may not replace a file of the checkpoint it is computed from
// (device and inode compared, whatever the spelling): the llama2.c file
// itself, or the model.safetensors of a Hugging Face folder.
// RUN: cd %t && cp tiny.bin tiny.orig && quant-opt same-file.mlir -verify-diagnostics -wq-rtn="weights-out=./tiny.bin" && cmp tiny.bin tiny.orig
// RUN: cd %t && quant-import tiny.bin --export-hf hf --dtype f32 && cp hf/model.safetensors hf.orig
// RUN: cd %t && quant-opt same-file-hf.mlir -verify-diagnostics -wq-rtn="bits=4 weights-out=hf/./model.safetensors" && cmp hf/model.safetensors hf.orig

//--- no-weights-out.mlir
// expected-error @+1 {{wq-rtn: the weights-out option is required (the safetensors file that receives the packed tensors)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- bits.mlir
// expected-error @+1 {{wq-rtn: option bits = 5 is out of range (valid: 2, 3, 4 or 8)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- regex.mlir
// expected-error @+1 {{wq-rtn: invalid exclude regex '('}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- overrides.mlir
// expected-error @+1 {{wq-rtn: override 'q_proj:bits=5': bits must be 2, 3, 4 or 8}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- overrides-form.mlir
// expected-error @+1 {{wq-rtn: override 'q_proj': missing the layer regex or the settings}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- checkpoint.mlir
// A module that does not name its checkpoint.
// expected-error @+1 {{wq-rtn: the module has no llm.checkpoint / llm.checkpoint_format attributes naming its weights}}
module {
  func.func @forward(%x: tensor<?x64xf32>, %w: tensor<64x64xf32>) -> tensor<?x64xf32> {
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

// -----

// A checkpoint that is not there.
// expected-error @+1 {{wq-rtn: missing.bin: cannot open llama2.c checkpoint}}
module attributes {llm.checkpoint = "missing.bin", llm.checkpoint_format = "llama2c"} {
}

// -----

// expected-error @+1 {{wq-rtn: tiny.bin: unknown checkpoint format 'onnx' (expected 'llama2c', 'gguf' or 'hf')}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "onnx"} {
}

// -----

// A parameter the checkpoint does not hold, and one that is not a matrix.
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.7.self_attn.q_proj.weight" : tensor<64x64xf32>
    // expected-error @+1 {{wq-rtn: weight 'model.layers.7.self_attn.q_proj.weight' is not an fp32 matrix in the checkpoint}}
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

// -----

module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x1xf32> {
    %w = llm.param "model.norm.weight" : tensor<1x64xf32>
    // expected-error @+1 {{wq-rtn: weight 'model.norm.weight' is not an fp32 matrix in the checkpoint}}
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<1x64xf32>) -> tensor<?x1xf32>
    return %y : tensor<?x1xf32>
  }
}

//--- gptq-3bit.mlir
// 3-bit zero points in the gptq layout need N % 32 == 0: the q projection
// fits, the gate projection (N = 80) does not.
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x80xf32>) {
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.0.mlp.gate_proj.weight" : tensor<80x64xf32>
    // expected-error @+1 {{wq-rtn: layer 'model.layers.0.mlp.gate_proj' [80x64]: 3-bit zero points in the gptq layout need N % 32 == 0, got N = 80; use layout=rows (or layout=auto, which picks rows when the gptq layout cannot hold a layer)}}
    %g = llm.linear %x, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    return %q, %g : tensor<?x64xf32>, tensor<?x80xf32>
  }
}

//--- gptq-bf16.mlir
// The gptq layout stores fp16 scales: the first layer is named.
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x80xf32> {
    %wg = llm.param "model.layers.1.mlp.up_proj.weight" : tensor<80x64xf32>
    // expected-error @+1 {{wq-rtn: layer 'model.layers.1.mlp.up_proj' [80x64]: the gptq layout stores fp16 scales (scale-dtype is not f16); use layout=rows}}
    %g = llm.linear %x, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    return %g : tensor<?x80xf32>
  }
}

//--- same-file.mlir
// expected-error @+1 {{wq-rtn: weights-out ./tiny.bin is the input tiny.bin: writing it would destroy the input; choose another output (nothing was written)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- same-file-hf.mlir
// expected-error-re @+1 {{wq-rtn: weights-out hf/./model.safetensors is the input {{.*}}model.safetensors: writing it would destroy the input; choose another output (nothing was written)}}
module attributes {llm.checkpoint = "hf", llm.checkpoint_format = "hf"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- journal.mlir
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- journal-other.mlir
// expected-error-re @+1 {{wq-rtn: jr holds the journal of a different run: 'pass: wq-rtn{bits=8 {{.*}}' (this run) vs 'pass: wq-rtn{bits=4 {{.*}}' (journal); remove it (or run without resuming) to start over}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- journal-broken.mlir
// expected-error-re @+1 {{wq-rtn: jr{{[/\\]}}journal.json: not JSON: {{.*}} (remove jr to start over)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
