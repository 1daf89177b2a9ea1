//===- main.cpp - quant-bench entry point ---------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "QuantBench.h"
#include "qc/runtime/OutputSafety.h"

#include <iostream>

int main(int argc, char **argv) {
  qc::ignoreFileSizeSignal();
  return qc::bench::quantBenchMain(argc, argv, std::cout, std::cerr);
}
