//===- QuantBench.h - The kernel benchmarking driver ------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// quant-bench's kernel mode (../shared/docs/PERF.md section 4): for every
// layer of an artifact and every batch size M it times our fused
// dequantize-GEMM kernel, cuBLAS FP16 on the same (dequantized) weights,
// and dequantize-then-cuBLAS when the artifact has a "dequant" variant.
// Timings are the median of many CUDA-event-timed CUDA-graph replays after
// warm-up, with the weights rotated through more than 256 MB of copies so
// that every launch reads them from DRAM, never from L2. Every timed
// configuration is first run on poisoned outputs and verified against a
// float64 host reference. A device-to-device copy measured in the same run
// gives the bandwidth ceiling the table compares against.
//
// On the qc PTX emulator (QC_CUDA_DRIVER_LIBRARY=libqc_cuda_emu.so) the
// same flow runs the real PTX on the CPU: every configuration is verified,
// cuBLAS is skipped (the dequant kernel is then checked on its own output),
// and every timing is labelled "emulated" and never turned into a
// throughput, a speedup or a ceiling.
//
// The pieces that need no GPU (arguments, artifacts, weights, reference
// verification, metrics, table and JSON) are separate functions so that
// they are tested on machines without one.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TOOLS_QUANTBENCH_H
#define QC_TOOLS_QUANTBENCH_H

#include "qc/runtime/Artifact.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Status.h"

#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace qc {
namespace bench {

/// Process exit codes, distinct so that scripts can tell why a run ended.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,        ///< bad command line
  kExitArtifact = 2,     ///< the artifact cannot be read or has no layers
  kExitNoGpu = 3,        ///< no CUDA driver or device: nothing to measure
  kExitVerifyFailed = 4, ///< a timed kernel disagreed with the reference
  kExitGpuError = 5,     ///< a CUDA/cuBLAS call failed
};

/// Command-line options.
struct Options {
  std::string artifact;                                     ///< --artifact
  std::vector<int> ms = {1, 2, 4, 8, 16, 32, 64, 128, 256}; ///< --m
  int reps = 100;                                           ///< --reps
  int warmup = 10;                                          ///< --warmup
  std::string jsonPath;                                     ///< --json
  bool table = false;                                       ///< --table
  uint64_t seed = 1;                                        ///< --seed
  std::vector<std::string> layers;     ///< --layer (all if empty)
  double maxRelError = 5e-3;           ///< --max-rel-error
  uint64_t rotateBytes = 320ull << 20; ///< --rotate-mb
  int gemmPeakN = 8192;                ///< --gemm-peak-n
  int device = 0;                      ///< --device
};

/// The --help text.
std::string usage();

/// Parses argv; `helpShown` is set for --help (options untouched).
Status parseArgs(int argc, const char *const *argv, Options &out,
                 bool &helpShown);

/// Random but seeded weights for `layer` (codes over the full 4-bit range,
/// positive scales of size ~1/sqrt(K) so outputs are O(1), random integer
/// zero points when asymmetric), packed with packMMA16x64.
Status randomLayerTensors(const ArtifactLayer &layer, uint64_t seed,
                          MMA16x64Tensors &out);

/// Seeded fp16 activations in [-1, 1], [M, K] row-major.
std::vector<uint16_t> randomActivations(int64_t M, int64_t K, uint64_t seed);

/// The output channels verified for an M x N x K product: all when the
/// float64 reference costs at most `budget` multiply-adds, else an evenly
/// spaced subset (always including 0 and N-1) that fits the budget, with at
/// least 64 channels.
std::vector<int64_t> verifyChannels(int64_t N, int64_t K, int64_t M,
                                    int64_t budget = int64_t(1) << 28);

/// The result of checking one output.
struct Verification {
  double relError = 0; ///< ||out - ref|| / ||ref|| on the checked outputs
  int64_t checked = 0; ///< outputs compared
  bool ok = false;     ///< relError is finite and <= the threshold
};

/// Compares `yHalf` (fp16 [M, N]) on `channels` with the float64 reference
/// `ref` ([M, channels.size()], from referenceLinear).
Verification verifyOutput(const uint16_t *yHalf, int64_t M, int64_t N,
                          const std::vector<int64_t> &channels,
                          const std::vector<double> &ref, double maxRelError);

/// One row of results: one layer at one M. Times are microseconds per
/// kernel (or per dequantize + GEMM pair); NaN means not measured.
struct Row {
  std::string layer;
  int64_t N = 0, K = 0, groupSize = -1;
  int bits = 4;
  bool sym = true;
  int M = 0;
  std::string variant; ///< family of our variant ("" if none)
  double oursUs = NAN, cublasUs = NAN, dequantUs = NAN;
  double relOurs = NAN, relCublas = NAN, relDequant = NAN;
  /// Without cuBLAS: the dequant kernel's W against the host dequantization.
  double relDequantW = NAN;
  /// Measured on the qc PTX emulator: the times are host wall time, so no
  /// throughput or speedup is derived from them.
  bool emulated = false;
  int64_t checked = 0; ///< outputs verified per configuration
  bool dequantAvailable = false;
  bool ok = false;     ///< every measured configuration verified
  std::string failure; ///< why not ok
  // Derived in computeMetrics.
  double oursBytes = 0, cublasBytes = 0, flops = 0;
  double oursTBps = NAN, oursPctCopy = NAN, oursTflops = NAN;
  double cublasTBps = NAN, cublasTflops = NAN, speedup = NAN,
         dequantSpeedup = NAN;
};

/// Fills the derived columns of `row` from its times and the copy
/// bandwidth (TB/s): bytes moved by our kernel (packed weights, scales,
/// zeros, x and y) and by cuBLAS (fp16 W, x, y), 2*M*N*K flops, and the
/// speedups over cuBLAS (cublasUs / oursUs, cublasUs / dequantUs). For an
/// emulated row only the byte and flop counts are filled.
void computeMetrics(Row &row, double copyTBps);

/// A whole run.
struct Report {
  std::string deviceName, arch, date, artifact, producer;
  int driverVersion = 0, cublasVersion = 0, smCount = 0;
  double copyTBps = NAN;   ///< measured device-to-device copy bandwidth
  double gemmTflops = NAN; ///< measured cuBLAS FP16 GEMM throughput
  bool emulated = false;   ///< the device is the qc PTX emulator
  std::string cublasNote;  ///< why the cuBLAS rows were skipped ("" if not)
  Options options;
  std::vector<Row> rows;
};

/// Whether the rotated weight copies exceed 256 MB (PERF.md's cold-L2
/// requirement); reported with the results.
bool l2Cold(const Options &o);

/// The human-readable table.
std::string formatTable(const Report &r);

/// The JSON form (see README: schema "qc-bench-kernels", version 1).
json::Value toJson(const Report &r);

/// Writes toJson(r), pretty, atomically.
Status writeJson(const std::string &path, const Report &r);

/// The date now in UTC, "2026-11-23T13:50:00Z".
std::string utcNow();

/// The GPU part (GpuBench.cpp): measures every layer of `layers` into
/// `report`; on failure sets `code` (kExitNoGpu without a driver or device,
/// kExitGpuError otherwise) and returns the one-line reason. Progress lines
/// go to `progress`.
Status runOnGpu(const Options &o, const Artifact &a,
                const std::vector<const ArtifactLayer *> &layers,
                Report &report, int &code, std::ostream &progress);

/// The whole tool: returns an ExitCode. Messages go to `out` / `err`.
int quantBenchMain(int argc, const char *const *argv, std::ostream &out,
                   std::ostream &err);

} // namespace bench
} // namespace qc

#endif // QC_TOOLS_QUANTBENCH_H
