//===- PtxRun.cpp - qc-ptx-run: launch one PTX kernel on .npy data --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Everything goes through the runtime's CudaDriver table, so the same code
// path drives the emulator and a real GPU; the only emulator-specific step
// is choosing its architecture (QC_EMU_ARCH) before the library is loaded.
//
//===----------------------------------------------------------------------===//

#include "PtxRun.h"

#include "Npy.h"
#include "qc/runtime/CudaDriver.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>

namespace qc::ptxrun {

using namespace cuda;

namespace {

uint64_t typeSize(const std::string &t) {
  static const char *const sizes[][2] = {
      {".b8", "1"},  {".u8", "1"},  {".s8", "1"},  {".b16", "2"},
      {".u16", "2"}, {".s16", "2"}, {".f16", "2"}, {".bf16", "2"},
      {".b32", "4"}, {".u32", "4"}, {".s32", "4"}, {".f32", "4"},
      {".b64", "8"}, {".u64", "8"}, {".s64", "8"}, {".f64", "8"}};
  for (auto &s : sizes)
    if (t == s[0])
      return uint64_t(s[1][0] - '0');
  return 0;
}

/// `ptx` with comments replaced by spaces (newlines kept, so that offsets
/// still map to the same lines).
std::string stripComments(const std::string &ptx) {
  std::string s = ptx;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '/' && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n')
        s[i++] = ' ';
    } else if (s[i] == '/' && s[i + 1] == '*') {
      s[i] = s[i + 1] = ' ';
      for (i += 2; i < s.size() &&
                   !(s[i] == '*' && i + 1 < s.size() && s[i + 1] == '/');
           ++i)
        if (s[i] != '\n')
          s[i] = ' ';
      if (i + 1 < s.size())
        s[i] = s[i + 1] = ' ';
    }
  }
  return s;
}

size_t lineOf(const std::string &s, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < s.size(); ++i)
    line += s[i] == '\n';
  return line;
}

bool isIdent(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         c == '%' || c == '.';
}

bool parseU32(const std::string &s, uint32_t lo, uint32_t hi, uint32_t &out) {
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < lo || v > hi)
    return false;
  out = uint32_t(v);
  return true;
}

Status parseDim3(const std::string &flag, const std::string &s,
                 uint32_t out[3]) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string p;
  while (std::getline(ss, p, ','))
    parts.push_back(p);
  if (parts.empty() || parts.size() > 3)
    return Status::error(flag + ": \"" + s + "\" is not X[,Y[,Z]]");
  out[0] = out[1] = out[2] = 1;
  for (size_t i = 0; i < parts.size(); ++i)
    if (!parseU32(parts[i], 1, 0x7fffffff, out[i]))
      return Status::error(flag + ": \"" + parts[i] +
                           "\" is not a positive integer");
  return Status::ok();
}

template <typename T> std::vector<uint8_t> bytesOf(T v) {
  std::vector<uint8_t> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}

Status parseScalar(const std::string &type, const std::string &text,
                   std::vector<uint8_t> &out) {
  auto bad = [&] {
    return Status::error("\"" + text + "\" is not a valid " + type + " value");
  };
  const char *b = text.data(), *e = text.data() + text.size();
  if (type == "u32" || type == "u64") {
    uint64_t v;
    auto r = std::from_chars(b, e, v);
    if (text.empty() || r.ec != std::errc() || r.ptr != e ||
        (type == "u32" && v > 0xffffffffull))
      return bad();
    out = type == "u32" ? bytesOf(uint32_t(v)) : bytesOf(v);
  } else if (type == "s32" || type == "s64") {
    int64_t v;
    auto r = std::from_chars(b, e, v);
    if (text.empty() || r.ec != std::errc() || r.ptr != e ||
        (type == "s32" && (v < INT32_MIN || v > INT32_MAX)))
      return bad();
    out = type == "s32" ? bytesOf(int32_t(v)) : bytesOf(v);
  } else if (type == "f32" || type == "f64") {
    if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])))
      return bad();
    char *end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (*end || errno == ERANGE)
      return bad();
    out = type == "f32" ? bytesOf(float(v)) : bytesOf(v);
  } else {
    return Status::error("unknown scalar type \"" + type +
                         "\" (u32, s32, u64, s64, f32, f64)");
  }
  return Status::ok();
}

std::string readFile(const std::string &path, bool &ok) {
  std::ifstream f(path, std::ios::binary);
  ok = bool(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

} // namespace

Status entryParams(const std::string &ptxText, const std::string &kernel,
                   const std::string &name, std::vector<PtxParam> &out) {
  out.clear();
  const std::string s = stripComments(ptxText);
  size_t pos = 0;
  while ((pos = s.find(".entry", pos)) != std::string::npos) {
    size_t i = pos + 6;
    if (pos > 0 && isIdent(s[pos - 1])) {
      pos = i;
      continue;
    }
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
      ++i;
    size_t n0 = i;
    while (i < s.size() && isIdent(s[i]))
      ++i;
    if (s.compare(n0, i - n0, kernel) != 0 || i - n0 != kernel.size()) {
      pos = i;
      continue;
    }
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
      ++i;
    if (i >= s.size() || s[i] != '(')
      return Status::ok(); // no parameter list: no parameters
    size_t close = s.find(')', i);
    if (close == std::string::npos)
      return Status::error(name + ":" + std::to_string(lineOf(s, i)) +
                           ": unterminated parameter list of .entry " + kernel);
    std::string list = s.substr(i + 1, close - i - 1);
    size_t at = i + 1;
    std::stringstream ls(list);
    std::string decl;
    while (std::getline(ls, decl, ',')) {
      const size_t line = lineOf(s, at);
      at += decl.size() + 1;
      std::stringstream ds(decl);
      std::vector<std::string> toks;
      std::string t;
      while (ds >> t)
        toks.push_back(t);
      if (toks.empty())
        continue;
      PtxParam p;
      uint64_t elem = 0;
      if (toks[0] != ".param")
        return Status::error(name + ":" + std::to_string(line) +
                             ": expected .param in the parameters of " +
                             kernel);
      for (size_t k = 1; k + 1 < toks.size(); ++k) {
        if (uint64_t sz = typeSize(toks[k])) {
          p.type = toks[k];
          elem = sz;
        } else if (toks[k] == ".align") {
          ++k; // its value
        }
      }
      std::string last = toks.back();
      uint64_t count = 1;
      size_t br = last.find('[');
      if (br != std::string::npos) {
        std::string num = last.substr(br + 1, last.size() - br - 2);
        uint32_t c;
        if (last.back() != ']' || !parseU32(num, 1, 1u << 20, c))
          return Status::error(name + ":" + std::to_string(line) +
                               ": bad array size in parameter " + last);
        count = c;
        last = last.substr(0, br);
      }
      if (!elem)
        return Status::error(name + ":" + std::to_string(line) +
                             ": parameter " + last + " of " + kernel +
                             " has no type qc-ptx-run understands");
      p.name = last;
      p.size = elem * count;
      out.push_back(p);
    }
    return Status::ok();
  }
  return Status::error(name + ": no .entry named \"" + kernel + "\"");
}

Status parseArg(const std::string &text, Arg &a) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::error("--arg \"" + text + "\": expected NAME=KIND:VALUE");
  a = Arg();
  a.name = text.substr(0, eq);
  if (a.name.find_first_of("/\\") != std::string::npos || a.name == "." ||
      a.name == "..")
    return Status::error("--arg \"" + text +
                         "\": NAME names an output file: no '/' allowed");
  std::string rest = text.substr(eq + 1);
  size_t colon = rest.find(':');
  if (colon == std::string::npos)
    return Status::error("--arg \"" + text + "\": expected NAME=KIND:VALUE");
  std::string kind = rest.substr(0, colon), value = rest.substr(colon + 1);
  const std::string where = "--arg " + a.name + ": ";
  if (kind == "in" || kind == "inout") {
    a.kind = kind == "in" ? Arg::In : Arg::InOut;
    if (value.empty())
      return Status::error(where + "no file given");
    a.file = value;
  } else if (kind == "out") {
    a.kind = Arg::Out;
    size_t c2 = value.find(':');
    if (c2 == std::string::npos)
      return Status::error(where + "expected out:DTYPE:D0xD1x...");
    a.dtype = value.substr(0, c2);
    npy::DType dt;
    QC_RETURN_IF_ERROR(
        npy::parseDTypeName(a.dtype, dt).withContext("--arg " + a.name));
    std::stringstream ss(value.substr(c2 + 1));
    std::string d;
    while (std::getline(ss, d, 'x')) {
      uint32_t v;
      if (!parseU32(d, 1, 1u << 30, v))
        return Status::error(where + "dimension \"" + d +
                             "\" is not a positive integer");
      a.shape.push_back(v);
    }
    if (a.shape.empty())
      return Status::error(where + "no shape given");
  } else {
    a.kind = Arg::Scalar;
    a.dtype = kind;
    QC_RETURN_IF_ERROR(
        parseScalar(kind, value, a.value).withContext("--arg " + a.name));
  }
  return Status::ok();
}

std::string usage() {
  return "usage: qc-ptx-run FILE.ptx --kernel NAME --grid X,Y,Z --block X,Y,Z\n"
         "                  [--shared BYTES] [--arch sm_80|sm_90a]\n"
         "                  [--driver emu|real|PATH] --out DIR --arg ...\n"
         "\n"
         "Runs one kernel of a PTX file once, on the qc PTX emulator by\n"
         "default, with one --arg per kernel parameter in .param order:\n"
         "  NAME=in:FILE.npy        array uploaded, its device address passed\n"
         "  NAME=inout:FILE.npy     the same, written back as DIR/NAME.npy\n"
         "  NAME=out:DTYPE:D0xD1..  buffer filled with 0xFF bytes, written "
         "back\n"
         "                          as DIR/NAME.npy (DTYPE f16 f32 f64 i8 i16\n"
         "                          i32 i64 u8 u16 u32 u64 bool)\n"
         "  NAME=u32:17             scalar by value (also s32 u64 s64 f32 "
         "f64)\n"
         "\n"
         "  --shared BYTES   dynamic shared memory of the launch (default 0)\n"
         "  --arch A         emulated architecture (default sm_80); with a\n"
         "                   real GPU, checked against the device\n"
         "  --driver D       emu (default), real (libcuda.so.1) or a library\n"
         "\n"
         "exit codes: 0 ok, 1 usage, 2 input file error, 3 no driver, 4 the\n"
         "kernel failed to load or run (the emulator's message names the\n"
         "kernel, block, thread and PTX line)\n";
}

Status parseArgs(int argc, const char *const *argv, Options &o,
                 bool &helpShown) {
  helpShown = false;
  Options r;
  bool haveGrid = false, haveBlock = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string &v) -> Status {
      if (i + 1 >= argc)
        return Status::error(a + " needs a value");
      v = argv[++i];
      return Status::ok();
    };
    std::string v;
    if (a == "--help" || a == "-h") {
      helpShown = true;
      return Status::ok();
    } else if (a == "--kernel") {
      QC_RETURN_IF_ERROR(value(r.kernel));
    } else if (a == "--grid") {
      QC_RETURN_IF_ERROR(value(v));
      QC_RETURN_IF_ERROR(parseDim3(a, v, r.grid));
      haveGrid = true;
    } else if (a == "--block") {
      QC_RETURN_IF_ERROR(value(v));
      QC_RETURN_IF_ERROR(parseDim3(a, v, r.block));
      haveBlock = true;
    } else if (a == "--shared") {
      QC_RETURN_IF_ERROR(value(v));
      if (!parseU32(v, 0, 1u << 20, r.sharedBytes))
        return Status::error("--shared: \"" + v + "\" is not a byte count");
    } else if (a == "--arch") {
      QC_RETURN_IF_ERROR(value(r.arch));
      if (r.arch != "sm_80" && r.arch != "sm_90a")
        return Status::error("--arch: \"" + r.arch +
                             "\" is not sm_80 or sm_90a");
    } else if (a == "--driver") {
      QC_RETURN_IF_ERROR(value(r.driver));
    } else if (a == "--out") {
      QC_RETURN_IF_ERROR(value(r.outDir));
    } else if (a == "--arg") {
      QC_RETURN_IF_ERROR(value(v));
      Arg arg;
      QC_RETURN_IF_ERROR(parseArg(v, arg));
      auto writes = [](const Arg &x) {
        return x.kind == Arg::Out || x.kind == Arg::InOut;
      };
      for (const Arg &other : r.args)
        if (other.name == arg.name && writes(other) && writes(arg))
          return Status::error("--arg " + arg.name +
                               ": two outputs with the same name");
      r.args.push_back(std::move(arg));
    } else if (!a.empty() && a[0] == '-') {
      return Status::error("unknown option \"" + a + "\"");
    } else if (r.ptxPath.empty()) {
      r.ptxPath = a;
    } else {
      return Status::error("unexpected argument \"" + a + "\"");
    }
  }
  if (r.ptxPath.empty())
    return Status::error("no PTX file given");
  if (r.kernel.empty())
    return Status::error("--kernel is required");
  if (!haveGrid || !haveBlock)
    return Status::error("--grid and --block are required");
  if (r.outDir.empty())
    for (const Arg &x : r.args)
      if (x.kind == Arg::Out || x.kind == Arg::InOut)
        return Status::error("--out DIR is required for out/inout arguments");
  o = std::move(r);
  return Status::ok();
}

int ptxRunMain(int argc, const char *const *argv, const std::string &emuLibrary,
               std::ostream &out, std::ostream &err) {
  Options o;
  bool help = false;
  Status st = parseArgs(argc, argv, o, help);
  if (help) {
    out << usage();
    return kExitOk;
  }
  auto report = [&](int code, const Status &s) {
    err << "qc-ptx-run: " << s.message() << "\n";
    return code;
  };
  if (!st) {
    err << "qc-ptx-run: " << st.message() << "\n"
        << "run qc-ptx-run --help for the options\n";
    return kExitUsage;
  }
  bool ok = false;
  std::string ptx = readFile(o.ptxPath, ok);
  if (!ok)
    return report(kExitInput, Status::error(o.ptxPath + ": cannot open"));
  std::vector<PtxParam> params;
  st = entryParams(ptx, o.kernel, o.ptxPath, params);
  if (!st)
    return report(kExitInput, st);
  if (o.args.size() != params.size())
    return report(
        kExitUsage,
        Status::error(o.ptxPath + ": kernel " + o.kernel + " has " +
                      std::to_string(params.size()) + " parameters but " +
                      std::to_string(o.args.size()) + " --arg were given"));
  // Host data of every argument, checked against its parameter.
  std::vector<npy::Array> arrays(o.args.size());
  for (size_t i = 0; i < o.args.size(); ++i) {
    const Arg &a = o.args[i];
    const PtxParam &p = params[i];
    const std::string where = "--arg " + a.name + " (parameter " +
                              std::to_string(i) + ", " + p.name + " " + p.type +
                              ")";
    if (a.kind == Arg::Scalar) {
      if (a.value.size() != p.size)
        return report(kExitUsage,
                      Status::error(where + ": a " + a.dtype + " is " +
                                    std::to_string(a.value.size()) +
                                    " bytes, the parameter " +
                                    std::to_string(p.size)));
      continue;
    }
    if (p.size != 8)
      return report(kExitUsage,
                    Status::error(where + ": a buffer address needs a 64-bit "
                                          "parameter"));
    if (a.kind == Arg::Out) {
      npy::Array &arr = arrays[i];
      (void)npy::parseDTypeName(a.dtype, arr.dtype);
      arr.shape = a.shape;
      uint64_t n = arr.elements();
      if (n > (uint64_t(1) << 34) / arr.dtype.size)
        return report(kExitUsage, Status::error(where + ": shape too large"));
      arr.data.assign(size_t(n * arr.dtype.size), 0xFF);
    } else {
      st = npy::read(a.file, arrays[i]);
      if (!st)
        return report(kExitInput, st.withContext("--arg " + a.name));
    }
  }

  // The driver: the emulator (its architecture chosen before it loads) or
  // a real one.
  std::string library = o.driver == "emu"    ? emuLibrary
                        : o.driver == "real" ? std::string("libcuda.so.1")
                                             : o.driver;
  if (o.driver == "emu" && !o.arch.empty())
    setenv("QC_EMU_ARCH", o.arch.c_str(), 1);
  // The emulator prints launch failures for programs that drop the error;
  // this one reports it itself.
  if (o.driver == "emu")
    setenv("QC_EMU_QUIET", "1", 0);
  const CudaDriver *d = nullptr;
  DriverState state;
  st = CudaDriver::load(d, state, library);
  if (!st)
    return report(kExitNoDriver, st);
  auto check = [&](CUresult r, const std::string &what) {
    return d->check(r, what);
  };
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  if (!(st = check(d->cuDeviceGet(&dev, 0), "cuDeviceGet")) ||
      !(st = check(d->cuDevicePrimaryCtxRetain(&ctx, dev),
                   "cuDevicePrimaryCtxRetain")) ||
      !(st = check(d->cuCtxSetCurrent(ctx), "cuCtxSetCurrent")))
    return report(kExitNoDriver, st);
  if (!o.arch.empty() && !d->emulated) {
    int major = 0, minor = 0;
    d->cuDeviceGetAttribute(&major,
                            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    d->cuDeviceGetAttribute(&minor,
                            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    std::string have = "sm_" + std::to_string(major) + std::to_string(minor);
    if (have + (major == 9 ? "a" : "") != o.arch)
      return report(kExitUsage, Status::error("--arch " + o.arch +
                                              " but the GPU is " + have));
  }
  char name[256] = {0};
  d->cuDeviceGetName(name, sizeof(name) - 1, dev);

  char log[8192] = {0};
  int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log) - 1))};
  CUmodule module = nullptr;
  CUresult r = d->cuModuleLoadDataEx(&module, ptx.c_str(), 2, opts, vals);
  if (r != CUDA_SUCCESS)
    return report(kExitFailed,
                  Status::error(o.ptxPath + ": loading the PTX on " + name +
                                " failed: " + d->describe(r) +
                                (log[0] ? std::string("; log: ") + log : "")));
  CUfunction fn = nullptr;
  if (!(st = check(d->cuModuleGetFunction(&fn, module, o.kernel.c_str()),
                   o.ptxPath + ": kernel " + o.kernel)))
    return report(kExitFailed, st);
  if (o.sharedBytes > 48 * 1024 &&
      !(st = check(d->cuFuncSetAttribute(
                       fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                       int(o.sharedBytes)),
                   "--shared " + std::to_string(o.sharedBytes))))
    return report(kExitFailed, st);

  // Buffers, freed at exit.
  struct Buffers {
    const CudaDriver *d;
    std::vector<CUdeviceptr> p;
    ~Buffers() {
      for (CUdeviceptr x : p)
        if (x)
          d->cuMemFree(x);
    }
  } bufs{d, std::vector<CUdeviceptr>(o.args.size(), 0)};
  std::vector<void *> argv2(o.args.size());
  for (size_t i = 0; i < o.args.size(); ++i) {
    const Arg &a = o.args[i];
    if (a.kind == Arg::Scalar) {
      argv2[i] = const_cast<uint8_t *>(a.value.data());
      continue;
    }
    const npy::Array &arr = arrays[i];
    size_t bytes = arr.data.size();
    if (!(st = check(d->cuMemAlloc(&bufs.p[i], bytes ? bytes : 1),
                     "--arg " + a.name + ": cuMemAlloc of " +
                         std::to_string(bytes) + " bytes")))
      return report(kExitFailed, st);
    if (bytes &&
        !(st = check(d->cuMemcpyHtoD(bufs.p[i], arr.data.data(), bytes),
                     "--arg " + a.name + ": upload")))
      return report(kExitFailed, st);
    argv2[i] = &bufs.p[i];
  }
  r = d->cuLaunchKernel(fn, o.grid[0], o.grid[1], o.grid[2], o.block[0],
                        o.block[1], o.block[2], o.sharedBytes, nullptr,
                        argv2.data(), nullptr);
  if (r == CUDA_SUCCESS)
    r = d->cuCtxSynchronize();
  if (r != CUDA_SUCCESS)
    return report(kExitFailed,
                  Status::error(o.ptxPath + ": kernel " + o.kernel + " on " +
                                name + ": " + d->describe(r)));
  if (!o.outDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.outDir, ec);
    if (ec)
      return report(kExitInput, Status::error(o.outDir + ": cannot create: " +
                                              ec.message()));
  }
  for (size_t i = 0; i < o.args.size(); ++i) {
    const Arg &a = o.args[i];
    if (a.kind != Arg::Out && a.kind != Arg::InOut)
      continue;
    npy::Array &arr = arrays[i];
    if (!arr.data.empty() &&
        !(st = check(
              d->cuMemcpyDtoH(arr.data.data(), bufs.p[i], arr.data.size()),
              "--arg " + a.name + ": download")))
      return report(kExitFailed, st);
    const std::string path = o.outDir + "/" + a.name + ".npy";
    if (!(st = npy::write(path, arr)))
      return report(kExitInput, st);
    out << "wrote " << path << "\n";
  }
  d->cuModuleUnload(module);
  d->cuDevicePrimaryCtxRelease(dev);
  return kExitOk;
}

} // namespace qc::ptxrun
