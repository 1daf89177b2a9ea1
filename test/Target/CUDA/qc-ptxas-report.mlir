// Tests the ptxas -v report of the generated kernels: every kernel of every
// family compiles for sm_80 and sm_90a with no spills and no stack (local
// memory), and the shared-memory use the tiling promises.

// REQUIRES: ptxas
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=4096x4096 group-size=128 sym=false" | quant-opt --qc-gpu-to-binary="chip=sm_90a format=isa" | quant-opt --qc-ptxas-report | FileCheck %s
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=11008x4096 group-size=32" | quant-opt --qc-gpu-to-binary="chip=sm_80 format=isa" | quant-opt --qc-ptxas-report | FileCheck %s
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=4096x11008 group-size=-1" | quant-opt --qc-gpu-to-binary="chip=sm_90a format=isa" | quant-opt --qc-ptxas-report=print=true -o /dev/null | FileCheck %s --check-prefix=PRINT

module {
}

// CHECK: gpu.binary @wq_{{.*}} {qc.ptxas = {
// CHECK-SAME: dequant_4 = {barriers = 0 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 0 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}
// CHECK-SAME: finalize = {barriers = 0 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 0 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}
// CHECK-SAME: mma_1_m16 = {barriers = 1 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 16384 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}
// CHECK-SAME: mma_2_m32 = {barriers = 1 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 24576 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}
// CHECK-SAME: mma_3_m64 = {barriers = 1 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 30720 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}
// CHECK-SAME: splitk_0 = {barriers = 1 : i64, registers = {{[0-9]+}} : i64, shared_bytes = 2048 : i64, spill_loads = 0 : i64, spill_stores = 0 : i64, stack_bytes = 0 : i64}

// PRINT: // ptxas -v --gpu-name=sm_90a (wq_n4096_k11008_b4_gc_sym)
// PRINT: Compiling entry function 'mma_3_m64' for 'sm_90a'
// PRINT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PRINT: Compiling entry function 'splitk_0' for 'sm_90a'
// PRINT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
