//===- ReportSchemaTest.cpp - report.json against docs/report.schema.json -===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The report schema in docs/ is only worth something if real reports follow
// it: these tests run quant-compile (RTN without calibration, GPTQ with it)
// on stories260K and validate each report.json against the committed schema
// with a small validator of the JSON Schema keywords the schema uses (type,
// const, enum, minimum, properties, required, additionalProperties, items).
// The validator itself is checked on reports broken on purpose, so that a
// test that cannot fail is not mistaken for a passing one.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace json = qc::json;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::Value parseFile(const std::string &path) {
  json::Value v;
  qc::Status s = json::parse(readFile(path), v);
  EXPECT_TRUE(s.isOk()) << path << ": " << s.message();
  return v;
}

/// Whether `v` has the JSON Schema type `type`.
bool hasType(const json::Value &v, const std::string &type) {
  if (type == "object")
    return v.isObject();
  if (type == "array")
    return v.isArray();
  if (type == "string")
    return v.isString();
  if (type == "boolean")
    return v.isBool();
  if (type == "null")
    return v.isNull();
  if (type == "number")
    return v.isNumber();
  if (type == "integer")
    return v.isNumber() && (v.isInt64() || v.isUInt64() ||
                            std::floor(v.asDouble()) == v.asDouble());
  ADD_FAILURE() << "schema uses unknown type '" << type << "'";
  return false;
}

/// Appends one line per violation of `schema` by `v` (at JSON path `at`).
void validate(const json::Value &v, const json::Value &schema,
              const std::string &at, std::vector<std::string> &errors) {
  if (const json::Value *t = schema.find("type")) {
    bool ok = false;
    if (t->isString())
      ok = hasType(v, t->asString());
    else
      for (const json::Value &each : t->asArray())
        ok |= hasType(v, each.asString());
    if (!ok) {
      errors.push_back(at + ": expected type " + json::write(*t) + ", got " +
                       json::write(v));
      return;
    }
  }
  if (const json::Value *c = schema.find("const"); c && !(*c == v))
    errors.push_back(at + ": expected " + json::write(*c) + ", got " +
                     json::write(v));
  if (const json::Value *e = schema.find("enum")) {
    bool found = false;
    for (const json::Value &each : e->asArray())
      found |= each == v;
    if (!found)
      errors.push_back(at + ": " + json::write(v) + " is not one of " +
                       json::write(*e));
  }
  if (const json::Value *m = schema.find("minimum");
      m && v.isNumber() && v.asDouble() < m->asDouble())
    errors.push_back(at + ": " + json::write(v) + " is below the minimum " +
                     json::write(*m));
  if (v.isObject()) {
    if (const json::Value *req = schema.find("required"))
      for (const json::Value &key : req->asArray())
        if (!v.find(key.asString()))
          errors.push_back(at + ": missing required key '" + key.asString() +
                           "'");
    const json::Value *props = schema.find("properties");
    const json::Value *extra = schema.find("additionalProperties");
    for (const auto &[key, member] : v.asObject()) {
      const json::Value *sub = props ? props->find(key) : nullptr;
      if (sub)
        validate(member, *sub, at + "." + key, errors);
      else if (extra && extra->isBool() && !extra->asBool())
        errors.push_back(at + ": key '" + key + "' is not in the schema");
    }
  }
  if (v.isArray())
    if (const json::Value *items = schema.find("items"))
      for (size_t i = 0; i < v.asArray().size(); ++i)
        validate(v.asArray()[i], *items, at + "[" + std::to_string(i) + "]",
                 errors);
}

std::vector<std::string> check(const json::Value &report) {
  json::Value schema =
      parseFile(std::string(QC_SOURCE_DIR) + "/docs/report.schema.json");
  std::vector<std::string> errors;
  validate(report, schema, "report", errors);
  return errors;
}

std::string joined(const std::vector<std::string> &lines) {
  std::string s;
  for (const std::string &l : lines)
    s += l + "\n";
  return s;
}

/// A scratch folder removed at the end of the test.
struct Scratch {
  std::string dir;
  Scratch() {
    char tmpl[] = "/tmp/qc_report_XXXXXX";
    dir = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~Scratch() {
    if (!dir.empty())
      std::system(("rm -rf '" + dir + "'").c_str());
  }
};

/// Runs quant-compile on stories260K with `recipe` (JSON text) and extra
/// arguments; returns its report.json.
json::Value compileReport(const Scratch &tmp, const std::string &recipe,
                          const std::string &extra) {
  std::string recipePath = tmp.dir + "/recipe.json";
  std::ofstream(recipePath) << recipe;
  std::string shared = QC_SHARED_DIR;
  std::string cmd = std::string(QC_TOOLS_DIR) + "/quant-compile " + shared +
                    "/models/stories260K/stories260K.bin --recipe " +
                    recipePath + " -o " + tmp.dir + "/out --no-progress " +
                    extra + " > " + tmp.dir + "/log 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << readFile(tmp.dir + "/log");
  return parseFile(tmp.dir + "/out/report.json");
}

} // namespace

TEST(ReportSchema, SchemaIsAVersionedObjectSchema) {
  json::Value schema =
      parseFile(std::string(QC_SOURCE_DIR) + "/docs/report.schema.json");
  ASSERT_TRUE(schema.isObject());
  const json::Value *version =
      schema.find("properties")->find("schema_version")->find("const");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version->asInt64(), 1);
}

TEST(ReportSchema, RTNReportValidates) {
  Scratch tmp;
  ASSERT_FALSE(tmp.dir.empty());
  json::Value report = compileReport(
      tmp, R"({"method": "rtn", "bits": 4, "group_size": 32})", "");
  std::vector<std::string> errors = check(report);
  EXPECT_TRUE(errors.empty()) << joined(errors);
  ASSERT_TRUE(report.find("layers")->isArray());
  EXPECT_EQ(report.find("layers")->asArray().size(), 35u);
}

TEST(ReportSchema, GPTQReportValidatesWithNumericTokenCount) {
  Scratch tmp;
  ASSERT_FALSE(tmp.dir.empty());
  std::string shared = QC_SHARED_DIR;
  json::Value report = compileReport(
      tmp,
      R"({"method": "gptq", "bits": 4, "group_size": 32, "calibration": {"max_tokens": 1022, "samples": 2}})",
      "--calib " + shared + "/data/tinystories/train_head.txt --tokenizer " +
          shared + "/models/stories260K/tok512.bin");
  std::vector<std::string> errors = check(report);
  EXPECT_TRUE(errors.empty()) << joined(errors);
  const json::Value *tokens = report.find("calibration")->find("tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_TRUE(tokens->isInt64());
  EXPECT_GT(tokens->asInt64(), 0);

  // The validator is not a rubber stamp: a string count, a missing key and
  // an undocumented key are each reported.
  json::Value broken = report;
  json::Value calib = *broken.find("calibration");
  calib.set("tokens", json::Value::string("1024"));
  broken.set("calibration", calib);
  errors = check(broken);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_NE(errors[0].find("report.calibration.tokens: expected type"),
            std::string::npos);

  json::Value::Object members = report.asObject();
  json::Value missing = json::Value::object();
  json::Value extra = json::Value::object();
  for (const auto &[k, v] : members) {
    if (k != "pipeline")
      missing.set(k, v);
    extra.set(k, v);
  }
  extra.set("surprise", json::Value::integer(1));
  errors = check(missing);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_NE(errors[0].find("missing required key 'pipeline'"),
            std::string::npos);
  errors = check(extra);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_NE(errors[0].find("'surprise' is not in the schema"),
            std::string::npos);
}
