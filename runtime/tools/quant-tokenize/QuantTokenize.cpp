//===- QuantTokenize.cpp - The quant-tokenize tool ------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Argument parsing and output of quant-tokenize. Like llama.cpp's
// llama-tokenize, it is the way to check, outside any model run, that qc
// splits a text exactly as the reference tokenizer does; --json gives the
// ids in a form scripts can compare with Hugging Face's output.
//
//===----------------------------------------------------------------------===//

#include "QuantTokenize.h"

#include "qc/runtime/Json.h"
#include "qc/runtime/TextTokenizer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace qc {
namespace tools {
namespace {

const char *kUsage =
    "usage: quant-tokenize SOURCE [--text S | --file F] [--json] [--pieces]\n"
    "                      [--decode IDS] [--add-special | --no-add-special]\n"
    "                      [--vocab-size N]\n"
    "\n"
    "Tokenizes text with a model's tokenizer, or decodes ids back to text.\n"
    "SOURCE is a tokenizer.json, a GGUF file, a model folder holding\n"
    "tokenizer.json (with tokenizer_config.json / config.json), or a llama2.c\n"
    "tokenizer.bin (which needs --vocab-size).\n"
    "\n"
    "  --text S          the text to tokenize\n"
    "  --file F          tokenize the bytes of file F (default: standard "
    "input)\n"
    "  --json            print one JSON object: ids, count, bos_added,\n"
    "                    eos_added (and pieces with --pieces)\n"
    "  --pieces          also print each token's text\n"
    "  --decode IDS      print the text of IDS (\"1,2,3\" or \"[1, 2, 3]\")\n"
    "  --add-special     add the BOS/EOS the source's configuration adds\n"
    "                    (the default)\n"
    "  --no-add-special  add no BOS/EOS\n"
    "  --vocab-size N    vocabulary size of a llama2.c tokenizer.bin\n"
    "  --help            this text\n"
    "\n"
    "Special tokens written in the text (e.g. <|im_start|>) are matched as\n"
    "special tokens, as Hugging Face tokenizers do.\n"
    "\n"
    "example:\n"
    "  quant-tokenize ../shared/models/smollm2-135m --text 'Hello world' "
    "--json\n"
    "  {\"source\":\"../shared/models/smollm2-135m\",...,\"bos_added\":false,"
    "...,\"ids\":[19556,905]}\n";

/// Reads a whole file as bytes.
bool readAll(const std::string &path, std::string &out, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in),
             std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = path + ": cannot read";
    return false;
  }
  return true;
}

} // namespace

int quantTokenizeMain(int argc, char **argv, std::ostream &out,
                      std::ostream &err) {
  std::string source, text, file, decodeIds;
  bool haveText = false, haveFile = false, haveDecode = false;
  bool asJson = false, pieces = false, addSpecial = true;
  int64_t vocabSize = 0;
  auto usageError = [&](const std::string &msg) {
    err << "quant-tokenize: " << msg << " (see --help)\n";
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string &dst) {
      if (i + 1 >= argc)
        return false;
      dst = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    } else if (a == "--text") {
      if (!value(text))
        return usageError("--text needs a value");
      haveText = true;
    } else if (a == "--file") {
      if (!value(file))
        return usageError("--file needs a value");
      haveFile = true;
    } else if (a == "--decode") {
      if (!value(decodeIds))
        return usageError("--decode needs a value");
      haveDecode = true;
    } else if (a == "--json") {
      asJson = true;
    } else if (a == "--pieces") {
      pieces = true;
    } else if (a == "--add-special") {
      addSpecial = true;
    } else if (a == "--no-add-special") {
      addSpecial = false;
    } else if (a == "--vocab-size") {
      std::string v;
      if (!value(v))
        return usageError("--vocab-size needs a value");
      char *end = nullptr;
      errno = 0;
      long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || n <= 0)
        return usageError("--vocab-size expects a positive integer, got '" + v +
                          "'");
      vocabSize = n;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return usageError("unknown option '" + a + "'");
    } else if (source.empty()) {
      source = a;
    } else {
      return usageError("unexpected argument '" + a + "'");
    }
  }
  if (source.empty())
    return usageError("missing SOURCE");
  if (haveText && haveFile)
    return usageError("--text and --file are exclusive");
  if (haveDecode && (haveText || haveFile))
    return usageError("--decode does not take --text or --file");

  TokenizerLoadOptions opts;
  opts.llama2cVocabSize = vocabSize;
  std::unique_ptr<TextTokenizer> tok;
  if (Status s = loadTokenizer(source, tok, opts); !s) {
    err << "quant-tokenize: " << s.message() << "\n";
    return 1;
  }

  if (haveDecode) {
    std::vector<int> ids;
    if (Status s = parseIdList(decodeIds, ids); !s) {
      err << "quant-tokenize: --decode: " << s.message() << "\n";
      return 1;
    }
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= tok->vocabSize()) {
        err << "quant-tokenize: --decode: id " << ids[i] << " (position " << i
            << ") is outside the vocabulary of " << tok->vocabSize()
            << " tokens\n";
        return 1;
      }
    std::string decoded = tok->decode(ids);
    if (asJson) {
      json::Value o = json::Value::object();
      o.set("source", json::Value::string(source));
      o.set("text", json::Value::string(decoded));
      out << json::write(o) << "\n";
    } else {
      out << decoded << "\n";
    }
    return 0;
  }

  if (haveFile) {
    std::string error;
    if (!readAll(file, text, error)) {
      err << "quant-tokenize: " << error << "\n";
      return 1;
    }
  } else if (!haveText) {
    text.assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
  }
  std::vector<int> ids;
  if (Status s = tok->encode(text, addSpecial, ids); !s) {
    err << "quant-tokenize: " << s.message() << "\n";
    return 1;
  }
  bool bosAdded = addSpecial && tok->addsBos();
  bool eosAdded = addSpecial && tok->addsEos();
  std::vector<std::string> texts;
  if (pieces)
    for (size_t i = 0; i < ids.size(); ++i)
      texts.push_back(tok->decodePiece(i ? ids[i - 1] : -1, ids[i]));
  if (asJson) {
    json::Value o = json::Value::object();
    o.set("source", json::Value::string(source));
    o.set("tokenizer", json::Value::string(tok->describe()));
    o.set("bos_added", json::Value::boolean(bosAdded));
    o.set("eos_added", json::Value::boolean(eosAdded));
    o.set("count", json::Value::integer(static_cast<int64_t>(ids.size())));
    json::Value arr = json::Value::array();
    for (int id : ids)
      arr.push(json::Value::integer(id));
    o.set("ids", std::move(arr));
    if (pieces) {
      json::Value ps = json::Value::array();
      for (const std::string &t : texts)
        ps.push(json::Value::string(t));
      o.set("pieces", std::move(ps));
    }
    out << json::write(o) << "\n";
    return 0;
  }
  if (pieces) {
    for (size_t i = 0; i < ids.size(); ++i)
      out << ids[i] << "\t" << json::quote(texts[i], 1 << 20) << "\n";
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i)
    out << (i ? " " : "") << ids[i];
  out << "\n";
  return 0;
}

} // namespace tools
} // namespace qc
