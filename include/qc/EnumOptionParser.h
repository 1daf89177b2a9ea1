//===- EnumOptionParser.h - Enum options listing their values ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// qc's string-valued choices (layout=auto|gptq|rows, scale-dtype=f16|bf16|f32,
// ...) are enum pass options declared with `::llvm::cl::values(...)`: the
// option parser maps the spelling to the enumerator, --help lists the valid
// spellings, and a pass never sees an unknown one. LLVM's stock parser for
// such options rejects a bad value with "Cannot find option named 'x'!",
// which does not say what would have been accepted. This parser behaves the
// same in every other respect (MLIR's pass options print a value back
// through `Values`, as with the stock parser) but its error lists the valid
// spellings:
//
//   quant-opt: for the --layout option: 'marlin' is not a valid value
//   (expected auto, gptq or rows)
//
// QC_ENUM_OPTION_PARSER(T) makes it the cl::parser of the enum T; it must be
// visible wherever an option of type T is declared (the pass headers
// include it before the generated declarations).
//
//===----------------------------------------------------------------------===//

#ifndef QC_ENUMOPTIONPARSER_H
#define QC_ENUMOPTIONPARSER_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"

#include <string>

namespace mlir::qc {

/// A cl::parser for an option of enum type `T` whose values are given with
/// `::llvm::cl::values(clEnumValN(...), ...)`.
template <typename T>
class EnumOptionParser : public llvm::cl::generic_parser_base {
protected:
  /// One valid spelling and its enumerator. The members are named as in
  /// LLVM's generic parser: MLIR's GenericOptionParser reads `Values[i].V`
  /// and `Values[i].Name` to print an option back.
  class OptionInfo : public GenericOptionInfo {
  public:
    OptionInfo(llvm::StringRef name, T v, llvm::StringRef helpStr)
        : GenericOptionInfo(name, helpStr), V(v) {}
    llvm::cl::OptionValue<T> V;
  };
  llvm::SmallVector<OptionInfo, 8> Values;

public:
  using parser_data_type = T;

  explicit EnumOptionParser(llvm::cl::Option &o) : generic_parser_base(o) {}

  unsigned getNumOptions() const override { return Values.size(); }
  llvm::StringRef getOption(unsigned n) const override {
    return Values[n].Name;
  }
  llvm::StringRef getDescription(unsigned n) const override {
    return Values[n].HelpStr;
  }
  const llvm::cl::GenericOptionValue &
  getOptionValue(unsigned n) const override {
    return Values[n].V;
  }

  /// Maps the spelling to its enumerator; returns true (after printing an
  /// error naming the option and the valid spellings) when there is none.
  bool parse(llvm::cl::Option &o, llvm::StringRef argName, llvm::StringRef arg,
             T &value) {
    // An option without an argument string is spelled by its value
    // (-foo rather than -opt=foo), as in LLVM's parser.
    llvm::StringRef spelling = Owner.hasArgStr() ? arg : argName;
    for (const OptionInfo &info : Values)
      if (info.Name == spelling) {
        value = info.V.getValue();
        return false;
      }
    return o.error("'" + spelling + "' is not a valid value (expected " +
                   validSpellings() + ")");
  }

  /// The valid spellings in words: "auto, gptq or rows".
  std::string validSpellings() const {
    std::string s;
    for (size_t i = 0; i < Values.size(); ++i)
      s += (i == 0                   ? ""
            : i + 1 == Values.size() ? " or "
                                     : ", ") +
           Values[i].Name.str();
    return s;
  }

  /// Called by ::llvm::cl::values for each clEnumValN.
  template <typename DT>
  void addLiteralOption(llvm::StringRef name, const DT &v,
                        llvm::StringRef helpStr) {
    Values.emplace_back(name, static_cast<T>(v), helpStr);
    llvm::cl::AddLiteralOption(Owner, name);
  }

  void removeLiteralOption(llvm::StringRef name) {
    for (auto it = Values.begin(); it != Values.end(); ++it)
      if (it->Name == name) {
        Values.erase(it);
        return;
      }
  }
};

} // namespace mlir::qc

/// Makes mlir::qc::EnumOptionParser the cl::parser of the enum type `T` (a
/// fully qualified name). Use at global scope.
#define QC_ENUM_OPTION_PARSER(T)                                               \
  namespace llvm::cl {                                                         \
  template <> class parser<T> : public ::mlir::qc::EnumOptionParser<T> {       \
  public:                                                                      \
    using ::mlir::qc::EnumOptionParser<T>::EnumOptionParser;                   \
  };                                                                           \
  }

#endif // QC_ENUMOPTIONPARSER_H
