#===- QCLayers.cmake - The allowed direction of library dependencies ------===#
#
# Part of the qc project. MIT licence.
#
# qc's libraries in layers, lowest first. A library may link libraries of
# its own layer or of a lower one, never of a higher one, and the link graph
# must have no cycle (within a layer either). The `layering` ctest
# (cmake/CheckLayering.cmake) checks both on the real targets' link
# libraries; every library target of the project must be listed here, so a
# new library is placed deliberately. Executables (tools, tests, benchmarks)
# are above everything and need no entry.
#
# Each entry is "layer-name: target target ...".
#
#===------------------------------------------------------------------------===#

set(QC_LAYERS
  # Standalone runtime, no MLIR/LLVM (runtime/): loaders, tokenizers, the
  # GPU runtime, the PTX emulator and their tools' libraries.
  "runtime: qc_pcre2 qc_runtime qc_bench qc_tokenize_tool qc_ptxemu
            qc_emu_image qc_cuda_emu qc_ptxrun qc_fake_cuda"
  # Plain C++ numerics and trace I/O on top of the runtime, no MLIR.
  "algorithms: QCQuantAlgorithms QCCalibrationTrace"
  # The llm and wq dialects (dialects/).
  "dialects: QCLLM QCWQ"
  # registerAllQCDialects (lib/Registration).
  "registration: QCDialectRegistration"
  # Lowerings and the CUDA target (lib/Conversion, lib/Target).
  "conversion: QCConversionUtils QCConversionLLMToLinalg QCConversionWQToLinalg
               QCConversionLLMParamsToArguments QCConversionMathApproximation
               QCConversionVectorizeLinear QCConversionOutlineLoopNests
               QCConversionWQToGPU QCTargetCUDA"
  # Checkpoints in and out, model IR building (lib/Import).
  "import: QCImport"
  # The quantization passes (lib/Quantization/Transforms): they read the
  # model's weights through the importer.
  "quantization: QCQuantizationTransforms"
  # Named pipelines and registerAllQCPasses (lib/Pipelines).
  "pipelines: QCPipelines"
  # JIT execution and evaluation (lib/Execution).
  "execution: QCExecution"
  # Calibration runs the model (lib/Calibration).
  "calibration: QCCalibration"
  # Recipes (lib/Driver).
  "driver: QCDriver"
)
