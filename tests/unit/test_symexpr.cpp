// Symbolic dims: canonical widths, evaluation against direct integer arithmetic, and
// overflow reporting.
#include <catch2/catch.hpp>

#include "compiler/ir/SymExpr.h"

using cnv::ir::SymExpr;

namespace {
int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
}  // namespace

TEST_CASE("width expressions evaluate like the spec's formulas", "[symexpr]") {
  SymExpr L = SymExpr::symbol("L");
  for (int64_t s = 1; s <= 4; ++s)
    for (int64_t e = 1; e <= 9; ++e) {
      SymExpr valid = SymExpr::floorDiv(L - e, s) + 1;
      SymExpr same = SymExpr::ceilDiv(L, s);
      SymExpr causal = SymExpr::floorDiv(L - 1, s) + 1;
      SymExpr twice = SymExpr::floorDiv(SymExpr::floorDiv(L + 3, s) - e, 2) + 1;
      for (int64_t l = 1; l <= 60; ++l) {
        cnv::ir::SymbolBindings b{{"L", l}};
        REQUIRE(*valid.evaluate(b) == floorDiv(l - e, s) + 1);
        REQUIRE(*same.evaluate(b) == (l + s - 1) / s);
        REQUIRE(*causal.evaluate(b) == floorDiv(l - 1, s) + 1);
        REQUIRE(*twice.evaluate(b) == floorDiv(floorDiv(l + 3, s) - e, 2) + 1);
      }
    }
}

TEST_CASE("equal widths compare equal, different ones do not", "[symexpr]") {
  SymExpr L = SymExpr::symbol("L");
  REQUIRE(SymExpr::floorDiv(L - 1, 1) + 1 == L);
  REQUIRE(SymExpr::ceilDiv(L, 2) == SymExpr::floorDiv(L + 1, 2));
  REQUIRE(SymExpr::floorDiv(L - 3, 1) + 1 == L - 2);
  REQUIRE(SymExpr::ceilDiv(L, 2) != L);
  REQUIRE(SymExpr::ceilDiv(L, 2) != SymExpr::floorDiv(L, 2));
  REQUIRE(L != SymExpr::symbol("M"));
  REQUIRE((L - 2).str() == "L - 2");
  REQUIRE(SymExpr::ceilDiv(L, 2).str() == "ceil(L / 2)");
}

TEST_CASE("padding expressions keep floor semantics for negatives", "[symexpr]") {
  SymExpr L = SymExpr::symbol("L");
  SymExpr total = SymExpr(4) - SymExpr::mod(L - 1, 3);
  SymExpr left = SymExpr::floorDiv(total, 2);
  for (int64_t l = 1; l < 30; ++l) {
    int64_t t = 4 - (l - 1) % 3;
    REQUIRE(*total.evaluate({{"L", l}}) == t);
    REQUIRE(*left.evaluate({{"L", l}}) == t / 2);
  }
  REQUIRE(*SymExpr::floorDiv(SymExpr(-7), 2).evaluate({}) == -4);
  REQUIRE(*SymExpr::mod(SymExpr(-7), 3).evaluate({}) == 2);
}

TEST_CASE("overflow is reported, not wrapped", "[symexpr]") {
  SymExpr big((int64_t{1} << 62));
  REQUIRE_THROWS_AS(big * 4, cnv::ir::SymExprOverflow);
  SymExpr L = SymExpr::symbol("L");
  REQUIRE_FALSE((L * 4).evaluate({{"L", int64_t{1} << 62}}).has_value());
  REQUIRE_FALSE(L.evaluate({}).has_value());  // unbound
}
