//===- TextDataset.h - Evaluation and calibration text ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Turns a plain-text corpus (e.g. ../shared/data/tinystories/valid_head.txt)
// into the token stream and BOS-prefixed windows that perplexity evaluation
// and calibration consume. The split/strip/encode/join rules are the
// project's perplexity protocol (models/stories260K/README.md); following
// them exactly is what makes our numbers comparable with the golden ones.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TEXTDATASET_H
#define QC_RUNTIME_TEXTDATASET_H

#include "qc/runtime/Status.h"
#include "qc/runtime/Tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc {

/// Reads the whole file at `path` into `out` as raw bytes. Fails, naming
/// the path and the OS reason, when it is missing, unreadable or not a
/// regular file.
Status readTextFile(const std::string &path, std::string &out);

/// Reads at most the first `maxBytes` bytes of the file at `path` into
/// `out`; `whole` tells whether that was the entire file. Errors as
/// readTextFile(). Lets a caller that needs only the first N tokens of a
/// corpus tokenize a prefix instead of a file of any size.
Status readTextPrefix(const std::string &path, uint64_t maxBytes,
                      std::string &out, bool &whole);

/// Where a prefix of `text` (not the whole text) may be cut so that the
/// part before the cut tokenizes as it does inside the whole text, as far
/// as a tokenizer's own boundaries allow: after the last "\n\n" when there
/// is one (`paragraph` set: paragraphs are independent under the llama2.c
/// protocol), else after the last '\n', else after the last ' ', else at
/// the last UTF-8 character boundary. Returns 0 when no cut is possible.
size_t prefixCut(const std::string &text, bool &paragraph);

/// Splits `text` at every "\n\n", strips ASCII whitespace (" \t\n\r\f\v")
/// from both ends of each part and drops the parts left empty, like
/// Python's `[p.strip() for p in text.split("\n\n") if p.strip()]` on the
/// bundled (ASCII-whitespace) corpora.
std::vector<std::string> splitParagraphs(const std::string &text);

/// Encodes `text` under the perplexity protocol: each paragraph of
/// splitParagraphs() separately, no BOS/EOS, the dummy-prefix space on the
/// first paragraph only, paragraphs joined by two <0x0A> byte tokens
/// (id 13). Replaces `tokens`. Fails, naming `sourceName`, when the text has
/// no non-empty paragraph.
Status encodePerplexityText(const std::string &text, const Tokenizer &tok,
                            std::vector<int> &tokens,
                            const std::string &sourceName);

/// readTextFile() then encodePerplexityText() (errors name `textPath`).
Status loadPerplexityTokens(const std::string &textPath, const Tokenizer &tok,
                            std::vector<int> &tokens);

/// Cuts the first `maxTokens` ids of `tokens` (all of them when
/// maxTokens <= 0 or exceeds the size) into consecutive non-overlapping
/// chunks of `windowLen` ids, each prefixed with `bos`; the last chunk may
/// be shorter. A window of n + 1 ids scores n next-token predictions, so the
/// windows together score exactly min(maxTokens, size) tokens. Returns no
/// windows when windowLen < 1 or there are no tokens.
std::vector<std::vector<int>> makeWindows(const std::vector<int> &tokens,
                                          int64_t maxTokens,
                                          int64_t windowLen = 511,
                                          int bos = Tokenizer::kBosId);

/// The perplexity protocol users compare with llama.cpp and transformers:
/// the text tokenized as one string, the first `skipTokens` ids dropped,
/// at most `maxTokens` of the rest kept (0 = all), cut into consecutive
/// non-overlapping windows of `ctx` positions, each scored on its own.
struct ContextWindowProtocol {
  int64_t ctx = 1024;         ///< positions per window, BOS included
  bool bosEachWindow = false; ///< prepend BOS to every window
  int bosId = -1;             ///< used when bosEachWindow
  int64_t skipTokens = 0;     ///< ids dropped before the first window
  int64_t maxTokens = 0;      ///< ids kept after the skip (0 = all)
};

/// Cuts `tokens` under `p`. With BOS, a window is BOS + ctx - 1 text ids
/// and scores all of them; without, a window is ctx text ids and scores all
/// but its first. A last window shorter than ctx is kept when it scores at
/// least one id. Fails, naming the option, when ctx < 2 (< 1 text id with
/// BOS), when BOS is asked for without an id, or when skipTokens leaves no
/// text. `scored` receives the number of predictions the windows make.
Status makeContextWindows(const std::vector<int> &tokens,
                          const ContextWindowProtocol &p,
                          std::vector<std::vector<int>> &windows,
                          int64_t &scored);

/// One line naming the protocol, e.g. "text as one string, windows of 1024
/// tokens, no BOS, tokens [0, 16384) of 193745", for results and JSON.
std::string describeContextWindows(const ContextWindowProtocol &p,
                                   int64_t textTokens);

} // namespace qc

#endif // QC_RUNTIME_TEXTDATASET_H
