//===- KernelAbi.cpp - The kernel ABIs the runtime can launch -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The ABI names of the artifact manifest and the built-in ABIs of the
// families written before the manifest named ABIs.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/KernelAbi.h"

namespace qc {

namespace {
struct AbiName {
  KernelAbi abi;
  const char *name;
};
constexpr AbiName kAbis[] = {{KernelAbi::Gemm, "gemm"},
                             {KernelAbi::DequantW, "dequant_w"}};

struct BuiltinFamily {
  const char *family;
  KernelAbi abi;
};
// Frozen: the families of artifacts written before the "abi" key. A new
// family states its ABI in the manifest instead of being added here.
constexpr BuiltinFamily kBuiltinFamilies[] = {{"splitk", KernelAbi::Gemm},
                                              {"mma", KernelAbi::Gemm},
                                              {"dequant", KernelAbi::DequantW}};
} // namespace

const char *kernelAbiName(KernelAbi abi) {
  for (const AbiName &a : kAbis)
    if (a.abi == abi)
      return a.name;
  return "unknown";
}

bool parseKernelAbi(const std::string &name, KernelAbi &out) {
  for (const AbiName &a : kAbis)
    if (name == a.name) {
      out = a.abi;
      return true;
    }
  return false;
}

bool builtinFamilyAbi(const std::string &family, KernelAbi &out) {
  for (const BuiltinFamily &f : kBuiltinFamilies)
    if (family == f.family) {
      out = f.abi;
      return true;
    }
  return false;
}

std::string kernelAbiNames() {
  std::string out;
  for (const AbiName &a : kAbis)
    out += (out.empty() ? "" : ", ") + std::string(a.name);
  return out;
}

} // namespace qc
