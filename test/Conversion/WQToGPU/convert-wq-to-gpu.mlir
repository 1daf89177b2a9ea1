// Tests the kernels convert-wq-to-gpu builds for small layer configurations:
// kernel signatures (i64 pointers, i32 M), the nvgpu/nvvm ops of each
// family, and the launch records in qc.variants.

// RUN: quant-opt %s --convert-wq-to-gpu="shapes=32x128 group-size=32 sym=false tiles=splitk:warps=2,split-k=2,stages=2,m=1-8;mma:tile-m=16,warps=4,stages=3,m=9-64" | FileCheck %s --check-prefix=ASYM
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=48x256,48x256 group-size=128 tiles=splitk:warps=4,split-k=1,stages=3,m=1-8" | FileCheck %s --check-prefix=SYM
// RUN: quant-opt %s --convert-wq-to-gpu="shapes=4096x4096 group-size=-1" | FileCheck %s --check-prefix=DEFAULT

module {
}

// Asymmetric g32: split-K over 2 CTAs through the fp32 workspace, then the
// finalize kernel; the mma variant is a 3-stage cp.async pipeline.
// ASYM: module attributes {gpu.container_module}
// ASYM: gpu.module @wq_n32_k128_b4_g32_asym attributes {qc.layer = {bits = 4 : i64, group_size = 32 : i64, k = 128 : i64, n = 32 : i64, sym = false}
// ASYM-SAME: {family = "splitk", launches = [{block = array<i32: 64, 1, 1>, grid_x = 2 : i64, grid_z = 2 : i64, kernel = "splitk_0", params = ["x", "qweight", "scales", "zeros", "workspace", "M"], shared_bytes = 0 : i64, tile_m = 8 : i64}, {block = array<i32: 256, 1, 1>, grid_x = 1 : i64, grid_z = 1 : i64, kernel = "finalize", params = ["workspace", "y", "M"], shared_bytes = 0 : i64, tile_m = 1 : i64}], max_m = 8 : i64, min_m = 1 : i64, workspace_bytes_per_row = 128 : i64, zero_workspace = true}
// ASYM-SAME: {family = "mma", launches = [{block = array<i32: 128, 1, 1>, grid_x = 1 : i64, grid_z = 1 : i64, kernel = "mma_1_m16", params = ["x", "qweight", "scales", "zeros", "y", "M"], shared_bytes = 0 : i64, tile_m = 16 : i64}], max_m = 64 : i64, min_m = 9 : i64, workspace_bytes_per_row = 0 : i64, zero_workspace = false}
// ASYM-DAG: llvm.mlir.global internal @mma_1_m16_smem() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<12288 x i8>
// ASYM-DAG: llvm.mlir.global internal @splitk_0_red() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<1024 x i8>
// ASYM-LABEL: gpu.func @splitk_0(
// ASYM-SAME: %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i32) kernel attributes {known_block_size = array<i32: 64, 1, 1>}
// ASYM: llvm.inline_asm "ld.global.nc.v4.u32
// ASYM: scf.for
// ASYM: arith.ori %{{.*}}, %c1677747200_i32 : i32
// ASYM: arith.subf %{{.*}} : vector<2xf16>
// ASYM: arith.mulf %{{.*}} : vector<2xf16>
// ASYM: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
// ASYM: gpu.barrier
// ASYM: llvm.atomicrmw fadd
// ASYM-LABEL: gpu.func @mma_1_m16(
// ASYM: nvgpu.device_async_copy {{.*}}, 8, {{.*}} {bypassL1} : memref<?xf16, #gpu.address_space<global>> to memref<3x16x64xf16, #gpu.address_space<workgroup>>
// ASYM: nvgpu.device_async_copy {{.*}}, 4, {{.*}} {bypassL1} : memref<?xi32, #gpu.address_space<global>> to memref<3x4x32x4xi32, #gpu.address_space<workgroup>>
// ASYM: nvgpu.device_async_create_group
// ASYM: scf.for
// ASYM: nvvm.cp.async.wait.group 1
// ASYM: gpu.barrier
// ASYM: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<3x16x64xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
// ASYM: nvgpu.mma.sync
// ASYM: nvvm.cp.async.wait.group 0
// ASYM-LABEL: gpu.func @finalize(
// ASYM: arith.truncf %{{.*}} : f32 to f16

// Symmetric g128 without split-K: y written directly, no finalize kernel,
// and a layer listed twice gets one module.
// SYM: gpu.module @wq_n48_k256_b4_g128_sym
// SYM-SAME: params = ["x", "qweight", "scales", "y", "M"]
// SYM-SAME: zero_workspace = false
// SYM: gpu.func @splitk_0(%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i32) kernel
// SYM: arith.constant dense<1.032000e+03> : vector<2xf16>
// SYM-NOT: llvm.atomicrmw
// SYM-NOT: gpu.func @finalize
// SYM-NOT: gpu.module

// The default variants: splitk for M <= 8, three mma tile heights and the
// dequantize-only baseline kernel (one thread per word: W fp16 [N, K]).
// DEFAULT: gpu.module @wq_n4096_k4096_b4_gc_sym
// DEFAULT-SAME: kernel = "splitk_0"
// DEFAULT-SAME: max_m = 8 : i64, min_m = 1 : i64
// DEFAULT-SAME: kernel = "mma_1_m16"
// DEFAULT-SAME: max_m = 16 : i64, min_m = 9 : i64
// DEFAULT-SAME: kernel = "mma_2_m32"
// DEFAULT-SAME: max_m = 32 : i64, min_m = 17 : i64
// DEFAULT-SAME: kernel = "mma_3_m64"
// DEFAULT-SAME: max_m = 1073741824 : i64, min_m = 33 : i64
// DEFAULT-SAME: {family = "dequant", launches = [{block = array<i32: 256, 1, 1>, grid_x = 8192 : i64, grid_z = 1 : i64, kernel = "dequant_4", params = ["qweight", "scales", "w"], shared_bytes = 0 : i64, tile_m = 1073741824 : i64}]
// DEFAULT-DAG: gpu.func @splitk_0(
// DEFAULT-DAG: gpu.func @mma_1_m16(
// DEFAULT-DAG: gpu.func @mma_2_m32(
// DEFAULT-DAG: gpu.func @mma_3_m64(
// DEFAULT-DAG: gpu.func @dequant_4(%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) kernel
