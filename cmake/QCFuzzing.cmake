#===- QCFuzzing.cmake - Build the libFuzzer targets with clang ---------------===#
#
# Part of the qc project. MIT licence.
#
# The compiler is built with the system C++ compiler, but libFuzzer needs
# clang. The runtime is a standalone project, so its fuzz targets are built
# as an external project configured with clang (QC_FUZZ_CXX_COMPILER), and
# the short fuzz run is registered as a ctest of this project. The fuzz
# targets of the compiler's own parsers (calibration traces, recipes) are a
# second external project, fuzz/, which links LLVM Support.
# scripts/fuzz-long.sh runs every target for longer.
#
#===------------------------------------------------------------------------===#

set(QC_FUZZ_CXX_COMPILER "" CACHE FILEPATH
    "clang++ used to build the libFuzzer targets (empty: no fuzzing)")

if(QC_FUZZ_CXX_COMPILER AND EXISTS "${QC_FUZZ_CXX_COMPILER}")
  include(ExternalProject)
  set(_qc_fuzz_bin "${CMAKE_BINARY_DIR}/fuzz")
  ExternalProject_Add(qc_fuzz
    SOURCE_DIR "${PROJECT_SOURCE_DIR}/runtime"
    BINARY_DIR "${_qc_fuzz_bin}"
    CMAKE_ARGS
      -G Ninja
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_CXX_COMPILER=${QC_FUZZ_CXX_COMPILER}
      -DQC_ENABLE_FUZZING=ON
      -DQC_RUNTIME_BUILD_TESTS=OFF
    BUILD_COMMAND ${CMAKE_COMMAND} --build . --target qc_safetensors_fuzzer qc_artifact_fuzzer qc_tokenizer_fuzzer qc_gguf_fuzzer
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
    BUILD_BYPRODUCTS "${_qc_fuzz_bin}/fuzz/qc_safetensors_fuzzer"
                     "${_qc_fuzz_bin}/fuzz/qc_artifact_fuzzer"
                     "${_qc_fuzz_bin}/fuzz/qc_gguf_fuzzer"
                     "${_qc_fuzz_bin}/fuzz/qc_tokenizer_fuzzer")
  set(_qc_fuzz_dir "${PROJECT_SOURCE_DIR}/runtime/fuzz")
  file(MAKE_DIRECTORY "${_qc_fuzz_bin}/corpus")
  add_test(NAME safetensors_fuzz_smoke
    COMMAND "${_qc_fuzz_bin}/fuzz/qc_safetensors_fuzzer"
      -max_total_time=20 -timeout=10 -rss_limit_mb=2048
      -dict=${_qc_fuzz_dir}/safetensors.dict
      -artifact_prefix=${_qc_fuzz_bin}/
      ${_qc_fuzz_bin}/corpus ${_qc_fuzz_dir}/corpus
    WORKING_DIRECTORY "${_qc_fuzz_bin}")
  set_tests_properties(safetensors_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
  file(MAKE_DIRECTORY "${_qc_fuzz_bin}/artifact-corpus")
  add_test(NAME artifact_fuzz_smoke
    COMMAND "${_qc_fuzz_bin}/fuzz/qc_artifact_fuzzer"
      -max_total_time=10 -timeout=10 -rss_limit_mb=2048
      -artifact_prefix=${_qc_fuzz_bin}/artifact-
      ${_qc_fuzz_bin}/artifact-corpus ${_qc_fuzz_dir}/artifact-corpus
    WORKING_DIRECTORY "${_qc_fuzz_bin}")
  set_tests_properties(artifact_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
  file(MAKE_DIRECTORY "${_qc_fuzz_bin}/gguf-corpus")
  add_test(NAME gguf_fuzz_smoke
    COMMAND "${_qc_fuzz_bin}/fuzz/qc_gguf_fuzzer"
      -max_total_time=10 -timeout=10 -rss_limit_mb=2048
      -dict=${_qc_fuzz_dir}/gguf.dict
      -artifact_prefix=${_qc_fuzz_bin}/gguf-
      ${_qc_fuzz_bin}/gguf-corpus ${_qc_fuzz_dir}/gguf-corpus
    WORKING_DIRECTORY "${_qc_fuzz_bin}")
  set_tests_properties(gguf_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
  file(MAKE_DIRECTORY "${_qc_fuzz_bin}/tokenizer-corpus")
  add_test(NAME tokenizer_fuzz_smoke
    COMMAND "${_qc_fuzz_bin}/fuzz/qc_tokenizer_fuzzer"
      -max_total_time=10 -timeout=10 -rss_limit_mb=2048
      -dict=${_qc_fuzz_dir}/tokenizer.dict
      -artifact_prefix=${_qc_fuzz_bin}/tokenizer-
      ${_qc_fuzz_bin}/tokenizer-corpus ${_qc_fuzz_dir}/tokenizer-corpus
    WORKING_DIRECTORY "${_qc_fuzz_bin}")
  set_tests_properties(tokenizer_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)

  set(_qc_cfuzz_bin "${CMAKE_BINARY_DIR}/fuzz-compiler")
  ExternalProject_Add(qc_compiler_fuzz
    SOURCE_DIR "${PROJECT_SOURCE_DIR}/fuzz"
    BINARY_DIR "${_qc_cfuzz_bin}"
    CMAKE_ARGS
      -G Ninja
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_CXX_COMPILER=${QC_FUZZ_CXX_COMPILER}
      -DLLVM_DIR=${LLVM_DIR}
    BUILD_COMMAND ${CMAKE_COMMAND} --build . --target qc_trace_fuzzer qc_recipe_fuzzer
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
    BUILD_BYPRODUCTS "${_qc_cfuzz_bin}/qc_trace_fuzzer"
                     "${_qc_cfuzz_bin}/qc_recipe_fuzzer")
  foreach(_target trace recipe)
    file(MAKE_DIRECTORY "${_qc_cfuzz_bin}/${_target}-corpus")
    add_test(NAME ${_target}_fuzz_smoke
      COMMAND "${_qc_cfuzz_bin}/qc_${_target}_fuzzer"
        -max_total_time=10 -timeout=10 -rss_limit_mb=2048
        -dict=${PROJECT_SOURCE_DIR}/fuzz/${_target}.dict
        -artifact_prefix=${_qc_cfuzz_bin}/${_target}-
        ${_qc_cfuzz_bin}/${_target}-corpus
        ${PROJECT_SOURCE_DIR}/fuzz/${_target}-corpus
      WORKING_DIRECTORY "${_qc_cfuzz_bin}")
    set_tests_properties(${_target}_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
  endforeach()
else()
  message(STATUS "qc: QC_FUZZ_CXX_COMPILER not set; the fuzz targets are not built")
endif()
