#include "compiler/ir/SymExpr.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace cnv::ir {

struct SymExpr::Node {
  enum class Kind { Const, Floor, Add, Scale, FloorDiv, Mod, Max };
  Kind kind;
  int64_t value = 0;    // Const; Floor's offset c; Scale's factor; divisor of FloorDiv/Mod
  int64_t divisor = 1;  // Floor's m
  std::string symbol;   // Floor
  // Add, Max (both); Scale, FloorDiv, Mod (lhs). Held as nodes, not SymExprs: a default
  // SymExpr allocates a node, which would recurse.
  std::shared_ptr<const Node> lhsNode, rhsNode;
  SymExpr lhs() const { return SymExpr::fromNode(lhsNode); }
  SymExpr rhs() const { return SymExpr::fromNode(rhsNode); }
};

namespace {

using Kind = SymExpr::Node::Kind;

int64_t checkedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw SymExprOverflow();
  return r;
}
int64_t checkedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw SymExprOverflow();
  return r;
}
int64_t floorDivide(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
int64_t positiveMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

}  // namespace

SymExpr::SymExpr() : SymExpr(int64_t{0}) {}

SymExpr::SymExpr(int64_t constant) {
  auto node = std::make_shared<Node>();
  node->kind = Kind::Const;
  node->value = constant;
  node_ = std::move(node);
}

SymExpr SymExpr::symbol(const std::string& name) {
  auto node = std::make_shared<Node>();
  node->kind = Kind::Floor;
  node->symbol = name;
  return SymExpr(std::move(node));
}

bool SymExpr::isConstant() const { return node_->kind == Kind::Const; }
int64_t SymExpr::constant() const { return node_->value; }

bool SymExpr::positiveForPositiveSymbols() const {
  const Node& n = *node_;
  if (n.kind == Kind::Const) return n.value >= 1;
  return n.kind == Kind::Floor && n.divisor == 1 && n.value >= 0;
}

static SymExpr makeNode(Kind kind, const SymExpr& lhs, const SymExpr& rhs, int64_t value) {
  auto node = std::make_shared<SymExpr::Node>();
  node->kind = kind;
  node->lhsNode = lhs.node();
  node->rhsNode = rhs.node();
  node->value = value;
  return SymExpr::fromNode(std::move(node));
}

SymExpr operator+(const SymExpr& a, const SymExpr& b) {
  if (b.isConstant() && b.constant() == 0) return a;
  if (a.isConstant() && b.isConstant()) return SymExpr(checkedAdd(a.constant(), b.constant()));
  if (a.isConstant()) return b + a;
  if (b.isConstant()) {
    const SymExpr::Node& n = *a.node_;
    if (n.kind == Kind::Floor) {
      // floor((S + c) / m) + k == floor((S + c + k·m) / m)
      auto node = std::make_shared<SymExpr::Node>(n);
      node->value = checkedAdd(n.value, checkedMul(b.constant(), n.divisor));
      return SymExpr::fromNode(std::move(node));
    }
    if (n.kind == Kind::Add && n.rhs().isConstant())
      return n.lhs() + SymExpr(checkedAdd(n.rhs().constant(), b.constant()));
  }
  return makeNode(Kind::Add, a, b, 0);
}

SymExpr operator-(const SymExpr& a, const SymExpr& b) { return a + b * -1; }

SymExpr operator*(const SymExpr& a, int64_t k) {
  if (k == 1) return a;
  if (k == 0) return SymExpr(0);
  if (a.isConstant()) return SymExpr(checkedMul(a.constant(), k));
  const SymExpr::Node& n = *a.node_;
  if (n.kind == Kind::Scale) return n.lhs() * checkedMul(n.value, k);
  if (n.kind == Kind::Add) return n.lhs() * k + n.rhs() * k;
  return makeNode(Kind::Scale, a, SymExpr(), k);
}

SymExpr SymExpr::floorDiv(const SymExpr& a, int64_t divisor) {
  if (divisor < 1) throw std::invalid_argument("SymExpr::floorDiv: divisor must be positive");
  if (divisor == 1) return a;
  if (a.isConstant()) return SymExpr(floorDivide(a.constant(), divisor));
  if (a.node_->kind == Kind::Floor) {
    // floor(floor(x / m) / d) == floor(x / (m·d)) for positive m, d
    auto node = std::make_shared<Node>(*a.node_);
    node->divisor = checkedMul(a.node_->divisor, divisor);
    return SymExpr(std::move(node));
  }
  return makeNode(Kind::FloorDiv, a, SymExpr(), divisor);
}

SymExpr SymExpr::ceilDiv(const SymExpr& a, int64_t divisor) {
  return floorDiv(a + SymExpr(divisor - 1), divisor);
}

SymExpr SymExpr::mod(const SymExpr& a, int64_t divisor) {
  if (divisor < 1) throw std::invalid_argument("SymExpr::mod: divisor must be positive");
  if (divisor == 1) return SymExpr(0);
  if (a.isConstant()) return SymExpr(positiveMod(a.constant(), divisor));
  return makeNode(Kind::Mod, a, SymExpr(), divisor);
}

SymExpr SymExpr::max(const SymExpr& a, const SymExpr& b) {
  if (a.isConstant() && b.isConstant()) return SymExpr(std::max(a.constant(), b.constant()));
  if (a == b) return a;
  return makeNode(Kind::Max, a, b, 0);
}

std::vector<SymExpr::Step> SymExpr::postfix() const {
  std::vector<Step> steps;
  auto walk = [&](const Node& n, auto& self) -> void {
    // Unary nodes carry a placeholder right operand.
    const bool binary = n.kind == Kind::Add || n.kind == Kind::Max;
    if (n.kind != Kind::Const && n.kind != Kind::Floor) self(*n.lhsNode, self);
    if (binary) self(*n.rhsNode, self);
    switch (n.kind) {
      case Kind::Const:
        steps.push_back({Step::Op::Const, n.value, 1, ""});
        break;
      case Kind::Floor:
        steps.push_back({Step::Op::Floor, n.value, n.divisor, n.symbol});
        break;
      case Kind::Add:
        steps.push_back({Step::Op::Add, 0, 1, ""});
        break;
      case Kind::Scale:
        steps.push_back({Step::Op::Scale, n.value, 1, ""});
        break;
      case Kind::FloorDiv:
        steps.push_back({Step::Op::FloorDiv, n.value, 1, ""});
        break;
      case Kind::Mod:
        steps.push_back({Step::Op::Mod, n.value, 1, ""});
        break;
      case Kind::Max:
        steps.push_back({Step::Op::Max, 0, 1, ""});
        break;
    }
  };
  walk(*node_, walk);
  return steps;
}

std::optional<int64_t> SymExpr::evaluate(const SymbolBindings& bindings) const {
  try {
    const Node& n = *node_;
    auto sub = [&](const SymExpr& e) {
      auto v = e.evaluate(bindings);
      if (!v) throw SymExprOverflow();
      return *v;
    };
    switch (n.kind) {
      case Kind::Const:
        return n.value;
      case Kind::Floor: {
        auto it = bindings.find(n.symbol);
        if (it == bindings.end()) return std::nullopt;
        return floorDivide(checkedAdd(it->second, n.value), n.divisor);
      }
      case Kind::Add:
        return checkedAdd(sub(n.lhs()), sub(n.rhs()));
      case Kind::Scale:
        return checkedMul(sub(n.lhs()), n.value);
      case Kind::FloorDiv:
        return floorDivide(sub(n.lhs()), n.value);
      case Kind::Mod:
        return positiveMod(sub(n.lhs()), n.value);
      case Kind::Max:
        return std::max(sub(n.lhs()), sub(n.rhs()));
    }
  } catch (const SymExprOverflow&) {
  }
  return std::nullopt;
}

// A sum printed with its positive terms first and subtractions as " - ", so that
// 2 + -1 * x reads as 2 - x.
static void collectTerms(const SymExpr& e, std::vector<std::pair<bool, SymExpr>>& terms) {
  const SymExpr::Node& n = *e.node();
  if (n.kind == Kind::Add) {
    collectTerms(n.lhs(), terms);
    collectTerms(n.rhs(), terms);
  } else if (n.kind == Kind::Scale && n.value < 0 && n.value != INT64_MIN) {
    terms.push_back({false, n.lhs() * -n.value});
  } else if (n.kind == Kind::Const && n.value < 0 && n.value != INT64_MIN) {
    terms.push_back({false, SymExpr(-n.value)});
  } else {
    terms.push_back({true, e});
  }
}

static bool isAtom(const SymExpr::Node& n);

static std::string printSum(const SymExpr& e) {
  std::vector<std::pair<bool, SymExpr>> terms;
  collectTerms(e, terms);
  std::stable_partition(terms.begin(), terms.end(), [](const auto& t) { return t.first; });
  std::string out;
  for (const auto& [positive, term] : terms) {
    std::string text = term.str();
    bool compound = term.node()->kind == Kind::Add;
    if (!positive && compound) text = "(" + text + ")";
    if (out.empty())
      out = positive ? text : "-" + (isAtom(*term.node()) ? text : "(" + text + ")");
    else
      out += (positive ? " + " : " - ") + text;
  }
  return out;
}

static bool isAtom(const SymExpr::Node& n) {
  return n.kind == Kind::Const || n.kind == Kind::Max || n.kind == Kind::FloorDiv ||
         (n.kind == Kind::Floor && (n.divisor > 1 || n.value == 0));
}

std::string SymExpr::str() const {
  const Node& n = *node_;
  auto operand = [](const SymExpr& e) { return isAtom(*e.node_) ? e.str() : "(" + e.str() + ")"; };
  auto plus = [](const std::string& a, int64_t c) {
    if (c == 0) return a;
    if (c > 0) return fmt::format("{} + {}", a, c);
    return fmt::format("{} - {}", a, static_cast<uint64_t>(-(c + 1)) + 1);
  };
  switch (n.kind) {
    case Kind::Const:
      return std::to_string(n.value);
    case Kind::Floor:
      if (n.divisor == 1) return plus(n.symbol, n.value);
      if (n.value == n.divisor - 1) return fmt::format("ceil({} / {})", n.symbol, n.divisor);
      if (n.value == 0) return fmt::format("floor({} / {})", n.symbol, n.divisor);
      return fmt::format("floor(({}) / {})", plus(n.symbol, n.value), n.divisor);
    case Kind::Add:
      return printSum(*this);
    case Kind::Scale:
      if (n.value == -1) return "-" + operand(n.lhs());
      return fmt::format("{} * {}", n.value, operand(n.lhs()));
    case Kind::FloorDiv:
      return fmt::format("floor({} / {})", operand(n.lhs()), n.value);
    case Kind::Mod:
      return fmt::format("{} mod {}", operand(n.lhs()), n.value);
    case Kind::Max:
      return fmt::format("max({}, {})", n.lhs().str(), n.rhs().str());
  }
  return "?";
}

bool SymExpr::operator==(const SymExpr& other) const {
  const Node& a = *node_;
  const Node& b = *other.node_;
  if (&a == &b) return true;
  if (a.kind != b.kind || a.value != b.value || a.divisor != b.divisor || a.symbol != b.symbol)
    return false;
  switch (a.kind) {
    case Kind::Const:
    case Kind::Floor:
      return true;
    case Kind::Add:
    case Kind::Max:
      return a.lhs() == b.lhs() && a.rhs() == b.rhs();
    default:
      return a.lhs() == b.lhs();
  }
}

}  // namespace cnv::ir
