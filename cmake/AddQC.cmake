#===- AddQC.cmake - Thin wrappers over MLIR's CMake functions ---------------===#
#
# Part of the qc project. MIT licence.
#
# Every qc library links MLIR through libMLIR.so (MLIR_LINK_MLIR_DYLIB): a
# tool then links in seconds on two cores, and a process never holds two
# copies of MLIR (which breaks TypeID-based registration).
#
#===------------------------------------------------------------------------===#

set(MLIR_LINK_MLIR_DYLIB ON CACHE BOOL "Link against libMLIR.so" FORCE)

# add_qc_library(name sources... [DEPENDS targets...] [MLIR_LIBS libs...]
#                [LINK_LIBS libs...])
#   A compiler library. MLIR_LIBS are MLIR component names; they resolve to
#   libMLIR.so. LINK_LIBS are our own targets.
function(add_qc_library name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;MLIR_LIBS;LINK_LIBS" ${ARGN})
  add_mlir_library(${name} ${ARG_UNPARSED_ARGUMENTS}
    PARTIAL_SOURCES_INTENDED
    DEPENDS ${ARG_DEPENDS}
    DISABLE_INSTALL)
  if(ARG_LINK_LIBS)
    target_link_libraries(${name} PUBLIC ${ARG_LINK_LIBS})
  endif()
  if(ARG_MLIR_LIBS)
    mlir_target_link_libraries(${name} PUBLIC ${ARG_MLIR_LIBS})
  endif()
  if(ARG_DEPENDS)
    add_dependencies(qc-headers ${ARG_DEPENDS})
  endif()
endfunction()

# add_qc_tool(name sources... [LINK_LIBS ...] [MLIR_LIBS ...])
#   A compiler tool.
#   Every tool also gets tools/QCVersion.cpp: --version prints qc's version
#   and git revision, then LLVM/MLIR's.
function(add_qc_tool name)
  cmake_parse_arguments(ARG "" "" "MLIR_LIBS;LINK_LIBS" ${ARGN})
  add_llvm_executable(${name} ${ARG_UNPARSED_ARGUMENTS}
    ${PROJECT_SOURCE_DIR}/tools/QCVersion.cpp PARTIAL_SOURCES_INTENDED)
  llvm_update_compile_flags(${name})
  add_dependencies(${name} qc-version)
  set_source_files_properties(${PROJECT_SOURCE_DIR}/tools/QCVersion.cpp
    PROPERTIES COMPILE_DEFINITIONS "QC_VERSION_STRING=\"${PROJECT_VERSION}\""
               OBJECT_DEPENDS "${QC_GIT_REVISION_INC}")
  target_include_directories(${name} PRIVATE "${QC_VERSION_INCLUDE_DIR}")
  if(ARG_LINK_LIBS)
    target_link_libraries(${name} PRIVATE ${ARG_LINK_LIBS})
  endif()
  if(ARG_MLIR_LIBS)
    mlir_target_link_libraries(${name} PRIVATE ${ARG_MLIR_LIBS})
  endif()
endfunction()
