#!/usr/bin/env bash
#===- scripts/bench-emulator.sh - quant-bench end to end on the PTX emulator ===#
#
# Part of the qc project. MIT licence.
#
# One command, from a clean checkout, without a GPU or the CUDA toolkit:
# builds the project (scripts/setup.sh; a no-op when up to date), generates
# the kernels of a few small layers as PTX (quant-kernelgen --ptx-images
# only) and runs the unchanged quant-bench on them with the qc PTX emulator
# as the CUDA driver (QC_CUDA_DRIVER_LIBRARY=build/lib/libqc_cuda_emu.so).
# Every configuration is verified against the float64 reference; the times
# are the emulator's wall time and are labelled "emulated": they are not GPU
# performance. Extra arguments go to quant-bench (e.g. --json out.json);
# QC_EMU_ARCH=sm_90a runs the sm_90a PTX.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
artifact="$build/emulator-bench.qcart"
"$build/bin/quant-kernelgen" --shape 256x512,100x200,520x2104 \
  --group-size 128 --asym --ptx-images only -o "$artifact"
QC_CUDA_DRIVER_LIBRARY="$build/lib/libqc_cuda_emu.so" \
QC_EMU_ARCH="${QC_EMU_ARCH:-sm_80}" \
  exec "$build/bin/quant-bench" --artifact "$artifact" --m 1,3,17,100 "$@"
