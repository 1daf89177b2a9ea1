//===- GgufFuzzer.cpp - libFuzzer target for the GGUF reader ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to GgufFile::parse, as llama.cpp's fuzzing of its
// GGUF loader did (RELIABILITY.md: PR 26318 found a crash that way). Beyond
// "no crash under ASan/UBSan", an accepted file must keep the reader's
// promises, checked here with a trap when broken: every tensor lies inside
// the data section and is aligned, no two tensors overlap, lookups find
// what the lists hold, every typed accessor either succeeds or fails
// cleanly on every key, dequantization yields one value per element, and
// the GGUF model import either loads a model that passes
// validateModelWeights or reports an error.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Gguf.h"
#include "qc/runtime/GgufModel.h"

#include <algorithm>
#include <cstring>

namespace {

/// Aborts the run so libFuzzer records the input as a crash.
void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

void exerciseMetadata(const qc::GgufFile &f) {
  for (const qc::GgufKV &kv : f.metadata()) {
    check(f.find(kv.key) == &kv.value);
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    uint8_t u8;
    float fl;
    double db;
    bool b;
    std::string s;
    qc::GgufType et;
    uint64_t count;
    std::vector<std::string> strs;
    std::vector<float> floats;
    std::vector<int32_t> ints;
    std::vector<uint32_t> uints;
    std::vector<int64_t> longs;
    std::vector<bool> bools;
    (void)f.getU32(kv.key, u32);
    (void)f.getI32(kv.key, i32);
    (void)f.getU64(kv.key, u64);
    (void)f.getI64(kv.key, i64);
    (void)f.getU8(kv.key, u8);
    (void)f.getF32(kv.key, fl);
    (void)f.getF64(kv.key, db);
    (void)f.getBool(kv.key, b);
    check(f.getString(kv.key, s).isOk() ==
          (kv.value.type == qc::GgufType::String));
    if (f.getArrayInfo(kv.key, et, count).isOk()) {
      check(kv.value.type == qc::GgufType::Array && count == kv.value.count);
      if (f.getStringArray(kv.key, strs).isOk())
        check(strs.size() == count);
      if (f.getF32Array(kv.key, floats).isOk())
        check(floats.size() == count);
      if (f.getI32Array(kv.key, ints).isOk())
        check(ints.size() == count);
      if (f.getU32Array(kv.key, uints).isOk())
        check(uints.size() == count);
      if (f.getI64Array(kv.key, longs).isOk())
        check(longs.size() == count);
      if (f.getBoolArray(kv.key, bools).isOk())
        check(bools.size() == count);
    }
    (void)kv.value.typeDescription();
  }
}

void exerciseTensors(const qc::GgufFile &f) {
  std::vector<const qc::GgufTensorInfo *> order;
  for (const qc::GgufTensorInfo &t : f.tensors()) {
    check(f.findTensor(t.name) == &t);
    check(t.offset % f.alignment() == 0);
    check(t.offset <= f.dataSize() && t.byteSize <= f.dataSize() - t.offset);
    check(t.numElements >= 1 && t.dims.size() <= 4);
    uint64_t bytes = 0;
    check(qc::ggmlByteSize(t.type, t.numElements, bytes) &&
          bytes == t.byteSize);
    check(t.shape().size() == t.dims.size());
    order.push_back(&t);
    // Bounded work per input: dequantize small tensors only.
    if (t.numElements <= (1u << 16)) {
      std::vector<float> v;
      for (bool finite : {true, false})
        if (f.readTensorF32(t, v, finite).isOk())
          check(v.size() == t.numElements);
    }
  }
  std::sort(order.begin(), order.end(),
            [](auto *a, auto *b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    check(order[i]->offset >= order[i - 1]->offset + order[i - 1]->byteSize);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::unique_ptr<qc::GgufFile> file;
  if (!qc::GgufFile::parse(data, size, "fuzz-input", file).isOk())
    return 0;
  check(file->version() == 2 || file->version() == 3);
  check(file->dataOffset() % file->alignment() == 0 ||
        file->dataOffset() == size);
  exerciseMetadata(*file);
  exerciseTensors(*file);
  qc::ModelWeights w;
  if (qc::loadGgufModel(*file, w).isOk())
    check(qc::validateModelWeights(w, "fuzz-input").isOk());
  return 0;
}
