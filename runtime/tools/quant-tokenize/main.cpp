//===- main.cpp - quant-tokenize entry point ------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "QuantTokenize.h"

#include <iostream>

int main(int argc, char **argv) {
  return qc::tools::quantTokenizeMain(argc, argv, std::cout, std::cerr);
}
