//===- Artifact.cpp - The compiled-artifact file format -------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// One validator (validateArtifact) serves both directions: the writer runs
// it so that a producer bug never reaches disk, and the reader runs it after
// decoding so that a hand-edited or corrupted file fails with the same
// messages. Decoding itself only checks the container (header, checksum,
// section tiling) and the JSON types, and rejects unknown manifest keys so
// that a typo in a producer is an error rather than a silently ignored
// field.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Artifact.h"

#include "qc/runtime/Json.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string_view>

#include <sys/stat.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the artifact format is little-endian");

namespace qc {

namespace {

constexpr uint8_t kMagic[8] = {0x89, 'Q', 'C', 'A', 'R', 'T', '\r', '\n'};
constexpr uint32_t kHeaderBytes = 48;
constexpr uint64_t kSectionAlign = 64;
/// A manifest is a few KB per layer; 256 MB is far beyond any model and
/// bounds what a hostile header can make us allocate.
constexpr uint64_t kMaxManifestBytes = 256ull << 20;
/// Largest dynamic shared memory any current GPU offers is 227 KB.
constexpr uint32_t kMaxSharedBytes = 256u << 10;

uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t alignUp(uint64_t v) {
  return (v + kSectionAlign - 1) / kSectionAlign * kSectionAlign;
}

uint32_t loadU32(const uint8_t *p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t loadU64(const uint8_t *p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void storeU32(uint8_t *p, uint32_t v) { std::memcpy(p, &v, 4); }
void storeU64(uint8_t *p, uint64_t v) { std::memcpy(p, &v, 8); }

std::string q(const std::string &s) { return json::quote(s); }

std::string joinNames(const std::vector<std::string> &v) {
  std::string r;
  for (const auto &s : v)
    r += (r.empty() ? "" : ", ") + s;
  return r.empty() ? "none" : r;
}

bool isCubinTarget(const std::string &t) {
  // sm_<digits>[a|f]
  if (t.size() < 4 || t.compare(0, 3, "sm_") != 0)
    return false;
  size_t i = 3, d = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9')
    ++i, ++d;
  if (d == 0)
    return false;
  return i == t.size() || (i + 1 == t.size() && (t[i] == 'a' || t[i] == 'f'));
}

bool isPtxTarget(const std::string &t) {
  if (t == "ptx")
    return true;
  if (t.size() < 9 || t.compare(0, 8, "compute_") != 0)
    return false;
  return isCubinTarget("sm_" + t.substr(8));
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

Status validateLayerTensors(const Artifact &a, const ArtifactLayer &l,
                            const std::string &where) {
  if (l.tensors.empty())
    return Status::ok(); // kernel-only layer
  int64_t Np, Kp, G;
  QC_RETURN_IF_ERROR(mma16x64Dims(l.bits, l.N, l.K, l.groupSize, Np, Kp, G)
                         .withContext(where));
  struct Want {
    const char *role;
    DType dtype;
    std::vector<int64_t> shape;
    bool required;
  };
  std::vector<Want> wants = {{"qweight", DType::I32, {Np * Kp / 8}, true},
                             {"scales", DType::F16, {G, Np}, true},
                             {"zeros", DType::F16, {G, Np}, !l.sym}};
  for (const auto &kv : l.tensors)
    if (kv.first != "qweight" && kv.first != "scales" && kv.first != "zeros")
      return Status::error(where + ": unknown tensor role " + q(kv.first) +
                           " (expected qweight, scales, zeros)");
  if (l.sym && l.tensors.count("zeros"))
    return Status::error(where +
                         ": symmetric layer must not have a zeros tensor");
  for (const Want &w : wants) {
    auto it = l.tensors.find(w.role);
    if (it == l.tensors.end()) {
      if (w.required)
        return Status::error(where + ": no " + w.role + " tensor");
      continue;
    }
    auto t = a.tensors.find(it->second);
    if (t == a.tensors.end())
      return Status::error(where + ": " + w.role + " tensor " + q(it->second) +
                           " is not in the artifact");
    std::string shape;
    for (int64_t d : w.shape)
      shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    if (t->second.dtype != w.dtype || t->second.shape != w.shape)
      return Status::error(where + ": " + w.role + " tensor " + q(it->second) +
                           " must be " + dtypeName(w.dtype) + " [" + shape +
                           "] for the " + l.layout + " layout");
  }
  return Status::ok();
}

Status validateLaunch(const Artifact &a, const ArtifactLayer &l,
                      const ArtifactVariant &v, const ArtifactLaunch &L,
                      const std::string &where) {
  const ArtifactModule *m = findModule(a, L.module);
  if (!m)
    return Status::error(where + ": module " + q(L.module) +
                         " is not in the artifact");
  if (std::find(m->kernels.begin(), m->kernels.end(), L.kernel) ==
      m->kernels.end())
    return Status::error(where + ": kernel " + q(L.kernel) +
                         " is missing from module " + q(L.module) +
                         " (its kernels: " + joinNames(m->kernels) + ")");
  const std::string kw = where + " (kernel " + q(L.kernel) + ")";
  uint64_t threads = 1;
  for (uint32_t b : L.block) {
    if (b == 0)
      return Status::error(kw + ": block dimension 0");
    threads *= b;
  }
  if (threads > 1024)
    return Status::error(kw + ": " + std::to_string(threads) +
                         " threads per block (at most 1024)");
  if (L.gridX == 0 || L.tileM == 0 || L.gridZ == 0)
    return Status::error(kw + ": gridX, tileM and gridZ must be >= 1");
  if (L.sharedBytes > kMaxSharedBytes)
    return Status::error(kw + ": " + std::to_string(L.sharedBytes) +
                         " bytes of shared memory is more than any GPU has");
  std::set<std::string> seen;
  for (const std::string &p : L.params) {
    if (!isArtifactParamName(p))
      return Status::error(kw + ": unknown parameter " + q(p) +
                           " (known: x, qweight, scales, zeros, y, workspace, "
                           "w, M)");
    if (!seen.insert(p).second)
      return Status::error(kw + ": parameter " + q(p) + " passed twice");
    if (p == "zeros" && l.sym)
      return Status::error(kw + ": passes zeros but the layer is symmetric");
    if (p == "workspace" && v.workspaceBytesPerRow == 0)
      return Status::error(kw + ": passes workspace but the variant sizes "
                                "none (workspace_bytes_per_row is 0)");
    bool dequant = variantAbi(v) == KernelAbi::DequantW;
    if (dequant && (p == "x" || p == "y"))
      return Status::error(kw +
                           ": a dequant variant writes w, it cannot take " + p);
    if (!dequant && p == "w")
      return Status::error(kw + ": only a dequant variant takes w");
  }
  return Status::ok();
}

Status validateLayer(const Artifact &a, const ArtifactLayer &l,
                     const std::string &file) {
  const std::string where = file + ": layer " + q(l.name);
  if (l.layout != "mma16x64")
    return Status::error(where + ": unknown weight layout " + q(l.layout) +
                         " (expected mma16x64)");
  int64_t Np, Kp, G;
  QC_RETURN_IF_ERROR(mma16x64Dims(l.bits, l.N, l.K, l.groupSize, Np, Kp, G)
                         .withContext(where));
  QC_RETURN_IF_ERROR(validateLayerTensors(a, l, where));
  if (l.variants.empty())
    return Status::error(where + ": no kernel variants");
  for (size_t vi = 0; vi < l.variants.size(); ++vi) {
    const ArtifactVariant &v = l.variants[vi];
    const std::string vw =
        where + ": variant " + std::to_string(vi) + " (" + v.family + ")";
    KernelAbi builtin;
    bool known = builtinFamilyAbi(v.family, builtin);
    if (v.family.empty())
      return Status::error(where + ": variant " + std::to_string(vi) +
                           ": empty family name");
    if (!known && !v.abi)
      return Status::error(where + ": variant " + std::to_string(vi) +
                           ": unknown family " + q(v.family) +
                           " without an \"abi\" (built-in families: splitk, "
                           "mma, dequant; ABIs: " +
                           kernelAbiNames() + ")");
    if (v.minM < 1 || v.maxM < v.minM || v.maxM > (int64_t(1) << 31) - 1)
      return Status::error(vw + ": invalid M range [" + std::to_string(v.minM) +
                           ", " + std::to_string(v.maxM) + "]");
    if (v.launches.empty())
      return Status::error(vw + ": no launches");
    if (v.zeroWorkspace && v.workspaceBytesPerRow == 0)
      return Status::error(vw + ": zero_workspace without a workspace");
    if (v.workspaceBytesPerRow > (uint64_t(1) << 32))
      return Status::error(vw + ": workspace of " +
                           std::to_string(v.workspaceBytesPerRow) +
                           " bytes per row is implausible");
    if (variantAbi(v) == KernelAbi::Gemm)
      for (size_t wi = 0; wi < vi; ++wi) {
        const ArtifactVariant &o = l.variants[wi];
        if (variantAbi(o) == KernelAbi::Gemm && o.minM <= v.maxM &&
            v.minM <= o.maxM)
          return Status::error(vw + ": M range [" + std::to_string(v.minM) +
                               ", " + std::to_string(v.maxM) +
                               "] overlaps variant " + std::to_string(wi) +
                               " [" + std::to_string(o.minM) + ", " +
                               std::to_string(o.maxM) + "]");
      }
    for (size_t li = 0; li < v.launches.size(); ++li)
      QC_RETURN_IF_ERROR(validateLaunch(a, l, v, v.launches[li],
                                        vw + ": launch " + std::to_string(li)));
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Manifest encoding
//===----------------------------------------------------------------------===//

json::Value u64(uint64_t v) { return json::Value::unsignedInteger(v); }
json::Value i64(int64_t v) { return json::Value::integer(v); }
json::Value str(const std::string &s) { return json::Value::string(s); }

json::Value strings(const std::vector<std::string> &v) {
  json::Value a = json::Value::array();
  for (const auto &s : v)
    a.push(str(s));
  return a;
}

/// Reads manifest objects with typed, located errors.
class Reader {
public:
  Reader(const json::Value &v, std::string where)
      : v(v), where(std::move(where)) {}

  /// Fails unless `v` is an object whose keys are all in `allowed`.
  Status object(std::initializer_list<const char *> allowed) const {
    if (!v.isObject())
      return err("expected an object, found " +
                 std::string(json::kindName(v.kind())));
    for (const auto &m : v.asObject()) {
      bool ok = false;
      for (const char *a : allowed)
        ok = ok || m.first == a;
      if (!ok)
        return err("unknown key " + q(m.first));
    }
    return Status::ok();
  }
  Status get(const char *key, const json::Value *&out) const {
    out = v.find(key);
    if (!out)
      return err("missing key \"" + std::string(key) + "\"");
    return Status::ok();
  }
  Status string(const char *key, std::string &out) const {
    const json::Value *x;
    QC_RETURN_IF_ERROR(get(key, x));
    if (!x->isString())
      return err("\"" + std::string(key) + "\" must be a string");
    out = x->asString();
    return Status::ok();
  }
  Status integer(const char *key, int64_t lo, int64_t hi, int64_t &out) const {
    const json::Value *x;
    QC_RETURN_IF_ERROR(get(key, x));
    if (!x->isInt64() || x->asInt64() < lo || x->asInt64() > hi)
      return err("\"" + std::string(key) + "\" must be an integer in [" +
                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out = x->asInt64();
    return Status::ok();
  }
  Status u32(const char *key, uint32_t &out) const {
    int64_t x;
    QC_RETURN_IF_ERROR(integer(key, 0, 0xFFFFFFFFll, x));
    out = uint32_t(x);
    return Status::ok();
  }
  Status uint(const char *key, uint64_t &out) const {
    const json::Value *x;
    QC_RETURN_IF_ERROR(get(key, x));
    if (!x->isUInt64())
      return err("\"" + std::string(key) + "\" must be a non-negative integer");
    out = x->asUInt64();
    return Status::ok();
  }
  Status boolean(const char *key, bool &out) const {
    const json::Value *x;
    QC_RETURN_IF_ERROR(get(key, x));
    if (!x->isBool())
      return err("\"" + std::string(key) + "\" must be true or false");
    out = x->asBool();
    return Status::ok();
  }
  Status array(const char *key, const json::Value::Array *&out) const {
    const json::Value *x;
    QC_RETURN_IF_ERROR(get(key, x));
    if (!x->isArray())
      return err("\"" + std::string(key) + "\" must be an array");
    out = &x->asArray();
    return Status::ok();
  }
  Status strings(const char *key, std::vector<std::string> &out) const {
    const json::Value::Array *arr;
    QC_RETURN_IF_ERROR(array(key, arr));
    out.clear();
    for (const auto &e : *arr) {
      if (!e.isString())
        return err("\"" + std::string(key) + "\" must hold strings");
      out.push_back(e.asString());
    }
    return Status::ok();
  }
  Status err(const std::string &what) const {
    return Status::error(where + ": " + what);
  }

  const json::Value &v;
  std::string where;
};

/// The geometry fields of a launch (block, grid_x, tile_m, grid_z,
/// shared_bytes), shared by the layers' launches and the modules' launch
/// contracts.
Status decodeGeometry(const Reader &r, ArtifactLaunch &L) {
  const json::Value::Array *block;
  QC_RETURN_IF_ERROR(r.array("block", block));
  if (block->size() != 3)
    return r.err("\"block\" must have 3 elements");
  for (int i = 0; i < 3; ++i) {
    const json::Value &b = (*block)[size_t(i)];
    if (!b.isInt64() || b.asInt64() < 0 || b.asInt64() > 0xFFFFFFFFll)
      return r.err("\"block\" must hold unsigned 32-bit integers");
    L.block[i] = uint32_t(b.asInt64());
  }
  QC_RETURN_IF_ERROR(r.u32("grid_x", L.gridX));
  QC_RETURN_IF_ERROR(r.u32("tile_m", L.tileM));
  QC_RETURN_IF_ERROR(r.u32("grid_z", L.gridZ));
  QC_RETURN_IF_ERROR(r.u32("shared_bytes", L.sharedBytes));
  return Status::ok();
}

void encodeGeometry(json::Value &out, const ArtifactLaunch &L) {
  out.set("block", json::Value::array(
                       {u64(L.block[0]), u64(L.block[1]), u64(L.block[2])}));
  out.set("grid_x", u64(L.gridX));
  out.set("tile_m", u64(L.tileM));
  out.set("grid_z", u64(L.gridZ));
  out.set("shared_bytes", u64(L.sharedBytes));
}

Status decodeLaunch(const json::Value &v, const std::string &where,
                    ArtifactLaunch &L) {
  Reader r(v, where);
  QC_RETURN_IF_ERROR(r.object({"module", "kernel", "block", "grid_x", "tile_m",
                               "grid_z", "shared_bytes", "params"}));
  QC_RETURN_IF_ERROR(r.string("module", L.module));
  QC_RETURN_IF_ERROR(r.string("kernel", L.kernel));
  QC_RETURN_IF_ERROR(decodeGeometry(r, L));
  QC_RETURN_IF_ERROR(r.strings("params", L.params));
  return Status::ok();
}

Status decodeLayer(const json::Value &v, const std::string &where,
                   ArtifactLayer &l) {
  Reader r(v, where);
  QC_RETURN_IF_ERROR(r.object({"name", "N", "K", "bits", "group_size", "sym",
                               "layout", "tensors", "variants"}));
  QC_RETURN_IF_ERROR(r.string("name", l.name));
  Reader rl(v, where + " " + q(l.name));
  int64_t bits;
  QC_RETURN_IF_ERROR(rl.integer("N", 1, int64_t(1) << 40, l.N));
  QC_RETURN_IF_ERROR(rl.integer("K", 1, int64_t(1) << 40, l.K));
  QC_RETURN_IF_ERROR(rl.integer("bits", 1, 16, bits));
  l.bits = int(bits);
  QC_RETURN_IF_ERROR(
      rl.integer("group_size", -1, int64_t(1) << 40, l.groupSize));
  QC_RETURN_IF_ERROR(rl.boolean("sym", l.sym));
  QC_RETURN_IF_ERROR(rl.string("layout", l.layout));
  const json::Value *tensors;
  QC_RETURN_IF_ERROR(rl.get("tensors", tensors));
  if (!tensors->isObject())
    return rl.err("\"tensors\" must be an object");
  for (const auto &m : tensors->asObject()) {
    if (!m.second.isString())
      return rl.err("tensor role " + q(m.first) + " must name a tensor");
    l.tensors[m.first] = m.second.asString();
  }
  const json::Value::Array *variants;
  QC_RETURN_IF_ERROR(rl.array("variants", variants));
  for (size_t vi = 0; vi < variants->size(); ++vi) {
    const std::string vw = rl.where + ": variant " + std::to_string(vi);
    Reader rv((*variants)[vi], vw);
    QC_RETURN_IF_ERROR(
        rv.object({"family", "abi", "min_m", "max_m", "launches",
                   "workspace_bytes_per_row", "zero_workspace"}));
    ArtifactVariant var;
    QC_RETURN_IF_ERROR(rv.string("family", var.family));
    if ((*variants)[vi].find("abi")) {
      std::string abi;
      QC_RETURN_IF_ERROR(rv.string("abi", abi));
      KernelAbi parsed;
      if (!parseKernelAbi(abi, parsed))
        return rv.err("unknown abi " + q(abi) + " (expected " +
                      kernelAbiNames() + ")");
      var.abi = parsed;
    }
    QC_RETURN_IF_ERROR(rv.integer("min_m", 0, INT64_MAX, var.minM));
    QC_RETURN_IF_ERROR(rv.integer("max_m", 0, INT64_MAX, var.maxM));
    QC_RETURN_IF_ERROR(
        rv.uint("workspace_bytes_per_row", var.workspaceBytesPerRow));
    QC_RETURN_IF_ERROR(rv.boolean("zero_workspace", var.zeroWorkspace));
    const json::Value::Array *launches;
    QC_RETURN_IF_ERROR(rv.array("launches", launches));
    for (size_t li = 0; li < launches->size(); ++li) {
      ArtifactLaunch L;
      QC_RETURN_IF_ERROR(decodeLaunch(
          (*launches)[li], vw + ": launch " + std::to_string(li), L));
      var.launches.push_back(std::move(L));
    }
    l.variants.push_back(std::move(var));
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Launch contracts (format version 2)
//===----------------------------------------------------------------------===//
//
// A layer's launches are the dispatch table; they were trusted until a
// sweep edited them (with the checksum fixed) and the runtime launched a
// kernel with too few blocks, a smaller workspace or another block size.
// Version 2 records, next to each module's images, what the module was
// compiled for: the layer configuration (N, K, bits, group size, sym) and,
// in launch order, every launch of its kernels the compiler planned (block,
// grid, tile, shared memory, workspace, M range). One kernel may serve
// several variants (a split-K finalize kernel, say) with different grids,
// so a kernel has one record per use. The writer refuses a module launched
// for two layer configurations; the reader requires the dispatch table to
// be exactly the recorded launches, field by field, and each block to fit
// the PTX entry's own .reqntid / .maxntid directive (PTX ISA,
// "Performance-Tuning Directives"). An edit of one field on either side no
// longer passes.

/// One planned launch of a kernel.
struct LaunchContract {
  ArtifactLaunch geometry; ///< kernel and geometry (no module, no params)
  uint64_t workspaceBytesPerRow = 0;
  int64_t minM = 1, maxM = 1;
  std::string use; ///< "layer 'L' variant v launch l", for messages
};

/// What one module was compiled for.
struct ModuleContract {
  bool hasShape = false; ///< false for a module no layer launches
  int64_t N = 0, K = 0, groupSize = 0;
  int bits = 0;
  bool sym = true;
  std::string use;                      ///< the first layer, for messages
  std::vector<LaunchContract> launches; ///< in the layers' launch order
};

using Contracts = std::map<std::string, ModuleContract>;

std::string dims3(const uint32_t *b) {
  return "(" + std::to_string(b[0]) + ", " + std::to_string(b[1]) + ", " +
         std::to_string(b[2]) + ")";
}

/// The contracts the launches of `a` imply; fails when one module is
/// launched for two layer configurations.
Status deriveContracts(const Artifact &a, const std::string &file,
                       Contracts &out) {
  out.clear();
  for (const ArtifactModule &m : a.modules)
    out[m.name];
  for (const ArtifactLayer &l : a.layers)
    for (size_t vi = 0; vi < l.variants.size(); ++vi) {
      const ArtifactVariant &v = l.variants[vi];
      for (size_t li = 0; li < v.launches.size(); ++li) {
        const ArtifactLaunch &L = v.launches[li];
        auto mit = out.find(L.module);
        if (mit == out.end())
          continue; // validateLaunch names the missing module
        ModuleContract &mc = mit->second;
        if (!mc.hasShape) {
          mc.hasShape = true;
          mc.N = l.N;
          mc.K = l.K;
          mc.bits = l.bits;
          mc.groupSize = l.groupSize;
          mc.sym = l.sym;
          mc.use = "layer " + q(l.name);
        } else if (mc.N != l.N || mc.K != l.K || mc.bits != l.bits ||
                   mc.groupSize != l.groupSize || mc.sym != l.sym) {
          return Status::error(
              file + ": module " + q(L.module) + " is launched by " + mc.use +
              " (" + std::to_string(mc.N) + "x" + std::to_string(mc.K) +
              ") and by layer " + q(l.name) + " (" + std::to_string(l.N) + "x" +
              std::to_string(l.K) +
              ") with another configuration: a module is compiled for one "
              "N, K, bits, group size and sym");
        }
        LaunchContract lc;
        lc.geometry = L;
        lc.geometry.module.clear();
        lc.geometry.params.clear();
        lc.workspaceBytesPerRow = v.workspaceBytesPerRow;
        lc.minM = v.minM;
        lc.maxM = v.maxM;
        lc.use = "layer " + q(l.name) + " variant " + std::to_string(vi) +
                 " launch " + std::to_string(li);
        mc.launches.push_back(std::move(lc));
      }
    }
  return Status::ok();
}

/// The thread-count directives of one PTX entry's header (PTX ISA,
/// "Performance-Tuning Directives": .reqntid fixes the block, .maxntid
/// bounds its thread count); a dimension not written is 1.
struct EntryDirectives {
  bool hasReq = false, hasMax = false;
  uint64_t req[3] = {1, 1, 1}, max[3] = {1, 1, 1};
};

/// Reads "name nx[, ny[, nz]]" at the first `name` in `header`.
bool readDims(std::string_view header, std::string_view name,
              uint64_t dims[3]) {
  size_t p = header.find(name);
  if (p == std::string_view::npos)
    return false;
  p += name.size();
  auto skipBlanks = [&] {
    while (p < header.size() && (header[p] == ' ' || header[p] == '\t'))
      ++p;
  };
  for (int i = 0; i < 3; ++i) {
    skipBlanks();
    uint64_t v = 0;
    size_t digits = 0;
    while (p < header.size() && header[p] >= '0' && header[p] <= '9' &&
           digits < 10) {
      v = v * 10 + uint64_t(header[p++] - '0');
      ++digits;
    }
    if (digits == 0)
      return i > 0; // ".maxntid 128" sets x only
    dims[i] = v;
    skipBlanks();
    if (p >= header.size() || header[p] != ',')
      return true;
    ++p;
  }
  return true;
}

/// The directives of every ".entry NAME(" of `ptx` (between the end of its
/// parameter list and the body's "{"), in one pass over the text.
std::map<std::string, EntryDirectives>
ptxEntryDirectives(std::string_view ptx) {
  std::map<std::string, EntryDirectives> out;
  const std::string_view entry = ".entry ";
  for (size_t at = ptx.find(entry); at != std::string_view::npos;
       at = ptx.find(entry, at + entry.size())) {
    const size_t nameBegin = at + entry.size();
    const size_t open = ptx.find('(', nameBegin);
    const size_t close =
        open == std::string_view::npos ? open : ptx.find(')', open);
    if (close == std::string_view::npos)
      break;
    const size_t body = ptx.find('{', close);
    std::string_view header = ptx.substr(close, body == std::string_view::npos
                                                    ? std::string_view::npos
                                                    : body - close);
    EntryDirectives &e =
        out[std::string(ptx.substr(nameBegin, open - nameBegin))];
    e.hasReq = readDims(header, ".reqntid", e.req);
    e.hasMax = readDims(header, ".maxntid", e.max);
  }
  return out;
}

/// Every planned launch's block against its PTX entries' directives.
Status checkPtxDirectives(const Artifact &a, const Contracts &contracts,
                          const std::string &file) {
  for (const ArtifactModule &m : a.modules) {
    const ModuleContract &mc = contracts.at(m.name);
    if (mc.launches.empty())
      continue;
    for (const ArtifactImage &img : m.images) {
      if (img.kind != "ptx")
        continue;
      const std::map<std::string, EntryDirectives> entries = ptxEntryDirectives(
          std::string_view(reinterpret_cast<const char *>(img.bytes.data()),
                           img.bytes.size()));
      for (const LaunchContract &lc : mc.launches) {
        const ArtifactLaunch &g = lc.geometry;
        auto e = entries.find(g.kernel);
        if (e == entries.end())
          continue;
        const std::string kw = file + ": module " + q(m.name) + " kernel " +
                               q(g.kernel) + " (PTX " + q(img.target) + ", " +
                               lc.use + ")";
        const uint64_t *d = e->second.req;
        if (e->second.hasReq &&
            (d[0] != g.block[0] || d[1] != g.block[1] || d[2] != g.block[2]))
          return Status::error(
              kw + ": launched with block " + dims3(g.block) +
              " but compiled with .reqntid " + std::to_string(d[0]) + ", " +
              std::to_string(d[1]) + ", " + std::to_string(d[2]));
        d = e->second.max;
        if (e->second.hasMax &&
            uint64_t(g.block[0]) * g.block[1] * g.block[2] > d[0] * d[1] * d[2])
          return Status::error(kw + ": launched with block " + dims3(g.block) +
                               " but compiled for at most " +
                               std::to_string(d[0] * d[1] * d[2]) +
                               " threads (.maxntid)");
      }
    }
  }
  return Status::ok();
}

Status decodeContract(const json::Value &v, const std::string &where,
                      const ArtifactModule &m, ModuleContract &mc) {
  Reader r(v, where + ": contract");
  QC_RETURN_IF_ERROR(r.object({"shape", "launches"}));
  const json::Value *sh;
  QC_RETURN_IF_ERROR(r.get("shape", sh));
  if (!sh->isNull()) {
    Reader rs(*sh, r.where + ": shape");
    QC_RETURN_IF_ERROR(rs.object({"N", "K", "bits", "group_size", "sym"}));
    int64_t bits;
    QC_RETURN_IF_ERROR(rs.integer("N", 1, int64_t(1) << 40, mc.N));
    QC_RETURN_IF_ERROR(rs.integer("K", 1, int64_t(1) << 40, mc.K));
    QC_RETURN_IF_ERROR(rs.integer("bits", 1, 32, bits));
    QC_RETURN_IF_ERROR(
        rs.integer("group_size", -1, int64_t(1) << 40, mc.groupSize));
    QC_RETURN_IF_ERROR(rs.boolean("sym", mc.sym));
    mc.bits = int(bits);
    mc.hasShape = true;
  }
  const json::Value::Array *launches;
  QC_RETURN_IF_ERROR(r.array("launches", launches));
  for (size_t i = 0; i < launches->size(); ++i) {
    Reader rk((*launches)[i], r.where + ": launch " + std::to_string(i));
    QC_RETURN_IF_ERROR(rk.object(
        {"kernel", "block", "grid_x", "tile_m", "grid_z", "shared_bytes",
         "workspace_bytes_per_row", "min_m", "max_m"}));
    LaunchContract lc;
    QC_RETURN_IF_ERROR(rk.string("kernel", lc.geometry.kernel));
    if (std::find(m.kernels.begin(), m.kernels.end(), lc.geometry.kernel) ==
        m.kernels.end())
      return rk.err("kernel " + q(lc.geometry.kernel) +
                    " is not in the module");
    QC_RETURN_IF_ERROR(decodeGeometry(rk, lc.geometry));
    QC_RETURN_IF_ERROR(
        rk.uint("workspace_bytes_per_row", lc.workspaceBytesPerRow));
    QC_RETURN_IF_ERROR(rk.integer("min_m", 0, INT64_MAX, lc.minM));
    QC_RETURN_IF_ERROR(rk.integer("max_m", 0, INT64_MAX, lc.maxM));
    mc.launches.push_back(std::move(lc));
  }
  return Status::ok();
}

/// The recorded contracts against the ones the dispatch table implies:
/// every difference is an error naming the module, the launch, the kernel
/// and the field.
Status compareContracts(const Contracts &recorded, const Contracts &launched,
                        const std::string &file) {
  for (const auto &[name, rec] : recorded) {
    const std::string mw = file + ": module " + q(name);
    const ModuleContract &got = launched.at(name);
    if (rec.hasShape != got.hasShape)
      return Status::error(
          mw + (rec.hasShape
                    ? ": records a layer configuration but no layer uses it"
                    : ": is launched by " + got.use +
                          " but records no layer configuration"));
    auto field = [&](const std::string &user, const char *what, int64_t r,
                     int64_t g) -> Status {
      if (r == g)
        return Status::ok();
      return Status::error(mw + ": compiled for " + what + " = " +
                           std::to_string(r) + " but " + user + " has " +
                           std::to_string(g));
    };
    if (rec.hasShape) {
      QC_RETURN_IF_ERROR(field(got.use, "N", rec.N, got.N));
      QC_RETURN_IF_ERROR(field(got.use, "K", rec.K, got.K));
      QC_RETURN_IF_ERROR(field(got.use, "bits", rec.bits, got.bits));
      QC_RETURN_IF_ERROR(
          field(got.use, "group_size", rec.groupSize, got.groupSize));
      QC_RETURN_IF_ERROR(field(got.use, "sym", rec.sym, got.sym));
    }
    if (rec.launches.size() != got.launches.size())
      return Status::error(mw + ": compiled for " +
                           std::to_string(rec.launches.size()) +
                           " launches but the layers make " +
                           std::to_string(got.launches.size()));
    for (size_t i = 0; i < rec.launches.size(); ++i) {
      const LaunchContract &rc = rec.launches[i], &gc = got.launches[i];
      const ArtifactLaunch &r = rc.geometry, &g = gc.geometry;
      if (r.kernel != g.kernel)
        return Status::error(mw + ": planned launch " + std::to_string(i) +
                             " of kernel " + q(r.kernel) + " but " + gc.use +
                             " launches " + q(g.kernel));
      const std::string user = gc.use + " (kernel " + q(g.kernel) + ")";
      if (!std::equal(r.block, r.block + 3, g.block))
        return Status::error(mw + ": compiled for block " + dims3(r.block) +
                             " but " + user + " has " + dims3(g.block));
      QC_RETURN_IF_ERROR(field(user, "grid_x", r.gridX, g.gridX));
      QC_RETURN_IF_ERROR(field(user, "tile_m", r.tileM, g.tileM));
      QC_RETURN_IF_ERROR(field(user, "grid_z", r.gridZ, g.gridZ));
      QC_RETURN_IF_ERROR(
          field(user, "shared_bytes", r.sharedBytes, g.sharedBytes));
      QC_RETURN_IF_ERROR(field(user, "workspace_bytes_per_row",
                               int64_t(rc.workspaceBytesPerRow),
                               int64_t(gc.workspaceBytesPerRow)));
      QC_RETURN_IF_ERROR(field(user, "min_m", rc.minM, gc.minM));
      QC_RETURN_IF_ERROR(field(user, "max_m", rc.maxM, gc.maxM));
    }
  }
  return Status::ok();
}

json::Value encodeContract(const ModuleContract &mc) {
  json::Value out = json::Value::object();
  if (mc.hasShape) {
    json::Value shape = json::Value::object();
    shape.set("N", i64(mc.N));
    shape.set("K", i64(mc.K));
    shape.set("bits", i64(mc.bits));
    shape.set("group_size", i64(mc.groupSize));
    shape.set("sym", json::Value::boolean(mc.sym));
    out.set("shape", std::move(shape));
  } else {
    out.set("shape", json::Value());
  }
  json::Value launches = json::Value::array();
  for (const LaunchContract &lc : mc.launches) {
    json::Value kv = json::Value::object();
    kv.set("kernel", str(lc.geometry.kernel));
    encodeGeometry(kv, lc.geometry);
    kv.set("workspace_bytes_per_row", u64(lc.workspaceBytesPerRow));
    kv.set("min_m", i64(lc.minM));
    kv.set("max_m", i64(lc.maxM));
    launches.push(std::move(kv));
  }
  out.set("launches", std::move(launches));
  return out;
}

} // namespace

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

bool isArtifactParamName(const std::string &n) {
  return n == "x" || n == "qweight" || n == "scales" || n == "zeros" ||
         n == "y" || n == "workspace" || n == "w" || n == "M";
}

const ArtifactLayer *findLayer(const Artifact &a, const std::string &name) {
  for (const auto &l : a.layers)
    if (l.name == name)
      return &l;
  return nullptr;
}

const ArtifactModule *findModule(const Artifact &a, const std::string &name) {
  for (const auto &m : a.modules)
    if (m.name == name)
      return &m;
  return nullptr;
}

const ArtifactVariant *selectVariant(const ArtifactLayer &layer, int64_t M) {
  for (const auto &v : layer.variants)
    if (variantAbi(v) == KernelAbi::Gemm && v.minM <= M && M <= v.maxM)
      return &v;
  return nullptr;
}

KernelAbi variantAbi(const ArtifactVariant &v) {
  if (v.abi)
    return *v.abi;
  KernelAbi abi = KernelAbi::Gemm;
  builtinFamilyAbi(v.family, abi);
  return abi;
}

const ArtifactVariant *findVariantByAbi(const ArtifactLayer &layer,
                                        KernelAbi abi) {
  for (const auto &v : layer.variants)
    if (variantAbi(v) == abi)
      return &v;
  return nullptr;
}

const ArtifactVariant *findVariant(const ArtifactLayer &layer,
                                   const std::string &family) {
  for (const auto &v : layer.variants)
    if (v.family == family)
      return &v;
  return nullptr;
}

namespace {

/// validateArtifact, also giving the launch contracts it derived, so that
/// the writer and the reader derive them once.
Status validateWithContracts(const Artifact &a, const std::string &file,
                             Contracts &contracts) {
  if (a.version != kArtifactVersion)
    return Status::error(file + ": format version " +
                         std::to_string(a.version) +
                         " (this build handles version " +
                         std::to_string(kArtifactVersion) + ")");
  std::set<std::string> names;
  for (const ArtifactModule &m : a.modules) {
    const std::string where = file + ": module " + q(m.name);
    if (m.name.empty())
      return Status::error(file + ": a module has an empty name");
    if (!names.insert(m.name).second)
      return Status::error(where + ": defined twice");
    if (m.kernels.empty())
      return Status::error(where + ": lists no kernels");
    std::set<std::string> kernels;
    for (const auto &k : m.kernels)
      if (k.empty() || !kernels.insert(k).second)
        return Status::error(where + ": kernel name " + q(k) +
                             " is empty or listed twice");
    if (m.images.empty())
      return Status::error(where + ": has no images (cubin or PTX)");
    std::set<std::string> images;
    for (const ArtifactImage &img : m.images) {
      const std::string iw =
          where + ": image " + q(img.target) + " " + img.kind;
      if (img.kind == "cubin") {
        if (!isCubinTarget(img.target))
          return Status::error(iw + ": a cubin target must look like sm_80 or "
                                    "sm_90a");
      } else if (img.kind == "ptx") {
        if (!isPtxTarget(img.target))
          return Status::error(iw + ": a PTX target must be \"ptx\" or look "
                                    "like compute_80");
      } else {
        return Status::error(where + ": image kind " + q(img.kind) +
                             " (expected cubin or ptx)");
      }
      if (!images.insert(img.kind + "/" + img.target).second)
        return Status::error(iw + ": listed twice");
      if (img.bytes.empty())
        return Status::error(iw + ": is empty");
    }
  }
  names.clear();
  for (const ArtifactLayer &l : a.layers) {
    if (l.name.empty())
      return Status::error(file + ": a layer has an empty name");
    if (!names.insert(l.name).second)
      return Status::error(file + ": layer " + q(l.name) + " defined twice");
    QC_RETURN_IF_ERROR(validateLayer(a, l, file));
  }
  for (const auto &kv : a.tensors) {
    const ArtifactTensor &t = kv.second;
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || (d > 0 && n > (uint64_t(1) << 50) / uint64_t(d)))
        return Status::error(file + ": tensor " + q(kv.first) +
                             " has an invalid shape");
      n *= uint64_t(d);
    }
    if (n * dtypeBits(t.dtype) != uint64_t(t.bytes.size()) * 8)
      return Status::error(file + ": tensor " + q(kv.first) + " holds " +
                           std::to_string(t.bytes.size()) +
                           " bytes, not what its dtype and shape need");
  }
  QC_RETURN_IF_ERROR(deriveContracts(a, file, contracts));
  QC_RETURN_IF_ERROR(checkPtxDirectives(a, contracts, file));
  return Status::ok();
}

} // namespace

Status validateArtifact(const Artifact &a, const std::string &file) {
  Contracts contracts;
  return validateWithContracts(a, file, contracts);
}

Status serializeArtifact(const Artifact &a, std::vector<uint8_t> &out) {
  Contracts contracts;
  QC_RETURN_IF_ERROR(
      validateWithContracts(a, "artifact being written", contracts));
  // Sections: every image in module order, then the tensor blob.
  std::vector<std::pair<const uint8_t *, uint64_t>> sections;
  json::Value modules = json::Value::array();
  for (const ArtifactModule &m : a.modules) {
    json::Value mv = json::Value::object();
    mv.set("name", str(m.name));
    mv.set("kernels", strings(m.kernels));
    mv.set("contract", encodeContract(contracts.at(m.name)));
    json::Value images = json::Value::array();
    for (const ArtifactImage &img : m.images) {
      json::Value iv = json::Value::object();
      iv.set("target", str(img.target));
      iv.set("kind", str(img.kind));
      iv.set("section", u64(sections.size()));
      sections.push_back({img.bytes.data(), img.bytes.size()});
      images.push(std::move(iv));
    }
    mv.set("images", std::move(images));
    modules.push(std::move(mv));
  }
  std::vector<uint8_t> blob;
  json::Value tensorsSection; // null when there are no tensors
  if (!a.tensors.empty()) {
    SafetensorsWriter w;
    for (const auto &kv : a.tensors)
      QC_RETURN_IF_ERROR(w.addView(kv.first, kv.second.dtype, kv.second.shape,
                                   kv.second.bytes.data(),
                                   kv.second.bytes.size()));
    QC_RETURN_IF_ERROR(w.serialize(blob));
    tensorsSection = u64(sections.size());
    sections.push_back({blob.data(), blob.size()});
  }
  json::Value layers = json::Value::array();
  for (const ArtifactLayer &l : a.layers) {
    json::Value lv = json::Value::object();
    lv.set("name", str(l.name));
    lv.set("N", i64(l.N));
    lv.set("K", i64(l.K));
    lv.set("bits", i64(l.bits));
    lv.set("group_size", i64(l.groupSize));
    lv.set("sym", json::Value::boolean(l.sym));
    lv.set("layout", str(l.layout));
    json::Value tv = json::Value::object();
    for (const auto &kv : l.tensors)
      tv.set(kv.first, str(kv.second));
    lv.set("tensors", std::move(tv));
    json::Value variants = json::Value::array();
    for (const ArtifactVariant &v : l.variants) {
      json::Value vv = json::Value::object();
      vv.set("family", str(v.family));
      // Only when it says something the family name does not: artifacts of
      // the built-in families stay byte-identical to those written before
      // the key existed.
      KernelAbi builtin;
      if (v.abi && !(builtinFamilyAbi(v.family, builtin) && builtin == *v.abi))
        vv.set("abi", str(kernelAbiName(*v.abi)));
      vv.set("min_m", i64(v.minM));
      vv.set("max_m", i64(v.maxM));
      vv.set("workspace_bytes_per_row", u64(v.workspaceBytesPerRow));
      vv.set("zero_workspace", json::Value::boolean(v.zeroWorkspace));
      json::Value launches = json::Value::array();
      for (const ArtifactLaunch &L : v.launches) {
        json::Value Lv = json::Value::object();
        Lv.set("module", str(L.module));
        Lv.set("kernel", str(L.kernel));
        encodeGeometry(Lv, L);
        Lv.set("params", strings(L.params));
        launches.push(std::move(Lv));
      }
      vv.set("launches", std::move(launches));
      variants.push(std::move(vv));
    }
    lv.set("variants", std::move(variants));
    layers.push(std::move(lv));
  }

  // Section offsets depend on the manifest length, which depends on the
  // offsets' digits: iterate until the layout is stable (two rounds at most
  // in practice, since offsets only grow).
  std::string manifestText;
  std::vector<uint64_t> offsets(sections.size());
  uint64_t manifestGuess = 0;
  for (int round = 0; round < 16; ++round) {
    uint64_t pos = alignUp(kHeaderBytes + manifestGuess);
    json::Value secs = json::Value::array();
    for (size_t i = 0; i < sections.size(); ++i) {
      offsets[i] = pos;
      json::Value sv = json::Value::object();
      sv.set("offset", u64(pos));
      sv.set("bytes", u64(sections[i].second));
      secs.push(std::move(sv));
      pos = alignUp(pos + sections[i].second);
    }
    json::Value manifest = json::Value::object();
    manifest.set("format", str("qc-artifact"));
    manifest.set("version", u64(a.version));
    manifest.set("producer", str(a.producer));
    manifest.set("sections", std::move(secs));
    manifest.set("modules", modules);
    manifest.set("tensors_section", tensorsSection);
    manifest.set("layers", layers);
    manifestText = json::write(manifest);
    if (alignUp(kHeaderBytes + manifestText.size()) ==
        alignUp(kHeaderBytes + manifestGuess))
      break;
    manifestGuess = manifestText.size();
  }
  if (alignUp(kHeaderBytes + manifestText.size()) !=
      (sections.empty() ? alignUp(kHeaderBytes + manifestGuess)
                        : offsets.front()))
    return Status::error("artifact writer: manifest layout did not converge");
  uint64_t total = sections.empty() ? kHeaderBytes + manifestText.size()
                                    : offsets.back() + sections.back().second;
  out.assign(size_t(total), 0);
  std::memcpy(out.data(), kMagic, 8);
  storeU32(out.data() + 8, a.version);
  storeU32(out.data() + 12, kHeaderBytes);
  storeU64(out.data() + 16, manifestText.size());
  storeU64(out.data() + 24, total);
  std::memcpy(out.data() + kHeaderBytes, manifestText.data(),
              manifestText.size());
  for (size_t i = 0; i < sections.size(); ++i)
    std::memcpy(out.data() + offsets[i], sections[i].first,
                size_t(sections[i].second));
  storeU64(out.data() + 32,
           fnv1a(out.data() + kHeaderBytes, size_t(total - kHeaderBytes)));
  return Status::ok();
}

Status writeArtifact(const std::string &path, const Artifact &a) {
  std::vector<uint8_t> bytes;
  QC_RETURN_IF_ERROR(serializeArtifact(a, bytes).withContext(path));
  return writeFileAtomically(path, {{bytes.data(), bytes.size()}});
}

Status parseArtifact(const uint8_t *data, size_t size, const std::string &file,
                     Artifact &out) {
  auto fail = [&](const std::string &what) {
    return Status::error(file + ": " + what);
  };
  if (size < 8)
    return fail("truncated or not an artifact: " + std::to_string(size) +
                " bytes, shorter than the magic number");
  if (std::memcmp(data, kMagic, 8) != 0)
    return fail("not a qc artifact (bad magic; expected \\x89QCART\\r\\n)");
  if (size < kHeaderBytes)
    return fail("truncated: " + std::to_string(size) +
                " bytes, shorter than the 48-byte header");
  uint32_t version = loadU32(data + 8);
  if (version > kArtifactVersion)
    return fail("format version " + std::to_string(version) +
                " is newer than this build reads (up to " +
                std::to_string(kArtifactVersion) +
                "); rebuild the runtime or regenerate the artifact");
  if (version == 0)
    return fail("invalid format version 0");
  if (version < kArtifactVersion)
    return fail("format version " + std::to_string(version) +
                " predates the launch contracts this build requires "
                "(version " +
                std::to_string(kArtifactVersion) +
                "); regenerate the artifact with quant-kernelgen");
  if (loadU32(data + 12) != kHeaderBytes)
    return fail("header size " + std::to_string(loadU32(data + 12)) +
                " (expected 48)");
  uint64_t manifestBytes = loadU64(data + 16), total = loadU64(data + 24);
  if (total != size)
    return fail((size < total ? "truncated: " : "trailing bytes: ") +
                std::string("the header says ") + std::to_string(total) +
                " bytes, the file has " + std::to_string(size));
  if (manifestBytes > kMaxManifestBytes || manifestBytes > total - kHeaderBytes)
    return fail("manifest size " + std::to_string(manifestBytes) +
                " does not fit in the file");
  if (loadU64(data + 40) != 0)
    return fail("reserved header field is not 0");
  if (fnv1a(data + kHeaderBytes, size - kHeaderBytes) != loadU64(data + 32))
    return fail("checksum mismatch: the file is corrupted");

  json::Value m;
  std::string_view text(reinterpret_cast<const char *>(data + kHeaderBytes),
                        size_t(manifestBytes));
  QC_RETURN_IF_ERROR(json::parse(text, m).withContext(file + ": manifest"));
  Reader r(m, file + ": manifest");
  QC_RETURN_IF_ERROR(r.object({"format", "version", "producer", "sections",
                               "modules", "tensors_section", "layers"}));
  Artifact a;
  std::string format;
  QC_RETURN_IF_ERROR(r.string("format", format));
  if (format != "qc-artifact")
    return r.err("format " + q(format) + " (expected \"qc-artifact\")");
  int64_t mv;
  QC_RETURN_IF_ERROR(r.integer("version", 0, 0xFFFFFFFFll, mv));
  if (uint64_t(mv) != version)
    return r.err("version " + std::to_string(mv) +
                 " disagrees with the header's " + std::to_string(version));
  a.version = version;
  QC_RETURN_IF_ERROR(r.string("producer", a.producer));

  // Sections must tile the file after the manifest, each 64-byte aligned,
  // with zero padding and nothing after the last one.
  const json::Value::Array *secs;
  QC_RETURN_IF_ERROR(r.array("sections", secs));
  std::vector<std::pair<uint64_t, uint64_t>> sections;
  uint64_t pos = kHeaderBytes + manifestBytes;
  for (size_t i = 0; i < secs->size(); ++i) {
    Reader rs((*secs)[i], r.where + ": section " + std::to_string(i));
    QC_RETURN_IF_ERROR(rs.object({"offset", "bytes"}));
    uint64_t off, len;
    QC_RETURN_IF_ERROR(rs.uint("offset", off));
    QC_RETURN_IF_ERROR(rs.uint("bytes", len));
    if (off != alignUp(pos) || off > size || len > size - off)
      return rs.err("offset " + std::to_string(off) + " + " +
                    std::to_string(len) +
                    " bytes is not the next aligned range inside the file");
    for (uint64_t p = pos; p < off; ++p)
      if (data[p] != 0)
        return rs.err("non-zero padding before the section");
    sections.push_back({off, len});
    pos = off + len;
  }
  if (pos != size)
    return r.err(std::to_string(size - pos) +
                 " bytes after the last section belong to nothing");
  std::vector<int> used(sections.size(), 0);
  auto takeSection = [&](const json::Value &v, const Reader &rr,
                         size_t &index) -> Status {
    if (!v.isUInt64() || v.asUInt64() >= sections.size())
      return rr.err("section index must be < " +
                    std::to_string(sections.size()));
    index = size_t(v.asUInt64());
    if (used[index]++)
      return rr.err("section " + std::to_string(index) + " is used twice");
    return Status::ok();
  };

  const json::Value::Array *mods;
  QC_RETURN_IF_ERROR(r.array("modules", mods));
  Contracts recorded;
  for (size_t mi = 0; mi < mods->size(); ++mi) {
    Reader rm((*mods)[mi], r.where + ": module " + std::to_string(mi));
    QC_RETURN_IF_ERROR(rm.object({"name", "kernels", "contract", "images"}));
    ArtifactModule mod;
    QC_RETURN_IF_ERROR(rm.string("name", mod.name));
    rm.where = file + ": module " + q(mod.name);
    QC_RETURN_IF_ERROR(rm.strings("kernels", mod.kernels));
    const json::Value *cv;
    QC_RETURN_IF_ERROR(rm.get("contract", cv));
    if (recorded.count(mod.name))
      return rm.err("defined twice");
    QC_RETURN_IF_ERROR(decodeContract(*cv, rm.where, mod, recorded[mod.name]));
    const json::Value::Array *imgs;
    QC_RETURN_IF_ERROR(rm.array("images", imgs));
    for (size_t ii = 0; ii < imgs->size(); ++ii) {
      Reader ri((*imgs)[ii], rm.where + ": image " + std::to_string(ii));
      QC_RETURN_IF_ERROR(ri.object({"target", "kind", "section"}));
      ArtifactImage img;
      QC_RETURN_IF_ERROR(ri.string("target", img.target));
      QC_RETURN_IF_ERROR(ri.string("kind", img.kind));
      const json::Value *sv;
      QC_RETURN_IF_ERROR(ri.get("section", sv));
      size_t si;
      QC_RETURN_IF_ERROR(takeSection(*sv, ri, si));
      img.bytes.assign(data + sections[si].first,
                       data + sections[si].first + sections[si].second);
      mod.images.push_back(std::move(img));
    }
    a.modules.push_back(std::move(mod));
  }

  const json::Value *ts;
  QC_RETURN_IF_ERROR(r.get("tensors_section", ts));
  if (!ts->isNull()) {
    size_t si;
    Reader rt(*ts, r.where + ": tensors_section");
    QC_RETURN_IF_ERROR(takeSection(*ts, rt, si));
    std::unique_ptr<SafetensorsFile> st;
    QC_RETURN_IF_ERROR(SafetensorsFile::parse(data + sections[si].first,
                                              size_t(sections[si].second),
                                              file + ": packed tensors", st));
    for (const TensorInfo &info : st->tensors()) {
      ArtifactTensor t;
      t.dtype = info.dtype;
      t.shape = info.shape;
      const uint8_t *p = st->tensorData(info);
      t.bytes.assign(p, p + info.byteSize());
      a.tensors[info.name] = std::move(t);
    }
  }
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      return r.err("section " + std::to_string(i) + " is used by nothing");

  const json::Value::Array *layers;
  QC_RETURN_IF_ERROR(r.array("layers", layers));
  for (size_t li = 0; li < layers->size(); ++li) {
    ArtifactLayer l;
    QC_RETURN_IF_ERROR(
        decodeLayer((*layers)[li], file + ": layer " + std::to_string(li), l));
    a.layers.push_back(std::move(l));
  }
  Contracts launched;
  QC_RETURN_IF_ERROR(validateWithContracts(a, file, launched));
  QC_RETURN_IF_ERROR(compareContracts(recorded, launched, file));
  out = std::move(a);
  return Status::ok();
}

Status readArtifact(const std::string &path, Artifact &out) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return Status::error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes(size_t(sb.st_size));
  if (!bytes.empty() && !in.read(reinterpret_cast<char *>(bytes.data()),
                                 std::streamsize(bytes.size())))
    return Status::error(path + ": read error (file changed while reading?)");
  return parseArtifact(bytes.data(), bytes.size(), path, out);
}

Status addLayerTensors(Artifact &a, ArtifactLayer &layer,
                       const MMA16x64Tensors &t) {
  const std::string where = "layer " + q(layer.name);
  QC_RETURN_IF_ERROR(validateMMA16x64(t).withContext(where));
  if (t.N != layer.N || t.K != layer.K || t.bits != layer.bits ||
      t.groupSize != layer.groupSize || t.sym != layer.sym)
    return Status::error(where + ": packed tensors (" + std::to_string(t.N) +
                         "x" + std::to_string(t.K) +
                         ") do not match the layer's shape/bits/group/sym");
  auto put = [&](const std::string &role, DType dt, std::vector<int64_t> shape,
                 const void *p, size_t bytes) -> Status {
    std::string name = layer.name + "." + role;
    if (a.tensors.count(name))
      return Status::error(where + ": tensor " + q(name) + " already exists");
    ArtifactTensor at;
    at.dtype = dt;
    at.shape = std::move(shape);
    at.bytes.assign(static_cast<const uint8_t *>(p),
                    static_cast<const uint8_t *>(p) + bytes);
    a.tensors[name] = std::move(at);
    layer.tensors[role] = name;
    return Status::ok();
  };
  QC_RETURN_IF_ERROR(put("qweight", DType::I32, {int64_t(t.qweight.size())},
                         t.qweight.data(), t.qweight.size() * 4));
  QC_RETURN_IF_ERROR(put("scales", DType::F16, {t.numGroups, t.Np},
                         t.scales.data(), t.scales.size() * 2));
  if (!t.sym)
    QC_RETURN_IF_ERROR(put("zeros", DType::F16, {t.numGroups, t.Np},
                           t.zeros.data(), t.zeros.size() * 2));
  return Status::ok();
}

Status layerTensors(const Artifact &a, const ArtifactLayer &layer,
                    MMA16x64Tensors &out) {
  const std::string where = "layer " + q(layer.name);
  if (layer.tensors.empty())
    return Status::error(where + ": kernel-only layer (no packed tensors)");
  QC_RETURN_IF_ERROR(validateLayerTensors(a, layer, where));
  MMA16x64Tensors t;
  t.bits = layer.bits;
  t.N = layer.N;
  t.K = layer.K;
  t.groupSize = layer.groupSize;
  t.sym = layer.sym;
  QC_RETURN_IF_ERROR(
      mma16x64Dims(t.bits, t.N, t.K, t.groupSize, t.Np, t.Kp, t.numGroups)
          .withContext(where));
  const ArtifactTensor &qw = a.tensors.at(layer.tensors.at("qweight"));
  t.qweight.resize(qw.bytes.size() / 4);
  std::memcpy(t.qweight.data(), qw.bytes.data(), qw.bytes.size());
  const ArtifactTensor &sc = a.tensors.at(layer.tensors.at("scales"));
  t.scales.resize(sc.bytes.size() / 2);
  std::memcpy(t.scales.data(), sc.bytes.data(), sc.bytes.size());
  if (!t.sym) {
    const ArtifactTensor &z = a.tensors.at(layer.tensors.at("zeros"));
    t.zeros.resize(z.bytes.size() / 2);
    std::memcpy(t.zeros.data(), z.bytes.data(), z.bytes.size());
  }
  QC_RETURN_IF_ERROR(validateMMA16x64(t).withContext(where));
  out = std::move(t);
  return Status::ok();
}

} // namespace qc
