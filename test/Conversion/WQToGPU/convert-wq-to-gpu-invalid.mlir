// Tests that kernel-only layers (the shapes option) and tilings the
// kernels cannot serve are rejected with a diagnostic naming the cause (and
// the pass fails, without crashing). Each case is a split-file part run with
// its own options; the diagnostics land on the module, which holds the
// kernels. Layers of the IR the kernels cannot serve are reported on their
// op: convert-wq-to-gpu-linear.mlir.

// RUN: rm -rf %t && split-file %s %t
// RUN: quant-opt %t/bits3.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 bits=3"
// RUN: quant-opt %t/kmod.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x100"
// RUN: quant-opt %t/group.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 group-size=24"
// RUN: quant-opt %t/shape.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64xabc"
// RUN: quant-opt %t/family.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=wgmma:warps=4"
// RUN: quant-opt %t/key.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=splitk:colour=4"
// RUN: quant-opt %t/splitk-m.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=splitk:m=1-16"
// RUN: quant-opt %t/splitk.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=splitk:split-k=3"
// RUN: quant-opt %t/smem.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=128,stages=4"
// RUN: quant-opt %t/threads.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=8,warps=4"
// RUN: quant-opt %t/tile-m.mlir -verify-diagnostics --convert-wq-to-gpu="shapes=64x128 tiles=mma:tile-m=20"

//--- bits3.mlir
// expected-error @+1 {{GPU kernels support bits = 4 only (the mma16x64 layout), got bits = 3}}
module {
}

//--- kmod.mlir
// expected-error @+1 {{GPU kernels need in_features (K) to be a multiple of 8 (activations are read in aligned pairs and 16-byte chunks), got K = 100}}
module {
}

//--- group.mlir
// expected-error @+1 {{GPU kernels need group_size = -1 or a positive multiple of 16 (one group per 16x16 MMA tile), got 24}}
module {
}

//--- shape.mlir
// expected-error @+1 {{convert-wq-to-gpu: bad shape '64xabc' (expected NxK, e.g. 4096x11008)}}
module {
}

//--- family.mlir
// expected-error @+1 {{convert-wq-to-gpu: unknown kernel family 'wgmma' (expected splitk, mma or dequant)}}
module {
}

//--- key.mlir
// expected-error @+1 {{convert-wq-to-gpu: unknown tile key 'colour' (expected warps, split-k, tile-m, tiles-n, stages or m)}}
module {
}

//--- splitk-m.mlir
// expected-error @+1 {{splitk serves M <= 8, got an M range up to 16; use the mma family above 8}}
module {
}

//--- splitk.mlir
// expected-error @+1 {{splitk: split-k must be in [1, 2] (the number of k64 chunks), got 3}}
module {
}

//--- smem.mlir
// expected-error @+1 {{mma: 73728 bytes of shared memory exceed the 48 KiB static limit}}
module {
}

//--- threads.mlir
// expected-error @+1 {{mma: the x tile (tile-m * 8 = 64 16-byte copies) must be a multiple of the 128 threads (32 * warps)}}
module {
}

//--- tile-m.mlir
// expected-error @+1 {{mma: tile-m must be a multiple of 8 in [8, 128], got 20}}
module {
}
