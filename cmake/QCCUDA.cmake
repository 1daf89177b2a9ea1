#===- QCCUDA.cmake - Find the CUDA toolkit for PTX -> cubin ----------------===#
#
# Part of the qc project. MIT licence.
#
# The compiler never links CUDA: it only runs ptxas (gpu-module-to-binary
# format=bin, qc-ptxas-report). This records where the toolkit is, for the
# defaults of those passes and for lit's `ptxas` feature. Without a toolkit
# everything still builds; PTX generation needs only LLVM's NVPTX backend.
#
#===------------------------------------------------------------------------===#

find_package(CUDAToolkit QUIET)
set(_qc_ptxas "")
set(_qc_cuda_root "")
if(CUDAToolkit_FOUND AND EXISTS "${CUDAToolkit_BIN_DIR}/ptxas")
  set(_qc_ptxas "${CUDAToolkit_BIN_DIR}/ptxas")
  get_filename_component(_qc_cuda_root "${CUDAToolkit_BIN_DIR}" DIRECTORY)
endif()
set(QC_CUDA_PTXAS "${_qc_ptxas}" CACHE FILEPATH "ptxas used to build cubins")
set(QC_CUDA_TOOLKIT_ROOT "${_qc_cuda_root}" CACHE PATH
    "CUDA toolkit root given to gpu-module-to-binary")
if(QC_CUDA_PTXAS)
  message(STATUS "qc: ptxas ${QC_CUDA_PTXAS} (cubins and ptxas reports enabled)")
else()
  message(STATUS "qc: no CUDA toolkit found; cubin tests are skipped")
endif()
