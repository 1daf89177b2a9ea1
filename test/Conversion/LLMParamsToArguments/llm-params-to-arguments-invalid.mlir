// RUN: quant-opt %s -split-input-file -llm-params-to-arguments -verify-diagnostics

// Tests that a module without the entry function is reported.

// expected-error @+1 {{llm-params-to-arguments: no function named 'forward'}}
module {
  func.func @other() {
    return
  }
}

// -----

// Tests that non-tensor arguments are reported.

// expected-error @+1 {{expected only ranked tensor arguments and results, got 'i32'}}
func.func @forward(%a: i32) {
  return
}

// -----

// Tests that one parameter name used with two types is reported.

func.func @forward(%a: tensor<4xf32>) -> tensor<4xf32> {
  %p = llm.param "w" : tensor<4xf32>
  // expected-error @+1 {{parameter 'w' is used with two types: 'tensor<4xf32>' and 'tensor<8xf32>'}}
  %q = llm.param "w" : tensor<8xf32>
  return %p : tensor<4xf32>
}
