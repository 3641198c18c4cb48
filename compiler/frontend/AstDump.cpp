#include <fmt/format.h>

#include "compiler/frontend/Ast.h"

namespace cnv::ast {
namespace {

std::string at(SourceLocation l) { return fmt::format("@{}:{}", l.line, l.column); }

std::string dumpAttr(const AttrValue& v);

std::string dumpExpr(const Expr& e) {
  if (e.kind == Expr::Kind::Name) return e.name;
  std::vector<std::string> parts;
  for (const Expr& a : e.args) parts.push_back(dumpExpr(a));
  for (const KeywordArg& k : e.keywordArgs) parts.push_back(k.key.text + "=" + dumpAttr(k.value));
  return fmt::format("{}({})", e.name, fmt::join(parts, ", "));
}

std::string dumpAttr(const AttrValue& v) {
  switch (v.kind) {
    case AttrValue::Kind::Name:
      return v.name;
    case AttrValue::Kind::Int:
      return std::to_string(v.intValue);
    case AttrValue::Kind::Float:
      return fmt::format("{}", v.floatValue);
    case AttrValue::Kind::Call:
      return dumpExpr(*v.call);
    case AttrValue::Kind::Tuple: {
      std::vector<std::string> parts;
      for (const AttrValue& e : v.elements) parts.push_back(dumpAttr(e));
      return fmt::format("({})", fmt::join(parts, ", "));
    }
  }
  return "?";
}

}  // namespace

std::string dump(const Module& module) {
  std::string out;
  for (const Model& model : module.models) {
    out += fmt::format("Model {} {}\n", model.name.text, at(model.name.location));
    for (const Statement& s : model.statements) {
      if (auto* d = std::get_if<TensorDecl>(&s)) {
        std::vector<std::string> dims;
        for (const Dim& dim : d->dims)
          dims.push_back(dim.isSymbol() ? dim.symbol : std::to_string(dim.value));
        out += fmt::format("  {} {} : {}[{}]{} {}\n",
                           d->kind == TensorDecl::Kind::Input ? "Input" : "Param", d->name.text,
                           d->dtype.text, fmt::join(dims, ", "),
                           d->layout ? " layout " + d->layout->text : "", at(d->location));
      } else if (auto* a = std::get_if<Assignment>(&s)) {
        out += fmt::format("  Assign {} = {} {}\n", a->target.text, dumpExpr(a->value),
                           at(a->target.location));
      } else if (auto* o = std::get_if<OutputStmt>(&s)) {
        out += fmt::format("  Output {}{} {}\n", o->name.text,
                           o->layout ? " layout " + o->layout->text : "", at(o->name.location));
      }
    }
  }
  return out;
}

}  // namespace cnv::ast
