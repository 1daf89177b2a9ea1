//===- CompiledCodeCacheTest.cpp - Parallel codegen and the object cache --===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// stories260K compiled with CpuCompileOptions::cacheDir: the second compile
// loads the cached objects and computes bit-identical logits; so does code
// generated as one part or as several; a torn or corrupted cache entry is
// recompiled and replaced; a cache folder that cannot be written costs the
// cache, not the run.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Import/LoadModel.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Process.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace {

const std::string kModel =
    std::string(QC_SHARED_DIR) + "/models/stories260K/stories260K.bin";

/// A fresh folder under the test temp dir, removed at the end.
struct TempFolder {
  explicit TempFolder(const std::string &name)
      : path(::testing::TempDir() + "/qc-cache-" + name + "-" +
             std::to_string(llvm::sys::Process::getProcessId())) {
    std::filesystem::remove_all(path);
  }
  ~TempFolder() { std::filesystem::remove_all(path); }
  std::string path;
};

/// Compiles stories260K and returns the logits of a fixed 9-token input.
std::vector<float> run(const mlir::qc::CpuCompileOptions &options,
                       bool &fromCache) {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::ModelWeights weights;
  qc::Status s = mlir::qc::openModel(ctx, kModel, module, weights);
  EXPECT_TRUE(s) << s.message();
  if (!s)
    return {};
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  s = mlir::qc::CpuExecutable::compile(*module, weights, exe, options);
  EXPECT_TRUE(s) << s.message();
  if (!s)
    return {};
  fromCache = exe->fromCache();
  std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 430, 275, 5, 300};
  std::vector<float> logits(tokens.size() * exe->vocabSize());
  s = exe->forward(tokens.data(), static_cast<int64_t>(tokens.size()),
                   logits.data());
  EXPECT_TRUE(s) << s.message();
  return logits;
}

/// The cache entries (files named llvmcache-qc-*) in `dir`.
std::vector<std::string> entries(const std::string &dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir))
    return out;
  for (const auto &e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("llvmcache-qc-", 0) == 0)
      out.push_back(e.path().string());
  return out;
}

TEST(CompiledCodeCache, SecondCompileLoadsTheSameCode) {
  TempFolder cache("hit");
  mlir::qc::CpuCompileOptions options;
  options.cacheDir = cache.path;
  options.codegenThreads = 2;
  bool cached = true;
  std::vector<float> first = run(options, cached);
  EXPECT_FALSE(cached);
  ASSERT_EQ(entries(cache.path).size(), 1u);
  std::vector<float> second = run(options, cached);
  EXPECT_TRUE(cached);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, second);
  // Another setting that changes the machine code is another entry.
  options.optLevel = 1;
  run(options, cached);
  EXPECT_FALSE(cached);
  EXPECT_EQ(entries(cache.path).size(), 2u);
}

TEST(CompiledCodeCache, PartsGiveTheSameLogitsAsOneObject) {
  bool cached = false;
  mlir::qc::CpuCompileOptions options;
  options.codegenThreads = 1;
  std::vector<float> one = run(options, cached);
  options.codegenThreads = 3;
  std::vector<float> three = run(options, cached);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(one, three);
}

TEST(CompiledCodeCache, DamagedEntriesAreRecompiled) {
  TempFolder cache("damaged");
  mlir::qc::CpuCompileOptions options;
  options.cacheDir = cache.path;
  options.codegenThreads = 2;
  bool cached = false;
  std::vector<float> reference = run(options, cached);
  std::vector<std::string> files = entries(cache.path);
  ASSERT_EQ(files.size(), 1u);
  auto size = std::filesystem::file_size(files[0]);
  // One flipped byte in the middle, then a truncation, then an empty file.
  for (int damage = 0; damage < 3; ++damage) {
    SCOPED_TRACE("damage " + std::to_string(damage));
    if (damage == 0) {
      std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(size / 2));
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x5a);
      f.seekp(static_cast<std::streamoff>(size / 2));
      f.write(&c, 1);
    } else {
      std::filesystem::resize_file(files[0], damage == 1 ? size / 3 : 0);
    }
    std::vector<float> again = run(options, cached);
    EXPECT_FALSE(cached);
    EXPECT_EQ(again, reference);
    // The recompile replaced the entry with a whole one.
    EXPECT_EQ(std::filesystem::file_size(files[0]), size);
    run(options, cached);
    EXPECT_TRUE(cached);
  }
}

TEST(CompiledCodeCache, InterfaceWithoutItsObjectsRecompiles) {
  TempFolder cache("orphan");
  mlir::qc::CpuCompileOptions options;
  options.cacheDir = cache.path;
  bool cached = false;
  std::vector<float> reference = run(options, cached);
  // The model's interface entry stays; the machine code it names goes.
  for (const std::string &f : entries(cache.path))
    std::filesystem::remove(f);
  std::vector<float> again = run(options, cached);
  EXPECT_FALSE(cached);
  EXPECT_EQ(again, reference);
  run(options, cached);
  EXPECT_TRUE(cached);
  // A damaged interface entry is ignored and rewritten the same way.
  for (const auto &e : std::filesystem::directory_iterator(cache.path))
    if (e.path().filename().string().rfind("llvmcache-qcif-", 0) == 0)
      std::ofstream(e.path()) << "{\"format\": \"qc-compiled-interface-1\"";
  again = run(options, cached);
  EXPECT_EQ(again, reference);
  run(options, cached);
  EXPECT_TRUE(cached);
}

TEST(CompiledCodeCache, CachedInterfaceStillChecksTheWeights) {
  TempFolder cache("weights");
  mlir::qc::CpuCompileOptions options;
  options.cacheDir = cache.path;
  bool cached = false;
  run(options, cached);
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::ModelWeights weights;
  ASSERT_TRUE(mlir::qc::openModel(ctx, kModel, module, weights));
  // A weight the model takes (a query projection), one column short.
  std::string name;
  for (auto &[n, t] : weights.tensors)
    if (n.find("q_proj") != std::string::npos) {
      name = n;
      t.shape.back() -= 1;
      break;
    }
  ASSERT_FALSE(name.empty());
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s =
      mlir::qc::CpuExecutable::compile(*module, weights, exe, options);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("'" + name + "'"), std::string::npos)
      << s.message();
}

TEST(CompiledCodeCache, UnwritableFolderStillRuns) {
  TempFolder parent("unwritable");
  std::filesystem::create_directories(parent.path);
  // A regular file where the cache folder would be.
  std::string blocked = parent.path + "/file";
  std::ofstream(blocked) << "not a folder";
  mlir::qc::CpuCompileOptions options;
  options.cacheDir = blocked + "/cache";
  bool cached = true;
  std::vector<float> logits = run(options, cached);
  EXPECT_FALSE(cached);
  EXPECT_FALSE(logits.empty());
}

TEST(CompiledCodeCache, DefaultFolderFollowsTheEnvironment) {
  const char *saved = std::getenv("QC_CACHE_DIR");
  std::string savedValue = saved ? saved : "";
  setenv("QC_CACHE_DIR", "/some/where", 1);
  EXPECT_EQ(mlir::qc::defaultJitCacheDir(), "/some/where");
  unsetenv("QC_CACHE_DIR");
  const char *savedXdg = std::getenv("XDG_CACHE_HOME");
  std::string savedXdgValue = savedXdg ? savedXdg : "";
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(mlir::qc::defaultJitCacheDir(), "/xdg/qc/jit");
  if (savedXdg)
    setenv("XDG_CACHE_HOME", savedXdgValue.c_str(), 1);
  else
    unsetenv("XDG_CACHE_HOME");
  if (saved)
    setenv("QC_CACHE_DIR", savedValue.c_str(), 1);
}

} // namespace
