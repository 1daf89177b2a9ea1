//===- Passes.td - CUDA target passes of qc ----------------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TARGET_CUDA_PASSES_TD
#define QC_TARGET_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

def PtxasReportPass : Pass<"qc-ptxas-report", "ModuleOp"> {
  let summary = "Run ptxas -v on every PTX gpu.binary and record its report";
  let description = [{
    For every `gpu.binary` object in PTX form (qc-gpu-to-binary with
    format=isa), runs `ptxas -v` for the object's chip and attaches to the
    binary a `qc.ptxas` dictionary: one entry per kernel with `registers`,
    `spill_stores`, `spill_loads`, `stack_bytes`, `shared_bytes` and
    `barriers`. With `print`, ptxas's own report is also written to stdout.
    This is how to see a generated kernel's register and shared-memory use
    and check that it does not spill.

    Precondition: PTX objects (cubin objects are skipped with a warning,
    since ptxas needs the PTX). Fails with ptxas's message when ptxas is
    missing or rejects the PTX.

    ```mlir
    gpu.binary @m [#gpu.object<#nvvm.target<chip = "sm_90a", ...>, assembly = "...">]
    // becomes
    gpu.binary @m attributes {qc.ptxas = {splitk_0 = {registers = 40 : i64,
        spill_loads = 0 : i64, spill_stores = 0 : i64, ...}}} [...]
    ```
  }];
  let options = [
    Option<"ptxas", "ptxas", "std::string", "\"\"",
           "Path of ptxas (default: the one found at configure time)">,
    Option<"print", "print", "bool", "false",
           "Also print ptxas's report to stdout (default: false)">,
    Option<"printPtx", "print-ptx", "bool", "false",
           "Print the PTX of every object to stdout (before the report) (default: false)">,
    Option<"runPtxas", "run-ptxas", "bool", "true",
           "Run ptxas (false: only print-ptx, no toolkit needed) (default: true)">,
  ];
}

#endif // QC_TARGET_CUDA_PASSES_TD
