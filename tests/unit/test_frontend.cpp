// The frontend never crashes: deep nesting, truncated files, junk and huge numbers all
// end in diagnostics with positions.
#include <catch2/catch.hpp>
#include <random>

#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/frontend/Parser.h"

namespace {

const char* kValid = R"(# comment
model relu_block {
  input  x : f32[N, L, 2]  layout NWC
  param  w : f32[3, 2, 4]  layout WIO
  param  b : f32[4];
  h = conv1d(x, w, b, stride=1, padding=(1, 1), padding_mode=reflect)
  y = leaky_relu(h, alpha=-0.5e-1)  // trailing comment
  output y layout NCW
}
)";

// Compiles text through the passes (no JIT); returns the error text, or "" on success.
std::string compileError(const std::string& text) {
  try {
    cnv::compileToIr(std::make_unique<cnv::SourceFile>("t.cnv", text), "");
    return "";
  } catch (const cnv::Error& e) {
    return std::string(e.what()).empty() ? "(empty message)" : e.what();
  }
}

std::string nested(int depth) {
  std::string expr = "x";
  for (int i = 0; i < depth; ++i) expr = "relu(" + expr + ")";
  return "model m { input x : f32[N, L, 2] layout NWC\n y = " + expr + "\n output y }";
}

}  // namespace

TEST_CASE("the valid sample compiles", "[frontend]") { REQUIRE(compileError(kValid).empty()); }

TEST_CASE("256 nested calls compile, far deeper nesting is refused", "[frontend]") {
  REQUIRE(compileError(nested(256)).empty());
  std::string deep = compileError(nested(100000));
  REQUIRE(deep.find("t.cnv:2:") != std::string::npos);
  REQUIRE(deep.find("nested too deeply") != std::string::npos);
  REQUIRE(compileError(std::string(200000, '(')).find("nested too deeply") != std::string::npos);
}

TEST_CASE("every truncated prefix of a valid file is an error, never a crash", "[frontend]") {
  std::string text = kValid;
  size_t end = text.rfind('}');
  for (size_t length = 0; length <= end; ++length) {
    INFO("prefix length " << length);
    std::string error = compileError(text.substr(0, length));
    REQUIRE_FALSE(error.empty());
    REQUIRE(error.find("t.cnv:") == 0);
  }
}

TEST_CASE("binary junk and invalid UTF-8 give positioned errors", "[frontend]") {
  std::mt19937 random(99);
  for (int i = 0; i < 300; ++i) {
    std::string junk(1 + random() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(random() % 256);
    INFO("case " << i);
    REQUIRE(compileError(junk).find("t.cnv:") == 0);
  }
  REQUIRE(compileError("model m {\n  \xff }").find("t.cnv:2:3: error: invalid UTF-8") == 0);
}

TEST_CASE("random mutations of a valid file never crash", "[frontend]") {
  std::mt19937 random(2026);
  const std::string alphabet = "(){}[],:;=+-.0123456789xwbyLN_ \n#relu conv1d";
  for (int i = 0; i < 2000; ++i) {
    std::string text = kValid;
    for (int edits = 1 + random() % 4; edits > 0; --edits) {
      size_t at = random() % text.size();
      switch (random() % 3) {
        case 0:
          text.erase(at, 1 + random() % 5);
          break;
        case 1:
          text.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
        default:
          text[at] = alphabet[random() % alphabet.size()];
      }
    }
    compileError(text);  // must return, whatever the verdict
  }
  SUCCEED();
}

TEST_CASE("huge integers are out-of-range errors", "[frontend]") {
  std::string error = compileError(
      "model m { input x : f32[N, 99999999999999999999999999999, 2] layout NWC\n output x }");
  REQUIRE(error.find("t.cnv:1:28: error: integer") == 0);
  REQUIRE(error.find("out of range") != std::string::npos);
}

TEST_CASE("a weight whose element count overflows is a model error", "[frontend]") {
  const char* text = R"(model m {
  input x : f32[N, L, 2147483647] layout NWC
  param w : f32[2147483647, 2147483647, 2147483647] layout OIW
  y = conv1d(x, w, padding=same)
  output y })";
  REQUIRE(compileError(text).find("t.cnv:3:9: error: param 'w' is too large") == 0);
}
