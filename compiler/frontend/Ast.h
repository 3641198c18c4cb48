// The syntax tree of a .cnv file: what was written, with where it was written.
// No meaning is checked here; that is AST → IR's job (compiler/ir/AstToIr).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "compiler/frontend/Diagnostics.h"

namespace cnv::ast {

struct Dim {
  SourceLocation location;
  std::string symbol;  // empty for an integer dim
  int64_t value = 0;
  bool isSymbol() const { return !symbol.empty(); }
};

struct Identifier {
  std::string text;
  SourceLocation location;
};

struct TensorDecl {
  enum class Kind { Input, Param };
  Kind kind;
  SourceLocation location;
  Identifier name;
  Identifier dtype;
  std::vector<Dim> dims;
  std::optional<Identifier> layout;
};

struct Expr;

// The value of a `key=value` argument.
struct AttrValue {
  enum class Kind { Name, Int, Float, Tuple, Call };
  Kind kind = Kind::Int;
  SourceLocation location;
  std::string name;  // Kind::Name
  int64_t intValue = 0;
  double floatValue = 0;            // Kind::Float, and Kind::Int as a double
  std::vector<AttrValue> elements;  // Kind::Tuple
  std::shared_ptr<Expr> call;       // Kind::Call
};

struct KeywordArg {
  Identifier key;
  AttrValue value;
};

struct Expr {
  enum class Kind { Name, Call };
  Kind kind = Kind::Name;
  SourceLocation location;
  std::string name;  // the referenced name, or the callee
  std::vector<Expr> args;
  std::vector<KeywordArg> keywordArgs;
};

struct Assignment {
  Identifier target;
  Expr value;
};

struct OutputStmt {
  Identifier name;
  std::optional<Identifier> layout;
};

using Statement = std::variant<TensorDecl, Assignment, OutputStmt>;

struct Model {
  Identifier name;
  std::vector<Statement> statements;
};

struct Module {
  std::vector<Model> models;
};

std::string dump(const Module& module);

}  // namespace cnv::ast
