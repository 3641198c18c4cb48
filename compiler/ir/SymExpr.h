// Integer expressions over the model's symbolic dims (batch and width names).
//
// Widths stay in one canonical form, floor((S + c) / m) with m ≥ 1, which every padding
// rule of SPEC §1 preserves; so two widths are equal for every value of the symbols
// exactly when their canonical forms are equal. Padding amounts that depend on the
// width (strided `same`) use the general nodes (mod, max) and are evaluated at run time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cnv::ir {

// Thrown when folding constants would overflow int64: the caller turns it into a
// diagnostic at the op it was building.
struct SymExprOverflow : std::overflow_error {
  SymExprOverflow() : std::overflow_error("shape arithmetic overflows 64-bit integers") {}
};

using SymbolBindings = std::map<std::string, int64_t>;

class SymExpr {
 public:
  SymExpr();                  // the constant 0
  SymExpr(int64_t constant);  // NOLINT: integers read naturally as expressions
  static SymExpr symbol(const std::string& name);

  friend SymExpr operator+(const SymExpr& a, const SymExpr& b);
  friend SymExpr operator-(const SymExpr& a, const SymExpr& b);
  friend SymExpr operator*(const SymExpr& a, int64_t k);
  static SymExpr floorDiv(const SymExpr& a, int64_t divisor);  // divisor ≥ 1
  static SymExpr ceilDiv(const SymExpr& a, int64_t divisor);   // divisor ≥ 1
  static SymExpr mod(const SymExpr& a, int64_t divisor);       // in [0, divisor)
  static SymExpr max(const SymExpr& a, const SymExpr& b);

  bool isConstant() const;
  // True when the value is ≥ 1 whenever every symbol is ≥ 1 (a symbol plus c ≥ 0).
  bool positiveForPositiveSymbols() const;
  int64_t constant() const;  // only when isConstant()
  // The value for the given symbol values; nullopt if a symbol is unbound or a step
  // overflows int64.
  std::optional<int64_t> evaluate(const SymbolBindings& bindings) const;
  std::string str() const;
  // The expression in postfix order, for evaluators outside the compiler (the
  // runtime's programs): each step pops its operands and pushes its value.
  struct Step {
    enum class Op { Const, Floor, Add, Scale, FloorDiv, Mod, Max };
    Op op;
    int64_t value;       // Const; Floor's offset c; Scale's factor; FloorDiv's and Mod's divisor
    int64_t divisor;     // Floor: floor((symbol + value) / divisor)
    std::string symbol;  // Floor
  };
  std::vector<Step> postfix() const;
  bool operator==(const SymExpr& other) const;
  bool operator!=(const SymExpr& other) const { return !(*this == other); }

  struct Node;
  const std::shared_ptr<const Node>& node() const { return node_; }
  static SymExpr fromNode(std::shared_ptr<const Node> node) { return SymExpr(std::move(node)); }

 private:
  explicit SymExpr(std::shared_ptr<const Node> node) : node_(std::move(node)) {}
  std::shared_ptr<const Node> node_;
};

}  // namespace cnv::ir
