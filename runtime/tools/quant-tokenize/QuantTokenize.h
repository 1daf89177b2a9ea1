//===- QuantTokenize.h - The quant-tokenize tool ----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// quant-tokenize turns text into token ids (or ids into text) with the
// tokenizer of a model: a tokenizer.json, a GGUF file, a llama2.c
// tokenizer.bin or a model folder. The entry point takes its streams as
// arguments so that the tests run it in-process.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TOOLS_QUANTTOKENIZE_H
#define QC_TOOLS_QUANTTOKENIZE_H

#include <iosfwd>

namespace qc {
namespace tools {

/// Runs quant-tokenize with `argv` (argv[0] is the program name), writing
/// results to `out` and one-line errors to `err`. Returns the exit status:
/// 0 on success, 1 on an error, 2 on a usage error.
int quantTokenizeMain(int argc, char **argv, std::ostream &out,
                      std::ostream &err);

} // namespace tools
} // namespace qc

#endif // QC_TOOLS_QUANTTOKENIZE_H
