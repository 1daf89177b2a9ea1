// Tests that the generated kernels lower to PTX for sm_80 and sm_90a with the
// intended instructions: mma.sync m16n8k16, ldmatrix.x4, cp.async (16 bytes,
// L1 bypass), 128-bit read-only weight loads, packed fp16 dequantization
// (OR with 0x64006400 = 1677747200; ptxas fuses the shift/AND/OR into LOP3).
// PTX needs only LLVM's NVPTX backend, so this runs without a CUDA toolkit.

// RUN: quant-opt %s --convert-wq-to-gpu="shapes=256x1024 group-size=128 tiles=splitk:warps=4,split-k=4,stages=2,m=1-8;mma:tile-m=16,warps=4,stages=3,m=9-128" | quant-opt --qc-gpu-to-binary="chip=sm_90a format=isa" | quant-opt --qc-ptxas-report="run-ptxas=false print-ptx=true" -o /dev/null | FileCheck %s --check-prefixes=PTX,SM90
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=256x1024 group-size=32 sym=false tiles=splitk:warps=4,split-k=4,stages=2,m=1-8;mma:tile-m=16,warps=4,stages=3,m=9-128" | quant-opt --qc-gpu-to-binary="chip=sm_80 format=isa" | quant-opt --qc-ptxas-report="run-ptxas=false print-ptx=true" -o /dev/null | FileCheck %s --check-prefixes=PTX,SM80

module {
}

// SM90: // PTX of wq_n256_k1024_b4_g128_sym for sm_90a
// SM90: .version 8.0
// SM90: .target sm_90a
// SM80: // PTX of wq_n256_k1024_b4_g32_asym for sm_80
// SM80: .version 7.0
// SM80: .target sm_80

// PTX-LABEL: .entry splitk_0(
// PTX: .maxntid 128, 1, 1
// PTX: ld.global.nc.v4.u32
// PTX: or.b32 {{.*}}, 1677747200;
// PTX: {{(add|sub).rn.f16x2}}
// PTX: mul.rn.f16x2
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX: bar.sync
// PTX: {{(atom|red).global.add.f32}}

// PTX-LABEL: .entry mma_1_m16(
// PTX: .maxntid 128, 1, 1
// PTX: cp.async.cg.shared.global [{{.*}}], [{{.*}}], 16, {{.*}};
// PTX: cp.async.commit_group;
// PTX: cp.async.wait_group 1;
// PTX: bar.sync
// PTX: ld.shared.v4.{{[bu]}}32
// PTX: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX: cp.async.wait_group 0;
// PTX: st.global.b16
