// Tests that layers and tilings the kernels cannot serve are rejected with a
// diagnostic naming the cause (and the pass fails, without crashing).

// RUN: quant-opt %s -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 bits=3"
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x100" 2>&1 | FileCheck %s --check-prefix=KMOD
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 group-size=24" 2>&1 | FileCheck %s --check-prefix=GROUP
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64xabc" 2>&1 | FileCheck %s --check-prefix=SHAPE
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=wgmma:warps=4" 2>&1 | FileCheck %s --check-prefix=FAMILY
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=splitk:colour=4" 2>&1 | FileCheck %s --check-prefix=KEY
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=splitk:m=1-16" 2>&1 | FileCheck %s --check-prefix=SPLITKM
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=splitk:split-k=3" 2>&1 | FileCheck %s --check-prefix=SPLITK
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=128,stages=4" 2>&1 | FileCheck %s --check-prefix=SMEM
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=8,warps=4" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not quant-opt %s --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=20" 2>&1 | FileCheck %s --check-prefix=TILEM

// expected-error @below {{GPU kernels support bits = 4 only (the mma16x64 layout), got bits = 3}}
module {
}

// KMOD: error: GPU kernels need in_features (K) to be a multiple of 8 (activations are read in aligned pairs and 16-byte chunks), got K = 100
// GROUP: error: GPU kernels need group_size = -1 or a positive multiple of 16 (one group per 16x16 MMA tile), got 24
// SHAPE: error: convert-wq-to-gpu: bad shape '64xabc' (expected NxK, e.g. 4096x11008)
// FAMILY: error: convert-wq-to-gpu: unknown kernel family 'wgmma' (expected splitk, mma or dequant)
// KEY: error: convert-wq-to-gpu: unknown tile key 'colour' (expected warps, split-k, tile-m, tiles-n, stages or m)
// SPLITKM: error: splitk serves M <= 8, got an M range up to 16; use the mma family above 8
// SPLITK: error: splitk: split-k must be in [1, 2] (the number of k64 chunks), got 3
// SMEM: error: mma: 73728 bytes of shared memory exceed the 48 KiB static limit
// THREADS: error: mma: the x tile (tile-m * 8 = 64 16-byte copies) must be a multiple of the 128 threads (32 * warps)
// TILEM: error: mma: tile-m must be a multiple of 8 in [8, 128], got 20
