//===- main.cpp - quant-tokenize entry point ------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "QuantTokenize.h"
#include "qc/runtime/OutputSafety.h"

#include <iostream>

int main(int argc, char **argv) {
  qc::ignoreFileSizeSignal();
  return qc::tools::quantTokenizeMain(argc, argv, std::cout, std::cerr);
}
