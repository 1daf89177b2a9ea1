//===- TextDataset.cpp - Evaluation and calibration text --------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements the perplexity protocol's text handling: read a corpus file,
// split it into paragraphs, encode them with the llama2.c tokenizer and
// window the stream. Paragraphs are encoded separately (not the whole file
// at once) because that is how the golden perplexities were produced, and
// BPE merges across a "\n\n" boundary would change the token stream.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TextDataset.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace qc {
namespace {

/// Python's str.strip() set for ASCII text.
bool isAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/// Token id of byte `b`'s fallback piece ("<0x0A>" for '\n' is id 13).
int byteToken(unsigned char b) { return Tokenizer::kByteOffset + b; }

} // namespace

Status readTextFile(const std::string &path, std::string &out) {
  bool whole = false;
  return readTextPrefix(path, UINT64_MAX, out, whole);
}

Status readTextPrefix(const std::string &path, uint64_t maxBytes,
                      std::string &out, bool &whole) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::error(path +
                         ": cannot open text file: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path +
                         ": cannot open text file: " + std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t n = std::min(size, maxBytes);
  std::string data(static_cast<size_t>(n), '\0');
  in.read(&data[0], static_cast<std::streamsize>(n));
  if (in.gcount() != static_cast<std::streamsize>(n))
    return Status::error(path + ": short read (file changed while reading?)");
  whole = n == size;
  out = std::move(data);
  return Status::ok();
}

size_t prefixCut(const std::string &text, bool &paragraph) {
  paragraph = false;
  size_t pos = text.rfind("\n\n");
  if (pos != std::string::npos) {
    paragraph = true;
    return pos + 2;
  }
  pos = text.rfind('\n');
  if (pos != std::string::npos)
    return pos + 1;
  pos = text.rfind(' ');
  if (pos != std::string::npos)
    return pos + 1;
  // Back off UTF-8 continuation bytes (10xxxxxx) to a character start.
  size_t cut = text.size();
  while (cut > 0 && (static_cast<unsigned char>(text[cut - 1]) & 0xC0) == 0x80)
    --cut;
  return cut > 0 ? cut - 1 : 0;
}

std::vector<std::string> splitParagraphs(const std::string &text) {
  std::vector<std::string> paragraphs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos)
      end = text.size();
    // Strip [start, end) in place of Python's p.strip().
    size_t b = start, e = end;
    while (b < e && isAsciiSpace(text[b]))
      ++b;
    while (e > b && isAsciiSpace(text[e - 1]))
      --e;
    if (e > b)
      paragraphs.emplace_back(text, b, e - b);
    start = end + 2;
  }
  return paragraphs;
}

Status encodePerplexityText(const std::string &text, const Tokenizer &tok,
                            std::vector<int> &tokens,
                            const std::string &sourceName) {
  if (tok.size() == 0)
    return Status::error(sourceName + ": the tokenizer is empty");
  std::vector<std::string> paragraphs = splitParagraphs(text);
  if (paragraphs.empty())
    return Status::error(sourceName +
                         ": no text to evaluate (the file is empty or holds "
                         "only whitespace/blank lines)");
  std::vector<int> stream, piece;
  stream.reserve(text.size() / 2);
  for (size_t i = 0; i < paragraphs.size(); ++i) {
    if (i > 0) {
      stream.push_back(byteToken('\n'));
      stream.push_back(byteToken('\n'));
    }
    // Only the first paragraph gets SentencePiece's dummy-prefix space: the
    // stream reads as one document whose later paragraphs follow "\n\n".
    tok.encode(paragraphs[i], /*bos=*/false, /*eos=*/false, piece,
               /*dummyPrefix=*/i == 0);
    stream.insert(stream.end(), piece.begin(), piece.end());
  }
  tokens = std::move(stream);
  return Status::ok();
}

Status loadPerplexityTokens(const std::string &textPath, const Tokenizer &tok,
                            std::vector<int> &tokens) {
  std::string text;
  QC_RETURN_IF_ERROR(readTextFile(textPath, text));
  return encodePerplexityText(text, tok, tokens, textPath);
}

std::vector<std::vector<int>> makeWindows(const std::vector<int> &tokens,
                                          int64_t maxTokens, int64_t windowLen,
                                          int bos) {
  std::vector<std::vector<int>> windows;
  const int64_t size = static_cast<int64_t>(tokens.size());
  const int64_t n = maxTokens <= 0 ? size : std::min(maxTokens, size);
  if (windowLen < 1 || n == 0)
    return windows;
  windows.reserve(static_cast<size_t>((n + windowLen - 1) / windowLen));
  for (int64_t begin = 0; begin < n; begin += windowLen) {
    const int64_t end = std::min(n, begin + windowLen);
    std::vector<int> w;
    w.reserve(static_cast<size_t>(end - begin + 1));
    // BOS gives every window the same start-of-document context the model
    // was trained with, so windows are scored independently.
    w.push_back(bos);
    w.insert(w.end(), tokens.begin() + begin, tokens.begin() + end);
    windows.push_back(std::move(w));
  }
  return windows;
}

Status makeContextWindows(const std::vector<int> &tokens,
                          const ContextWindowProtocol &p,
                          std::vector<std::vector<int>> &windows,
                          int64_t &scored) {
  windows.clear();
  scored = 0;
  if (p.ctx < 2)
    return Status::error("--ctx must be at least 2 (a window needs one "
                         "token to predict another), got " +
                         std::to_string(p.ctx));
  if (p.bosEachWindow && p.bosId < 0)
    return Status::error("--bos each-window: the tokenizer names no BOS "
                         "token; use --bos none");
  if (p.skipTokens < 0 || p.maxTokens < 0)
    return Status::error("--skip-tokens and --max-tokens must not be "
                         "negative");
  const int64_t size = static_cast<int64_t>(tokens.size());
  if (p.skipTokens >= size)
    return Status::error("--skip-tokens " + std::to_string(p.skipTokens) +
                         " leaves nothing of the " + std::to_string(size) +
                         " tokens of the text");
  const int64_t begin = p.skipTokens;
  const int64_t end =
      p.maxTokens > 0 ? std::min(size, begin + p.maxTokens) : size;
  // Text ids per window: BOS takes one of the ctx positions.
  const int64_t step = p.bosEachWindow ? p.ctx - 1 : p.ctx;
  for (int64_t at = begin; at < end; at += step) {
    const int64_t stop = std::min(end, at + step);
    std::vector<int> w;
    w.reserve(static_cast<size_t>(stop - at + 1));
    if (p.bosEachWindow)
      w.push_back(p.bosId);
    w.insert(w.end(), tokens.begin() + at, tokens.begin() + stop);
    // A window of n ids predicts n - 1 of them.
    if (w.size() < 2)
      break;
    scored += static_cast<int64_t>(w.size()) - 1;
    windows.push_back(std::move(w));
  }
  return Status::ok();
}

std::string describeContextWindows(const ContextWindowProtocol &p,
                                   int64_t textTokens) {
  const int64_t end = p.maxTokens > 0
                          ? std::min(textTokens, p.skipTokens + p.maxTokens)
                          : textTokens;
  return "text tokenized as one string, non-overlapping windows of " +
         std::to_string(p.ctx) + " tokens" +
         (p.bosEachWindow
              ? " (BOS + " + std::to_string(p.ctx - 1) + " text tokens)"
              : "") +
         ", " + (p.bosEachWindow ? "BOS each window" : "no BOS") +
         ", each window scored on its own, tokens [" +
         std::to_string(p.skipTokens) + ", " + std::to_string(end) + ") of " +
         std::to_string(textTokens);
}

} // namespace qc
