//===- TextTokenizer.cpp - Tokenizer sources and the factory --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// loadTokenizer() decides what a source is (a model folder, a GGUF file, a
// tokenizer.json or a llama2.c tokenizer.bin) and hands it to the right
// loader. The llama2.c tokenizer keeps its own implementation (Tokenizer.h,
// which reproduces run.c exactly); it is wrapped here so that the tools see
// one interface.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TextTokenizer.h"

#include "TokenizerPipeline.h"

#include "qc/runtime/Gguf.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Tokenizer.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <sys/stat.h>

namespace qc {

namespace {

/// Largest JSON file read (tokenizer.json of large vocabularies is ~20 MB).
constexpr int64_t kMaxJsonBytes = int64_t(256) << 20;

/// The llama2.c tokenizer behind the common interface.
class Llama2cTokenizer final : public TextTokenizer {
public:
  Llama2cTokenizer(Tokenizer t, bool addBos) : tok(std::move(t)), bos(addBos) {}

  Status encode(std::string_view text, bool addSpecial,
                std::vector<int> &out) const override {
    tok.encode(std::string(text), addSpecial && bos, false, out);
    return Status::ok();
  }
  std::string decode(const std::vector<int> &ids,
                     bool /*skipSpecial*/) const override {
    // run.c's decode never prints BOS/EOS, so they are always skipped.
    return tok.decode(ids);
  }
  std::string decodePiece(int prev, int id) const override {
    if (id == Tokenizer::kBosId || id == Tokenizer::kEosId)
      return std::string();
    return tok.decodePiece(prev, id);
  }
  int64_t vocabSize() const override { return tok.size(); }
  int bosId() const override { return Tokenizer::kBosId; }
  int eosId() const override { return Tokenizer::kEosId; }
  bool addsBos() const override { return bos; }
  bool addsEos() const override { return false; }
  std::string tokenPiece(int id) const override {
    return id >= 0 && id < tok.size() ? tok.piece(id) : std::string();
  }
  int pieceId(std::string_view piece) const override {
    return tok.lookup(std::string(piece));
  }
  bool isSpecial(int id) const override {
    return id == 0 || id == Tokenizer::kBosId || id == Tokenizer::kEosId;
  }
  std::vector<int> specialIds() const override { return {0, 1, 2}; }
  std::string describe() const override { return "llama2.c tokenizer.bin"; }
  const Tokenizer *llama2c() const override { return &tok; }

private:
  Tokenizer tok;
  bool bos;
};

/// Reads a whole (small) file; errors name the path.
Status readFile(const std::string &path, std::string &out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::error(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::error(path + ": not a regular file");
  if (st.st_size > kMaxJsonBytes)
    return Status::error(path + ": " + std::to_string(st.st_size) +
                         " bytes is larger than the " +
                         std::to_string(kMaxJsonBytes) + "-byte limit");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  out.assign(static_cast<size_t>(st.st_size), '\0');
  in.read(out.data(), st.st_size);
  if (!in || in.gcount() != st.st_size)
    return Status::error(path + ": cannot read");
  return Status::ok();
}

bool isFile(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool isDir(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// Loads tokenizer.json with the configuration files in `dir` (if any).
Status loadJsonWithConfigs(const std::string &jsonPath, const std::string &dir,
                           std::unique_ptr<TextTokenizer> &out) {
  std::string tj, tc, mc;
  QC_RETURN_IF_ERROR(readFile(jsonPath, tj));
  std::string tcPath = dir + "/tokenizer_config.json";
  std::string mcPath = dir + "/config.json";
  if (isFile(tcPath))
    QC_RETURN_IF_ERROR(readFile(tcPath, tc));
  if (isFile(mcPath))
    QC_RETURN_IF_ERROR(readFile(mcPath, mc));
  return loadHFTokenizerJson(tj, tc, mc, jsonPath, out);
}

} // namespace

Status readGgufTokenizerData(const GgufFile &f, GgufTokenizerData &d) {
  d = GgufTokenizerData();
  QC_RETURN_IF_ERROR(f.getString("tokenizer.ggml.model", d.model));
  if (f.has("tokenizer.ggml.pre"))
    QC_RETURN_IF_ERROR(f.getString("tokenizer.ggml.pre", d.pre));
  QC_RETURN_IF_ERROR(f.getStringArray("tokenizer.ggml.tokens", d.tokens));
  if (f.has("tokenizer.ggml.scores"))
    QC_RETURN_IF_ERROR(f.getF32Array("tokenizer.ggml.scores", d.scores));
  if (f.has("tokenizer.ggml.token_type"))
    QC_RETURN_IF_ERROR(
        f.getI32Array("tokenizer.ggml.token_type", d.tokenTypes));
  if (f.has("tokenizer.ggml.merges"))
    QC_RETURN_IF_ERROR(f.getStringArray("tokenizer.ggml.merges", d.merges));
  const std::pair<const char *, int64_t *> ids[] = {
      {"tokenizer.ggml.bos_token_id", &d.bosId},
      {"tokenizer.ggml.eos_token_id", &d.eosId},
      {"tokenizer.ggml.unknown_token_id", &d.unkId},
      {"tokenizer.ggml.padding_token_id", &d.padId}};
  for (auto &[key, dst] : ids)
    if (f.has(key))
      QC_RETURN_IF_ERROR(f.getI64(key, *dst));
  const std::pair<const char *, std::optional<bool> *> flags[] = {
      {"tokenizer.ggml.add_bos_token", &d.addBos},
      {"tokenizer.ggml.add_eos_token", &d.addEos},
      {"tokenizer.ggml.add_space_prefix", &d.addSpacePrefix}};
  for (auto &[key, dst] : flags)
    if (f.has(key)) {
      bool b = false;
      QC_RETURN_IF_ERROR(f.getBool(key, b));
      *dst = b;
    }
  if (f.has("tokenizer.chat_template")) {
    std::string t;
    QC_RETURN_IF_ERROR(f.getString("tokenizer.chat_template", t));
    d.chatTemplate = std::move(t);
  }
  return Status::ok();
}

namespace {

/// True when the file starts with the GGUF magic.
bool hasGgufMagic(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

} // namespace

Status loadTokenizer(const std::string &source,
                     std::unique_ptr<TextTokenizer> &out,
                     const TokenizerLoadOptions &options) {
  if (isDir(source)) {
    std::string tj = source + "/tokenizer.json";
    if (!isFile(tj))
      return Status::error(source +
                           ": model folder has no tokenizer.json (a GGUF "
                           "file or a tokenizer.bin can be given directly)");
    return loadJsonWithConfigs(tj, source, out);
  }
  struct stat st;
  if (::stat(source.c_str(), &st) != 0)
    return Status::error(source + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::error(source + ": not a regular file or directory");
  if (hasGgufMagic(source)) {
    std::unique_ptr<GgufFile> f;
    QC_RETURN_IF_ERROR(GgufFile::open(source, f));
    GgufTokenizerData d;
    QC_RETURN_IF_ERROR(readGgufTokenizerData(*f, d));
    return loadGgufTokenizer(d, source, out);
  }
  if (source.size() >= 5 &&
      source.compare(source.size() - 5, 5, ".json") == 0) {
    size_t slash = source.find_last_of('/');
    std::string dir =
        slash == std::string::npos ? "." : source.substr(0, slash);
    if (dir.empty())
      dir = "/";
    return loadJsonWithConfigs(source, dir, out);
  }
  if (options.llama2cVocabSize <= 0)
    return Status::error(source + ": not a GGUF file or a .json file; as a "
                                  "llama2.c tokenizer.bin it needs the "
                                  "vocabulary size (e.g. --vocab-size)");
  Tokenizer t;
  QC_RETURN_IF_ERROR(Tokenizer::load(source, options.llama2cVocabSize, t));
  out = std::make_unique<Llama2cTokenizer>(std::move(t), options.llama2cAddBos);
  return Status::ok();
}

Status parseIdList(std::string_view text, std::vector<int> &out) {
  out.clear();
  size_t i = 0;
  const size_t n = text.size();
  auto skip = [&]() {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                     text[i] == '\r' || text[i] == ','))
      ++i;
  };
  skip();
  bool bracket = i < n && text[i] == '[';
  if (bracket)
    ++i;
  while (true) {
    skip();
    if (i >= n || text[i] == ']')
      break;
    size_t start = i;
    int64_t v = 0;
    while (i < n && text[i] >= '0' && text[i] <= '9') {
      v = v * 10 + (text[i] - '0');
      if (v > INT32_MAX)
        return Status::error("id list: number at character " +
                             std::to_string(start) + " is too large");
      ++i;
    }
    if (i == start)
      return Status::error("id list: expected a non-negative integer at "
                           "character " +
                           std::to_string(start) + " of " + json::quote(text));
    out.push_back(static_cast<int>(v));
  }
  if (bracket) {
    if (i >= n || text[i] != ']')
      return Status::error("id list: missing ']'");
    ++i;
    skip();
  }
  if (i != n)
    return Status::error("id list: unexpected text at character " +
                         std::to_string(i) + " of " + json::quote(text));
  return Status::ok();
}

} // namespace qc
