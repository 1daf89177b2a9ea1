// Tests that the kernels assemble into cubins (ELF) for sm_80 and sm_90a
// through gpu-module-to-binary and the configured CUDA toolkit.

// REQUIRES: ptxas
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=128x512 group-size=64 sym=false" | quant-opt --qc-gpu-to-binary="chip=sm_80" | FileCheck %s --check-prefix=SM80
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=128x512 group-size=64" | quant-opt --qc-gpu-to-binary="chip=sm_90a format=bin" | FileCheck %s --check-prefix=SM90
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=128x512" | quant-opt --qc-gpu-to-binary="chip=sm_90a" | quant-opt --qc-ptxas-report 2>&1 | FileCheck %s --check-prefix=WARN

module {
}

// SM80: gpu.binary @wq_n128_k512_b4_g64_asym [#gpu.object<#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">, {{.*}}bin = "\7FELF
// SM90: gpu.binary @wq_n128_k512_b4_g64_sym [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">, {{.*}}bin = "\7FELF
// WARN: warning: qc-ptxas-report needs PTX objects (qc-gpu-to-binary format=isa); skipped
