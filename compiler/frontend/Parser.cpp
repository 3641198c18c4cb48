#include "compiler/frontend/Parser.h"

#include <CnvLexer.h>
#include <CnvParser.h>
#include <antlr4-runtime.h>
#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace cnv {
namespace {

using grammar::CnvLexer;
using grammar::CnvParser;

SourceLocation locationOf(const antlr4::Token* token) {
  // ANTLR columns are 0-based; diagnostics are 1-based.
  return {static_cast<int>(token->getLine()), static_cast<int>(token->getCharPositionInLine()) + 1};
}

SourceLocation locationOf(antlr4::ParserRuleContext* context) {
  return locationOf(context->getStart());
}

// Reports syntax errors instead of ANTLR's default printing to stderr.
class SyntaxErrorListener : public antlr4::BaseErrorListener {
 public:
  explicit SyntaxErrorListener(DiagnosticEngine& diagnostics) : diagnostics_(diagnostics) {}

  void syntaxError(antlr4::Recognizer*, antlr4::Token* offending, size_t line,
                   size_t charPositionInLine, const std::string& message,
                   std::exception_ptr) override {
    SourceLocation location{static_cast<int>(line), static_cast<int>(charPositionInLine) + 1};
    if (offending && offending->getType() == CnvLexer::UNKNOWN_CHAR) {
      diagnostics_.error(location, fmt::format("unexpected character {}",
                                               describeCharacter(offending->getText())));
      return;
    }
    diagnostics_.error(location, "syntax error: " + message);
  }

 private:
  static std::string describeCharacter(const std::string& text) {
    if (text.size() == 1 && std::isprint(static_cast<unsigned char>(text[0])))
      return "'" + text + "'";
    std::string hex;
    for (unsigned char c : text) hex += fmt::format("\\x{:02x}", c);
    return "'" + hex + "'";
  }
  DiagnosticEngine& diagnostics_;
};

// ANTLR's input stream rejects malformed UTF-8 with an exception and no position;
// find the first bad byte ourselves so the user gets a line and column.
bool checkUtf8(const SourceFile& file, DiagnosticEngine& diagnostics) {
  const std::string& text = file.text();
  int line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool ok = length > 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k)
      ok = (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    if (ok && length == 2) ok = c >= 0xC2;
    if (ok && length == 3) {
      unsigned char c1 = text[i + 1];
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && length == 4) {
      unsigned char c1 = text[i + 1];
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90) && c <= 0xF4;
    }
    if (!ok) {
      diagnostics.error({line, column}, fmt::format("invalid UTF-8 byte \\x{:02x}", c));
      return false;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += length;
  }
  return true;
}

// Refuses input nested deeper than kMaxNestingDepth before the recursive parser sees it.
bool checkNesting(antlr4::CommonTokenStream& tokens, DiagnosticEngine& diagnostics) {
  int depth = 0;
  for (antlr4::Token* token : tokens.getTokens()) {
    switch (token->getType()) {
      case CnvLexer::LPAREN:
      case CnvLexer::LBRACK:
      case CnvLexer::LBRACE:
        if (++depth > kMaxNestingDepth) {
          diagnostics.error(locationOf(token),
                            fmt::format("expression nested too deeply (the limit is {} levels)",
                                        kMaxNestingDepth));
          return false;
        }
        break;
      case CnvLexer::RPAREN:
      case CnvLexer::RBRACK:
      case CnvLexer::RBRACE:
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

// Builds the syntax tree from a parse tree that had no syntax errors, so every child
// the grammar requires is present.
class AstBuilder {
 public:
  explicit AstBuilder(DiagnosticEngine& diagnostics) : diagnostics_(diagnostics) {}

  ast::Module build(CnvParser::FileContext* file) {
    ast::Module module;
    for (auto* model : file->model()) module.models.push_back(buildModel(model));
    return module;
  }

 private:
  ast::Identifier identifier(CnvParser::NameContext* name) {
    return {name->getText(), locationOf(name)};
  }

  int64_t integer(antlr4::tree::TerminalNode* node) {
    const std::string& text = node->getText();
    constexpr int64_t kLimit = int64_t{1} << 31;
    int64_t value = 0;
    for (char c : text) {
      value = value * 10 + (c - '0');
      if (value >= kLimit) {
        diagnostics_.error(locationOf(node->getSymbol()),
                           fmt::format("integer {} is out of range (integers must be below 2^31)",
                                       text.size() > 24 ? text.substr(0, 20) + "..." : text));
        return 0;
      }
    }
    return value;
  }

  ast::Model buildModel(CnvParser::ModelContext* context) {
    ast::Model model;
    model.name = identifier(context->name());
    for (auto* statement : context->statement()) {
      if (auto* input = statement->inputDecl())
        model.statements.push_back(buildDecl(ast::TensorDecl::Kind::Input, locationOf(input),
                                             input->name(), input->tensorType(),
                                             input->layoutClause()));
      else if (auto* param = statement->paramDecl())
        model.statements.push_back(buildDecl(ast::TensorDecl::Kind::Param, locationOf(param),
                                             param->name(), param->tensorType(),
                                             param->layoutClause()));
      else if (auto* output = statement->outputStmt())
        model.statements.push_back(buildOutput(output));
      else
        model.statements.push_back(buildAssignment(statement->assignment()));
    }
    return model;
  }

  ast::TensorDecl buildDecl(ast::TensorDecl::Kind kind, SourceLocation location,
                            CnvParser::NameContext* name, CnvParser::TensorTypeContext* type,
                            CnvParser::LayoutClauseContext* layout) {
    ast::TensorDecl decl;
    decl.kind = kind;
    decl.location = location;
    decl.name = identifier(name);
    decl.dtype = identifier(type->dtype);
    for (auto* dim : type->dim()) {
      ast::Dim d;
      d.location = locationOf(dim);
      if (dim->INT())
        d.value = integer(dim->INT());
      else
        d.symbol = dim->name()->getText();
      decl.dims.push_back(d);
    }
    if (layout) decl.layout = identifier(layout->name());
    return decl;
  }

  ast::OutputStmt buildOutput(CnvParser::OutputStmtContext* context) {
    ast::OutputStmt output;
    output.name = identifier(context->name());
    if (context->layoutClause()) output.layout = identifier(context->layoutClause()->name());
    return output;
  }

  ast::Assignment buildAssignment(CnvParser::AssignmentContext* context) {
    return {identifier(context->name()), buildExpr(context->expr())};
  }

  ast::Expr buildExpr(CnvParser::ExprContext* context) {
    if (auto* call = context->call()) return buildCall(call);
    ast::Expr expr;
    expr.kind = ast::Expr::Kind::Name;
    expr.location = locationOf(context);
    expr.name = context->name()->getText();
    return expr;
  }

  ast::Expr buildCall(CnvParser::CallContext* context) {
    ast::Expr expr;
    expr.kind = ast::Expr::Kind::Call;
    expr.location = locationOf(context);
    expr.name = context->callee->getText();
    for (auto* argument : context->argument()) {
      if (auto* keyword = dynamic_cast<CnvParser::KeywordArgumentContext*>(argument)) {
        expr.keywordArgs.push_back({identifier(keyword->key), buildAttr(keyword->attrValue())});
      } else {
        auto* positional = static_cast<CnvParser::PositionalArgumentContext*>(argument);
        if (!expr.keywordArgs.empty())
          diagnostics_.error(locationOf(positional),
                             "positional argument follows a keyword argument");
        expr.args.push_back(buildExpr(positional->expr()));
      }
    }
    return expr;
  }

  ast::AttrValue buildAttr(CnvParser::AttrValueContext* context) {
    ast::AttrValue value;
    value.location = locationOf(context);
    if (auto* tuple = dynamic_cast<CnvParser::TupleValueContext*>(context)) {
      value.kind = ast::AttrValue::Kind::Tuple;
      for (auto* element : tuple->attrValue()) value.elements.push_back(buildAttr(element));
    } else if (auto* number = dynamic_cast<CnvParser::NumberValueContext*>(context)) {
      bool negative = number->sign && number->sign->getType() == CnvLexer::MINUS;
      if (auto* integerToken = number->number()->INT()) {
        value.kind = ast::AttrValue::Kind::Int;
        value.intValue = integer(integerToken) * (negative ? -1 : 1);
        value.floatValue = static_cast<double>(value.intValue);
      } else {
        value.kind = ast::AttrValue::Kind::Float;
        const std::string text = number->number()->FLOAT()->getText();
        value.floatValue = std::strtod(text.c_str(), nullptr) * (negative ? -1 : 1);
        if (!std::isfinite(value.floatValue) ||
            std::fabs(value.floatValue) > std::numeric_limits<float>::max())
          diagnostics_.error(value.location, "number " + text + " is out of range for f32");
      }
    } else {
      auto* expr = static_cast<CnvParser::NameOrCallValueContext*>(context)->expr();
      if (expr->call()) {
        value.kind = ast::AttrValue::Kind::Call;
        value.call = std::make_shared<ast::Expr>(buildCall(expr->call()));
      } else {
        value.kind = ast::AttrValue::Kind::Name;
        value.name = expr->name()->getText();
      }
    }
    return value;
  }

  DiagnosticEngine& diagnostics_;
};

}  // namespace

ast::Module parse(const SourceFile& file, DiagnosticEngine& diagnostics) {
  if (!checkUtf8(file, diagnostics)) diagnostics.throwIfErrors();

  antlr4::ANTLRInputStream input(file.text());
  CnvLexer lexer(&input);
  SyntaxErrorListener listener(diagnostics);
  lexer.removeErrorListeners();
  lexer.addErrorListener(&listener);
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!checkNesting(tokens, diagnostics)) diagnostics.throwIfErrors();

  CnvParser parser(&tokens);
  parser.removeErrorListeners();
  parser.addErrorListener(&listener);
  CnvParser::FileContext* tree = parser.file();
  diagnostics.throwIfErrors();

  ast::Module module = AstBuilder(diagnostics).build(tree);
  if (module.models.empty()) diagnostics.error({1, 1}, "the file holds no model");
  for (size_t i = 0; i < module.models.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (module.models[i].name.text == module.models[j].name.text) {
        diagnostics.error(module.models[i].name.location,
                          fmt::format("redefinition of model '{}'", module.models[i].name.text));
        diagnostics.note(module.models[j].name.location, "first defined here");
        break;
      }
  diagnostics.throwIfErrors();
  return module;
}

}  // namespace cnv
