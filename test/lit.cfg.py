# -*- Python -*-
# lit configuration of the qc compiler tests.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "QC"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Unit", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.qc_obj_root, "test")

config.substitutions.append(("%shared", config.qc_shared_dir))
config.substitutions.append(("%src", config.qc_src_root))
# A tiny llama2.c checkpoint with deterministic weights, for the pass tests
# that run on hand-written IR (test/Inputs/tiny-llama2c.sh says how).
config.substitutions.append(
    ("%make_tiny_llama2c",
     "bash " + os.path.join(config.qc_src_root, "test", "Inputs",
                            "tiny-llama2c.sh")))
# Runtime support libraries of mlir-runner (printMemrefF32 and friends).
config.substitutions.append(
    ("%mlir_runner_utils",
     os.path.join(config.llvm_lib_dir, "libmlir_runner_utils.so")))
config.substitutions.append(
    ("%mlir_c_runner_utils",
     os.path.join(config.llvm_lib_dir, "libmlir_c_runner_utils.so")))

# `REQUIRES: ptxas`: tests that build cubins or read ptxas -v reports.
if config.qc_ptxas and os.access(config.qc_ptxas, os.X_OK):
    config.available_features.add("ptxas")

# `REQUIRES: emulator`: tests that run the generated kernels on the PTX
# emulator (its CUDA driver library, loaded with QC_CUDA_DRIVER_LIBRARY).
if config.qc_emu_driver and os.path.exists(config.qc_emu_driver):
    config.available_features.add("emulator")
    config.substitutions.append(("%emu_driver", config.qc_emu_driver))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
# quant-run's compiled-code cache stays inside the build folder.
config.environment["QC_CACHE_DIR"] = os.path.join(config.test_exec_root, "jit-cache")

tool_dirs = [config.qc_tools_dir, config.llvm_tools_dir]
tools = [
    "quant-opt",
    ToolSubst("quant-run", unresolved="ignore"),
    ToolSubst("quant-import", unresolved="ignore"),
    ToolSubst("quant-calibrate", unresolved="ignore"),
    ToolSubst("quant-compile", unresolved="ignore"),
    ToolSubst("quant-kernelgen", unresolved="ignore"),
    ToolSubst("quant-bench", unresolved="ignore"),
    ToolSubst("qc-ptx-run", unresolved="ignore"),
    ToolSubst("quant-tokenize", unresolved="ignore"),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)
