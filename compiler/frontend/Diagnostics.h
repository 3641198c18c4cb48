// Source files, locations and the diagnostics reported against them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cnv {

// 1-based line and column; line 0 means "no location".
struct SourceLocation {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
};

class SourceFile {
 public:
  SourceFile(std::string name, std::string text);
  const std::string& name() const { return name_; }
  const std::string& text() const { return text_; }
  // The text of 1-based line `line`, without its newline; empty when out of range.
  std::string_view line(int line) const;

 private:
  std::string name_;
  std::string text_;
  std::vector<size_t> lineStarts_;
};

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity;
  SourceLocation location;
  std::string message;
};

// Collects diagnostics for one source file and renders them as
// `FILE:LINE:COL: error: MESSAGE`, the source line and a caret under the column.
class DiagnosticEngine {
 public:
  explicit DiagnosticEngine(const SourceFile& file) : file_(file) {}

  void error(SourceLocation location, std::string message);
  void warning(SourceLocation location, std::string message);
  void note(SourceLocation location, std::string message);
  int warningCount() const { return warningCount_; }
  bool hasErrors() const { return errorCount_ > 0; }
  // Past this many errors further ones are counted but not kept: junk input can
  // produce one per byte.
  static constexpr int kMaxReportedErrors = 20;

  std::string render() const;
  // Throws cnv::Error(Kind::Model) with the rendered text when any error was reported.
  void throwIfErrors() const;

 private:
  const SourceFile& file_;
  std::vector<Diagnostic> diagnostics_;
  int errorCount_ = 0;
  int warningCount_ = 0;
};

}  // namespace cnv
