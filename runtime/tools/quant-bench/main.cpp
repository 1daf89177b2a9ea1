//===- main.cpp - quant-bench entry point ---------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "QuantBench.h"

#include <iostream>

int main(int argc, char **argv) {
  return qc::bench::quantBenchMain(argc, argv, std::cout, std::cerr);
}
