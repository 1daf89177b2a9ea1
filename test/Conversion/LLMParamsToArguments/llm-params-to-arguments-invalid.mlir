// RUN: quant-opt %s -split-input-file -llm-params-to-arguments -verify-diagnostics

// Tests that a module without the entry function is reported.

// expected-error @+1 {{llm-params-to-arguments: no function named 'forward'}}
module {
  func.func @other() {
    return
  }
}

// -----

// Tests that arguments other than tensors, indices and integers are
// reported.

// expected-error @+1 {{expected only ranked tensor, index and integer arguments, got 'f32'}}
func.func @forward(%a: f32) {
  return
}

// -----

// Tests that non-tensor results are reported.

// expected-error @+1 {{expected only ranked tensor results, got 'index'}}
func.func @forward(%a: index) -> index {
  return %a : index
}

// -----

// Tests that llm.tied_result must name a result of the argument's type.

// expected-error @+1 {{argument 0: llm.tied_result 1 must name a distinct result of the argument's type}}
func.func @forward(%c: tensor<4xf32> {llm.tied_result = 1 : i64}) -> tensor<4xf32> {
  return %c : tensor<4xf32>
}

// -----

// Tests that two arguments cannot be tied to one result.

// expected-error @+1 {{argument 1: llm.tied_result 0 must name a distinct result of the argument's type}}
func.func @forward(%a: tensor<4xf32> {llm.tied_result = 0 : i64}, %b: tensor<4xf32> {llm.tied_result = 0 : i64}) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}

// -----

// Tests that one parameter name used with two types is reported.

func.func @forward(%a: tensor<4xf32>) -> tensor<4xf32> {
  %p = llm.param "w" : tensor<4xf32>
  // expected-error @+1 {{parameter 'w' is used with two types: 'tensor<4xf32>' and 'tensor<8xf32>'}}
  %q = llm.param "w" : tensor<8xf32>
  return %p : tensor<4xf32>
}
