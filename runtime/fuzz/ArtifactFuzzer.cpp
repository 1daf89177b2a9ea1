//===- ArtifactFuzzer.cpp - libFuzzer target for the artifact reader ------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to parseArtifact. The header checksum would reject
// almost every mutation before the manifest is looked at, so for three
// inputs in four (by size) the fuzzer first rewrites the size and checksum
// fields to match the input: the manifest, section and cross-reference
// checks then see the mutated bytes; the rest test the header checks. Accepted
// artifacts must keep the reader's promises (trap otherwise): they validate,
// serialize again, and the result parses back to an artifact that serializes
// identically.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Artifact.h"

#include <cstring>
#include <vector>

namespace {

void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<uint8_t> in(data, data + size);
  if (size >= 48 && size % 4 != 3) {
    uint64_t total = size;
    std::memcpy(in.data() + 24, &total, 8);
    uint64_t h = fnv1a(in.data() + 48, size - 48);
    std::memcpy(in.data() + 32, &h, 8);
  }
  qc::Artifact a;
  qc::Status st = qc::parseArtifact(in.data(), in.size(), "fuzz.qcart", a);
  if (!st) {
    check(!st.message().empty());
    return 0;
  }
  check(qc::validateArtifact(a, "fuzz.qcart").isOk());
  std::vector<uint8_t> again, third;
  check(qc::serializeArtifact(a, again).isOk());
  qc::Artifact b;
  check(qc::parseArtifact(again.data(), again.size(), "again", b).isOk());
  check(qc::serializeArtifact(b, third).isOk());
  check(again == third);
  return 0;
}
