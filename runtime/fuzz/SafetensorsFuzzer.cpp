//===- SafetensorsFuzzer.cpp - libFuzzer target for safetensors -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to SafetensorsFile::parse (the reference project
// fuzzes `SafeTensors::deserialize` the same way, see
// ../shared/docs/RELIABILITY.md section 2.1). Beyond "no crash under
// ASan/UBSan", accepted files must satisfy the reader's promises, which are
// checked here and trap when broken: tensors tile the data section exactly,
// fp32 decoding yields one value per element, and writing the tensors back
// with SafetensorsWriter produces a file the reader accepts with identical
// contents. The input is also run through the JSON parser and writer, whose
// output must parse back to an equal value.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Json.h"
#include "qc/runtime/Safetensors.h"

#include <cstring>
#include <string_view>

namespace {

/// Aborts the run so libFuzzer records the input as a crash.
void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

/// Checks the layout invariants and decodes every tensor.
void exerciseAccepted(const qc::SafetensorsFile &file) {
  uint64_t expected = 0;
  for (const qc::TensorInfo &t : file.tensors()) {
    check(t.begin == expected && t.end >= t.begin);
    check(file.find(t.name) == &t);
    expected = t.end;
    for (bool checkFinite : {true, false}) {
      std::vector<float> values;
      if (file.readAsF32(t, values, checkFinite).isOk())
        check(values.size() == static_cast<size_t>(t.numElements()));
    }
  }
  check(expected == file.dataSize());
}

/// Writes the accepted file's tensors back out and re-reads them.
void roundTrip(const qc::SafetensorsFile &file) {
  qc::SafetensorsWriter writer;
  check(writer.setMetadata(file.metadata()).isOk());
  for (const qc::TensorInfo &t : file.tensors())
    check(writer
              .addView(t.name, t.dtype, t.shape, file.tensorData(t),
                       static_cast<size_t>(t.byteSize()))
              .isOk());
  std::vector<uint8_t> bytes;
  check(writer.serialize(bytes).isOk());
  std::unique_ptr<qc::SafetensorsFile> again;
  check(qc::SafetensorsFile::parse(bytes.data(), bytes.size(), "round-trip",
                                   again)
            .isOk());
  check(again->tensors().size() == file.tensors().size());
  check(again->metadata() == file.metadata());
  for (const qc::TensorInfo &t : file.tensors()) {
    const qc::TensorInfo *u = again->find(t.name);
    check(u && u->dtype == t.dtype && u->shape == t.shape &&
          u->byteSize() == t.byteSize());
    check(t.byteSize() == 0 ||
          std::memcmp(file.tensorData(t), again->tensorData(*u),
                      static_cast<size_t>(t.byteSize())) == 0);
  }
}

/// parse(write(v)) == v for any document the parser accepts.
void jsonRoundTrip(const uint8_t *data, size_t size) {
  qc::json::Value v;
  std::string_view text(reinterpret_cast<const char *>(data), size);
  if (!qc::json::parse(text, v).isOk())
    return;
  for (bool pretty : {false, true}) {
    qc::json::WriteOptions opts;
    opts.pretty = pretty;
    std::string written = qc::json::write(v, opts);
    qc::json::Value back;
    check(qc::json::parse(written, back).isOk());
    // NaN cannot come out of the parser, so equality is well defined.
    check(back == v);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::unique_ptr<qc::SafetensorsFile> file;
  if (qc::SafetensorsFile::parse(data, size, "fuzz-input", file).isOk()) {
    exerciseAccepted(*file);
    roundTrip(*file);
  }
  jsonRoundTrip(data, size);
  return 0;
}
