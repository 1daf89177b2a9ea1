//===- RewriteJournal.cpp - Resuming an interrupted quantization ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "RewriteJournal.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace mlir::qc;
using ::qc::Status;

namespace {

constexpr const char *kFormat = "qc-rewrite-journal";
constexpr int64_t kVersion = 1;
constexpr const char *kIndex = "journal.json";

std::string joinPath(const std::string &dir, const std::string &name) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, name);
  return std::string(p.str());
}

std::string numbered(const char *stem, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s-%05zu.safetensors", stem, n);
  return buf;
}

/// A double for JSON: NaN and infinities become null (JSON has neither).
llvm::json::Value number(double v) {
  return std::isfinite(v) ? llvm::json::Value(v) : llvm::json::Value(nullptr);
}

double numberOr(const llvm::json::Object &o, llvm::StringRef key) {
  if (std::optional<double> v = o.getNumber(key))
    return *v;
  return NAN;
}

/// The first line of `a` that `b` does not have at the same place.
std::string firstDifference(const std::string &a, const std::string &b) {
  llvm::SmallVector<llvm::StringRef> la, lb;
  llvm::StringRef(a).split(la, '\n');
  llvm::StringRef(b).split(lb, '\n');
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    llvm::StringRef x = i < la.size() ? la[i] : "",
                    y = i < lb.size() ? lb[i] : "";
    if (x != y)
      return "'" + x.str() + "' (this run) vs '" + y.str() + "' (journal)";
  }
  return "";
}

/// Test-only: QC_TEST_KILL_AFTER_UNITS=N kills the process with SIGKILL
/// right after the journal records its N-th unit, so that tests can check
/// that a run killed at that instant resumes to the same result. SIGKILL
/// cannot be caught: nothing is flushed or cleaned up, as with the OOM
/// killer or a lost machine.
void maybeKillForTesting(size_t units) {
  const char *n = std::getenv("QC_TEST_KILL_AFTER_UNITS");
  if (n && *n && std::strtoull(n, nullptr, 10) == units)
    std::raise(SIGKILL);
}

} // namespace

struct RewriteJournal::Unit {
  std::string file;
  int64_t block = -1;
  std::vector<std::string> floats;
  /// The file, for units read back by open() (null for this run's units).
  std::unique_ptr<::qc::SafetensorsFile> mapped;
};

RewriteJournal::RewriteJournal() = default;
RewriteJournal::~RewriteJournal() = default;

const ::qc::SafetensorsFile &RewriteJournal::unitFile(size_t unit) const {
  return *units[unit]->mapped;
}

Status RewriteJournal::open(const std::string &folder,
                            const std::string &identity) {
  dir = folder;
  identityText = identity;
  units.clear();
  done.clear();
  blocks = 0;
  streamsFile.clear();
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return Status::error(dir +
                         ": cannot create the journal folder: " + ec.message());
  const std::string index = joinPath(dir, kIndex);
  if (!llvm::sys::fs::exists(index))
    return Status::ok(); // a new journal; written with the first unit

  // Everything below checks the journal before any of it is used: it was
  // written by an earlier run, possibly of another version, and a folder
  // can be edited by hand.
  auto bad = [&](const std::string &what) {
    return Status::error(index + ": " + what + " (remove " + dir +
                         " to start over)");
  };
  auto buffer = llvm::MemoryBuffer::getFile(index);
  if (!buffer)
    return bad("cannot read: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> parsed =
      llvm::json::parse((*buffer)->getBuffer());
  if (!parsed)
    return bad("not JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root || root->getString("format") != kFormat)
    return bad("not a qc journal");
  std::optional<int64_t> version = root->getInteger("version");
  if (version != kVersion)
    return bad("journal version " +
               (version ? std::to_string(*version) : std::string("missing")) +
               " is not " + std::to_string(kVersion) +
               ", the one this build writes");
  std::optional<llvm::StringRef> ident = root->getString("identity");
  if (!ident)
    return bad("no identity");
  if (*ident != identity)
    return Status::error(dir + " holds the journal of a different run: " +
                         firstDifference(identity, ident->str()) +
                         "; remove it (or run without resuming) to start over");
  const llvm::json::Array *list = root->getArray("units");
  if (!list)
    return bad("no units");
  for (const llvm::json::Value &u : *list) {
    const llvm::json::Object *o = u.getAsObject();
    std::optional<llvm::StringRef> file =
        o ? o->getString("file") : std::nullopt;
    const llvm::json::Array *layerList = o ? o->getArray("layers") : nullptr;
    if (!file || !layerList || file->contains('/') || file->starts_with("."))
      return bad("unit " + std::to_string(units.size()) + " is malformed");
    auto unit = std::make_unique<Unit>();
    unit->file = file->str();
    unit->block = o->getInteger("block").value_or(-1);
    if (unit->block >= 0 && unit->block != blocks)
      return bad("block " + std::to_string(unit->block) +
                 " recorded where block " + std::to_string(blocks) +
                 " was expected");
    blocks += unit->block >= 0;
    if (Status s = ::qc::SafetensorsFile::open(joinPath(dir, unit->file),
                                               unit->mapped);
        !s)
      return Status::error(s.message() + " (remove " + dir + " to start over)");
    if (const llvm::json::Array *floats = o->getArray("floats"))
      for (const llvm::json::Value &f : *floats) {
        std::optional<llvm::StringRef> name = f.getAsString();
        if (!name || !unit->mapped->find(name->str()))
          return bad("unit " + unit->file + " lacks a float tensor it lists");
        unit->floats.push_back(name->str());
      }
    for (const llvm::json::Value &l : *layerList) {
      const llvm::json::Object *lo = l.getAsObject();
      std::optional<llvm::StringRef> name =
          lo ? lo->getString("layer") : std::nullopt;
      const llvm::json::Array *suffixes =
          lo ? lo->getArray("tensors") : nullptr;
      if (!name || !suffixes)
        return bad("unit " + unit->file + " has a malformed layer");
      JournaledLayer j;
      j.unit = units.size();
      ::qc::LayerRecord &r = j.record;
      r.layer = name->str();
      r.method = lo->getString("method").value_or("").str();
      r.bits = static_cast<int>(lo->getInteger("bits").value_or(0));
      r.groupSize = lo->getInteger("group_size").value_or(0);
      r.sym = lo->getBoolean("sym").value_or(false);
      r.loss = numberOr(*lo, "loss");
      r.damping = numberOr(*lo, "damping");
      r.tokens = lo->getInteger("tokens").value_or(-1);
      r.fallback = lo->getBoolean("fallback").value_or(false);
      r.note = lo->getString("note").value_or("").str();
      r.seconds = lo->getNumber("seconds").value_or(0.0);
      j.rows = lo->getInteger("rows").value_or(0);
      j.cols = lo->getInteger("cols").value_or(0);
      if (const llvm::json::Array *cb = lo->getArray("codebook"))
        for (const llvm::json::Value &c : *cb)
          j.codebook.push_back(
              static_cast<float>(c.getAsNumber().value_or(NAN)));
      for (const llvm::json::Value &s : *suffixes) {
        std::optional<llvm::StringRef> suffix = s.getAsString();
        if (!suffix || !unit->mapped->find(r.layer + suffix->str()))
          return bad("unit " + unit->file + " lacks a tensor of layer '" +
                     r.layer + "'");
        j.suffixes.push_back(suffix->str());
      }
      if (j.rows <= 0 || j.cols <= 0 || r.bits <= 0)
        return bad("layer '" + r.layer + "' has no shape or bit width");
      done.push_back(std::move(j));
    }
    units.push_back(std::move(unit));
  }
  if (std::optional<llvm::StringRef> streams = root->getString("streams")) {
    if (streams->contains('/') || streams->starts_with("."))
      return bad("malformed streams entry");
    streamsFile = streams->str();
  }
  return Status::ok();
}

Status RewriteJournal::restoreBlocks(::qc::ModelWeights &weights,
                                     std::vector<float> &xF,
                                     std::vector<float> &xQ) const {
  for (const auto &unit : units)
    for (const std::string &name :
         unit->mapped ? unit->floats : std::vector<std::string>{}) {
      auto it = weights.tensors.find(name);
      if (it == weights.tensors.end())
        return Status::error(joinPath(dir, unit->file) + ": tensor '" + name +
                             "' is not one of the model's");
      std::vector<float> values;
      QC_RETURN_IF_ERROR(unit->mapped->readAsF32(name, values));
      if (static_cast<int64_t>(values.size()) != it->second.numElements())
        return Status::error(joinPath(dir, unit->file) + ": tensor '" + name +
                             "' has the wrong size");
      it->second.data = std::move(values);
      it->second.load = nullptr; // an overlay tensor from now on
      weights.overlaid.insert(name);
    }
  xF.clear();
  xQ.clear();
  if (blocks == 0 || streamsFile.empty())
    return Status::ok();
  std::unique_ptr<::qc::SafetensorsFile> streams;
  if (Status s =
          ::qc::SafetensorsFile::open(joinPath(dir, streamsFile), streams);
      !s)
    return Status::error(s.message() + " (remove " + dir + " to start over)");
  if (streams->metadata().count("block") == 0 ||
      streams->metadata().at("block") != std::to_string(blocks - 1))
    return Status::error(joinPath(dir, streamsFile) +
                         ": the activations are not those after block " +
                         std::to_string(blocks - 1) + " (remove " + dir +
                         " to start over)");
  if (streams->find("xF"))
    QC_RETURN_IF_ERROR(streams->readAsF32("xF", xF, /*checkFinite=*/false));
  if (streams->find("xQ"))
    QC_RETURN_IF_ERROR(streams->readAsF32("xQ", xQ, /*checkFinite=*/false));
  return Status::ok();
}

Status RewriteJournal::addLayer(
    const std::string &layer, const ::qc::LayerRecord &record, int64_t rows,
    int64_t cols, const std::vector<float> &codebook,
    const std::map<std::string, ::qc::PackedTensor> &tensors) {
  if (!pending)
    pending = std::make_unique<::qc::SafetensorsWriter>();
  JournaledLayer j;
  j.record = record;
  j.rows = rows;
  j.cols = cols;
  j.codebook = codebook;
  j.unit = units.size();
  for (const auto &[suffix, t] : tensors) {
    QC_RETURN_IF_ERROR(pending->add(layer + suffix, t.dtype, t.shape, t.bytes));
    j.suffixes.push_back(suffix);
  }
  pendingLayers.push_back(std::move(j));
  return Status::ok();
}

Status RewriteJournal::finishUnit(int64_t block,
                                  const ::qc::ModelWeights *weights,
                                  const std::vector<std::string> &floats,
                                  const std::vector<float> &xF,
                                  const std::vector<float> &xQ) {
  if (!pending)
    pending = std::make_unique<::qc::SafetensorsWriter>();
  auto unit = std::make_unique<Unit>();
  unit->file = numbered("unit", units.size());
  unit->block = block;
  for (const std::string &name : floats) {
    const ::qc::HostTensor *t = weights ? weights->find(name) : nullptr;
    if (!t || !t->resident())
      return Status::error("internal error: journal float tensor '" + name +
                           "' is not resident");
    QC_RETURN_IF_ERROR(pending->addF32(name, t->shape, t->data.data()));
    unit->floats.push_back(name);
  }
  const std::string path = joinPath(dir, unit->file);
  QC_RETURN_IF_ERROR(pending->writeFile(path));
  pending.reset();
  // Not mapped: only units an earlier run wrote are read back (open()).

  std::string oldStreams;
  if (block >= 0) {
    if (block != blocks)
      return Status::error("internal error: journal got block " +
                           std::to_string(block) + " after " +
                           std::to_string(blocks) + " blocks");
    oldStreams = streamsFile;
    streamsFile.clear();
    if (!xF.empty() || !xQ.empty()) {
      ::qc::SafetensorsWriter w;
      if (!xF.empty())
        QC_RETURN_IF_ERROR(w.addView("xF", ::qc::DType::F32,
                                     {static_cast<int64_t>(xF.size())},
                                     xF.data(), xF.size() * sizeof(float)));
      if (!xQ.empty())
        QC_RETURN_IF_ERROR(w.addView("xQ", ::qc::DType::F32,
                                     {static_cast<int64_t>(xQ.size())},
                                     xQ.data(), xQ.size() * sizeof(float)));
      QC_RETURN_IF_ERROR(w.setMetadata({{"block", std::to_string(block)}}));
      streamsFile = numbered("streams", static_cast<size_t>(block));
      QC_RETURN_IF_ERROR(w.writeFile(joinPath(dir, streamsFile)));
    }
    ++blocks;
  }
  units.push_back(std::move(unit));
  for (JournaledLayer &j : pendingLayers)
    done.push_back(std::move(j));
  pendingLayers.clear();
  QC_RETURN_IF_ERROR(writeIndex());
  // The index no longer names the previous block's activations.
  if (!oldStreams.empty() && oldStreams != streamsFile)
    llvm::sys::fs::remove(joinPath(dir, oldStreams));
  maybeKillForTesting(units.size());
  return Status::ok();
}

Status RewriteJournal::writeIndex() {
  llvm::json::Array unitList;
  for (size_t u = 0; u < units.size(); ++u) {
    llvm::json::Array layerList;
    for (const JournaledLayer &j : done) {
      if (j.unit != u)
        continue;
      const ::qc::LayerRecord &r = j.record;
      llvm::json::Array suffixes, codebook;
      for (const std::string &s : j.suffixes)
        suffixes.push_back(s);
      for (float c : j.codebook)
        codebook.push_back(static_cast<double>(c));
      layerList.push_back(llvm::json::Object{{"layer", r.layer},
                                             {"method", r.method},
                                             {"bits", r.bits},
                                             {"group_size", r.groupSize},
                                             {"sym", r.sym},
                                             {"loss", number(r.loss)},
                                             {"damping", number(r.damping)},
                                             {"tokens", r.tokens},
                                             {"fallback", r.fallback},
                                             {"note", r.note},
                                             {"seconds", number(r.seconds)},
                                             {"rows", j.rows},
                                             {"cols", j.cols},
                                             {"codebook", std::move(codebook)},
                                             {"tensors", std::move(suffixes)}});
    }
    llvm::json::Array floats;
    for (const std::string &f : units[u]->floats)
      floats.push_back(f);
    unitList.push_back(llvm::json::Object{{"file", units[u]->file},
                                          {"block", units[u]->block},
                                          {"floats", std::move(floats)},
                                          {"layers", std::move(layerList)}});
  }
  llvm::json::Object root{{"format", kFormat},
                          {"version", kVersion},
                          {"identity", identityText},
                          {"units", std::move(unitList)}};
  if (!streamsFile.empty())
    root["streams"] = streamsFile;
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  os.flush();
  return ::qc::writeFileAtomically(joinPath(dir, kIndex),
                                   {{text.data(), text.size()}});
}
