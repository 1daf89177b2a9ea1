//===- Llama2C.cpp - llama2.c checkpoint importer ---------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Parses llama2.c v0 checkpoints: a 7 x int32 header followed by raw
// little-endian fp32 arrays in the order llama2.c's run.c memory-maps them
// (`memory_map_weights`). The file carries no tensor names or shapes, so the
// header alone defines the layout; a corrupted header would otherwise read
// garbage or allocate absurd sizes, hence the strict validation and the
// exact-file-size check before any tensor is allocated.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Llama2C.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// The file stores fp32/int32 little-endian and we read it with memcpy-like
// stream reads, so a big-endian host would silently misread it.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&             \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the llama2.c reader assumes a little-endian host"
#endif

namespace qc {
namespace {

/// Multiplies with overflow detection; false when `a * b` overflows int64.
bool checkedMul(int64_t a, int64_t b, int64_t &out) {
  return !__builtin_mul_overflow(a, b, &out);
}

/// Adds with overflow detection; false when `a + b` overflows int64.
bool checkedAdd(int64_t a, int64_t b, int64_t &out) {
  return !__builtin_add_overflow(a, b, &out);
}

/// Renders the header for error messages, so a size mismatch shows which
/// configuration the expectation came from.
std::string describe(const Llama2CHeader &h) {
  std::ostringstream os;
  os << "dim=" << h.dim << " hidden_dim=" << h.hiddenDim
     << " n_layers=" << h.nLayers << " n_heads=" << h.nHeads
     << " n_kv_heads=" << h.nKVHeads << " vocab_size=" << h.vocabSize
     << " seq_len=" << h.seqLen;
  return os.str();
}

/// Returns an error unless the `n` values at `v` are finite; the message
/// names the tensor and the first bad element: its flat index in the whole
/// tensor (`v` starts at flat index `first`) and, for a matrix of `cols`
/// columns (0 otherwise), its row and column.
Status checkFinite(const std::string &path, const std::string &name,
                   const float *v, size_t n, int64_t first, int64_t cols) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(v[i]))
      continue;
    const int64_t at = first + static_cast<int64_t>(i);
    std::ostringstream os;
    os << path << ": tensor '" << name << "' holds a non-finite value ("
       << (std::isnan(v[i]) ? "NaN" : (v[i] > 0 ? "+Inf" : "-Inf"))
       << ") at flat index " << at;
    if (cols > 0)
      os << " (row " << at / cols << ", col " << at % cols << ")";
    return Status::error(os.str());
  }
  return Status::ok();
}

/// Columns of `shape` when it is a matrix, else 0 (no row/col in messages).
int64_t matrixCols(const std::vector<int64_t> &shape) {
  return shape.size() == 2 ? shape[1] : 0;
}

/// The checkpoint file held open for the loaders of a lazy load; closed
/// when the last tensor that reads from it goes.
struct OpenFile {
  std::string path;
  int fd = -1;
  ~OpenFile() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Rows [first, first + count) of the fp32 tensor `name` stored at byte
/// `offset` of `file` with `rowElems` values per row, checked finite as an
/// eager load checks it (`cols` as for checkFinite).
Status readRows(const OpenFile &file, const std::string &name, int64_t offset,
                int64_t rows, int64_t rowElems, int64_t cols, int64_t first,
                int64_t count, std::vector<float> &out) {
  if (first < 0 || count < 0 || first > rows || count > rows - first)
    return Status::error(file.path + ": rows [" + std::to_string(first) + ", " +
                         std::to_string(first + count) + ") of tensor '" +
                         name + "' are outside its " + std::to_string(rows) +
                         " rows");
  out.resize(static_cast<size_t>(count * rowElems));
  auto *dst = reinterpret_cast<char *>(out.data());
  size_t left = out.size() * sizeof(float);
  off_t at = static_cast<off_t>(offset + first * rowElems * 4);
  while (left > 0) {
    ssize_t got = ::pread(file.fd, dst, left, at);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return Status::error(file.path + ": short read of tensor '" + name +
                           "' (was the file modified after it was opened?)");
    dst += got;
    left -= static_cast<size_t>(got);
    at += got;
  }
  return checkFinite(file.path, name, out.data(), out.size(), first * rowElems,
                     cols);
}

/// Reads the next tensor of `shape` from `in` into `out.tensors[name]` and
/// checks it is finite; with `lazy` set, only records where it is and
/// skips it. The caller has already proven that the file holds enough
/// bytes, so a short read here means the file changed under us.
Status readTensor(std::ifstream &in, const std::string &path,
                  const std::string &name, std::vector<int64_t> shape,
                  ModelWeights &out,
                  const std::shared_ptr<OpenFile> &lazy = nullptr) {
  HostTensor t;
  t.shape = std::move(shape);
  int64_t n = t.numElements();
  if (lazy) {
    int64_t offset = static_cast<int64_t>(in.tellg());
    int64_t rows = t.rows(), rowElems = rows > 0 ? n / rows : 0,
            cols = matrixCols(t.shape);
    t.load = [lazy, name, offset, rows, rowElems,
              cols](int64_t first, int64_t count, std::vector<float> &v) {
      return readRows(*lazy, name, offset, rows, rowElems, cols, first, count,
                      v);
    };
    in.seekg(static_cast<std::streamoff>(n * sizeof(float)), std::ios::cur);
    out.tensors.emplace(name, std::move(t));
    return Status::ok();
  }
  t.data.resize(static_cast<size_t>(n));
  in.read(reinterpret_cast<char *>(t.data.data()),
          static_cast<std::streamsize>(n * sizeof(float)));
  if (!in || in.gcount() != static_cast<std::streamsize>(n * sizeof(float)))
    return Status::error(path + ": short read of tensor '" + name +
                         "' (was the file modified while loading?)");
  QC_RETURN_IF_ERROR(checkFinite(path, name, t.data.data(), t.data.size(), 0,
                                 matrixCols(t.shape)));
  out.tensors.emplace(name, std::move(t));
  return Status::ok();
}

} // namespace

Status validateLlama2CHeader(const Llama2CHeader &h, const std::string &path,
                             int64_t &expectedBytes) {
  auto bad = [&](const std::string &what) {
    return Status::error(path + ": invalid llama2.c header (" + describe(h) +
                         "): " + what);
  };
  // Each field must be positive and below its cap; vocab_size is checked by
  // magnitude because its sign only encodes tied vs untied.
  struct Field {
    const char *name;
    int64_t value;
    int64_t cap;
  } fields[] = {
      {"dim", h.dim, kLlama2CMaxDim},
      {"hidden_dim", h.hiddenDim, kLlama2CMaxHiddenDim},
      {"n_layers", h.nLayers, kLlama2CMaxLayers},
      {"n_heads", h.nHeads, kLlama2CMaxDim},
      {"n_kv_heads", h.nKVHeads, kLlama2CMaxDim},
      {"|vocab_size|", std::llabs(static_cast<int64_t>(h.vocabSize)),
       kLlama2CMaxVocab},
      {"seq_len", h.seqLen, kLlama2CMaxSeqLen},
  };
  for (const Field &f : fields) {
    if (f.value <= 0)
      return bad(std::string(f.name) + " must be positive");
    if (f.value > f.cap)
      return bad(std::string(f.name) + " exceeds the limit " +
                 std::to_string(f.cap));
  }
  if (h.dim % h.nHeads != 0)
    return bad("dim is not divisible by n_heads");
  if (h.nHeads % h.nKVHeads != 0)
    return bad("n_heads is not divisible by n_kv_heads");
  const int64_t headSize = h.dim / h.nHeads;
  // Interleaved RoPE rotates (2i, 2i+1) pairs, and the file's RoPE tables
  // hold seq_len * head_size / 2 entries each; an odd head size fits neither.
  if (headSize % 2 != 0)
    return bad("head size dim/n_heads = " + std::to_string(headSize) +
               " is odd; RoPE needs an even head size");

  const int64_t dim = h.dim, hidden = h.hiddenDim, layers = h.nLayers;
  const int64_t vocab = std::llabs(static_cast<int64_t>(h.vocabSize));
  const int64_t kvDim = headSize * h.nKVHeads;
  // Per-layer float count: 2 norms, wq, wk, wv, wo, w1, w2, w3.
  int64_t perLayer = 0, t = 0;
  bool ok = true;
  auto add = [&](int64_t a, int64_t b) {
    ok = ok && checkedMul(a, b, t) && checkedAdd(perLayer, t, perLayer);
  };
  add(2, dim);          // rms_att, rms_ffn
  add(dim, dim);        // wq
  add(2 * kvDim, dim);  // wk, wv
  add(dim, dim);        // wo
  add(3 * hidden, dim); // w1, w2, w3
  int64_t total = 0;
  ok = ok && checkedMul(perLayer, layers, total);
  ok = ok && checkedMul(vocab, dim, t) && checkedAdd(total, t, total);
  ok = ok && checkedAdd(total, dim, total); // rms_final
  // freq_cis_real and freq_cis_imag: seq_len * head_size / 2 each.
  ok = ok && checkedMul(h.seqLen, headSize, t) && checkedAdd(total, t, total);
  if (h.vocabSize < 0) // untied classifier after the RoPE tables
    ok = ok && checkedMul(vocab, dim, t) && checkedAdd(total, t, total);
  ok = ok && checkedMul(total, 4, total) &&
       checkedAdd(total, kLlama2CHeaderBytes, total);
  if (!ok)
    return bad("implied file size overflows 64-bit arithmetic");
  expectedBytes = total;
  return Status::ok();
}

Status loadLlama2C(const std::string &path, ModelWeights &out,
                   const LoadOptions &options) {
  // A directory opens fine as an ifstream on Linux and then reports a bogus
  // size, so reject anything that is not a regular file up front.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(
        path + ": cannot open llama2.c checkpoint: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff fileSize = in.tellg();
  if (fileSize < 0)
    return Status::error(path + ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  if (fileSize < kLlama2CHeaderBytes)
    return Status::error(path + ": file is " + std::to_string(fileSize) +
                         " bytes, too small for the 28-byte llama2.c header");

  int32_t raw[7];
  in.read(reinterpret_cast<char *>(raw), sizeof(raw));
  if (!in)
    return Status::error(path + ": cannot read the llama2.c header");
  Llama2CHeader h;
  h.dim = raw[0];
  h.hiddenDim = raw[1];
  h.nLayers = raw[2];
  h.nHeads = raw[3];
  h.nKVHeads = raw[4];
  h.vocabSize = raw[5];
  h.seqLen = raw[6];

  int64_t expected = 0;
  QC_RETURN_IF_ERROR(validateLlama2CHeader(h, path, expected));
  if (static_cast<int64_t>(fileSize) != expected)
    return Status::error(
        path + ": file size mismatch: the llama2.c header (" + describe(h) +
        ") implies " + std::to_string(expected) + " bytes but the file has " +
        std::to_string(static_cast<int64_t>(fileSize)) + " bytes" +
        (static_cast<int64_t>(fileSize) < expected ? " (truncated?)"
                                                   : " (trailing data?)"));

  const int64_t dim = h.dim, hidden = h.hiddenDim, layers = h.nLayers;
  const int64_t vocab = std::llabs(static_cast<int64_t>(h.vocabSize));
  const int64_t headSize = dim / h.nHeads;
  const int64_t kvDim = headSize * h.nKVHeads;

  std::shared_ptr<OpenFile> lazy;
  if (options.lazy) {
    lazy = std::make_shared<OpenFile>();
    lazy->path = path;
    lazy->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lazy->fd < 0)
      return Status::error(
          path + ": cannot open llama2.c checkpoint: " + std::strerror(errno));
  }

  ModelWeights w;
  ModelConfig &c = w.config;
  c.modelType = "llama";
  c.dim = dim;
  c.hiddenDim = hidden;
  c.nLayers = layers;
  c.nHeads = h.nHeads;
  c.nKVHeads = h.nKVHeads;
  c.headDim = headSize;
  c.vocabSize = vocab;
  c.maxSeqLen = h.seqLen;
  // llama2.c hard-codes these in run.c rather than storing them.
  c.normEps = 1e-5f;
  c.ropeTheta = 10000.0f;
  c.tiedEmbeddings = h.vocabSize > 0;
  c.attentionBias = false;
  c.ropeLayout = RopeLayout::Interleaved;
  c.bosId = 1;
  c.eosId = 2;

  QC_RETURN_IF_ERROR(
      readTensor(in, path, "model.embed_tokens.weight", {vocab, dim}, w, lazy));
  // The file groups each kind of parameter across all layers, so we walk it
  // kind by kind rather than layer by layer.
  struct Kind {
    std::string suffix;
    std::vector<int64_t> shape;
  } kinds[] = {
      {"input_layernorm.weight", {dim}},
      {"self_attn.q_proj.weight", {dim, dim}},
      {"self_attn.k_proj.weight", {kvDim, dim}},
      {"self_attn.v_proj.weight", {kvDim, dim}},
      {"self_attn.o_proj.weight", {dim, dim}},
      {"post_attention_layernorm.weight", {dim}},
      {"mlp.gate_proj.weight", {hidden, dim}},
      {"mlp.down_proj.weight", {dim, hidden}},
      {"mlp.up_proj.weight", {hidden, dim}},
  };
  for (const Kind &k : kinds)
    for (int64_t l = 0; l < layers; ++l)
      QC_RETURN_IF_ERROR(
          readTensor(in, path, layerTensorName(l, k.suffix), k.shape, w, lazy));
  QC_RETURN_IF_ERROR(readTensor(in, path, "model.norm.weight", {dim}, w, lazy));

  if (h.vocabSize < 0) {
    // Skip freq_cis_real/imag: they only cache cos/sin of the RoPE angles,
    // which the executor recomputes from ropeTheta.
    in.seekg(static_cast<std::streamoff>(h.seqLen * headSize * 4),
             std::ios::cur);
    QC_RETURN_IF_ERROR(
        readTensor(in, path, "lm_head.weight", {vocab, dim}, w, lazy));
  }
  out = std::move(w);
  return Status::ok();
}

} // namespace qc
