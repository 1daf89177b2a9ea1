// RUN: quant-opt %s -llm-observe-linear-inputs -verify-diagnostics

// Tests that a module without `forward` is reported.
// expected-error @+1 {{llm-observe-linear-inputs: no function 'forward'}}
module {
  func.func @other() {
    return
  }
}
