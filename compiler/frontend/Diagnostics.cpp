#include "compiler/frontend/Diagnostics.h"

#include <fmt/format.h>

#include "cnv/Error.h"

namespace cnv {

SourceFile::SourceFile(std::string name, std::string text)
    : name_(std::move(name)), text_(std::move(text)) {
  lineStarts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i)
    if (text_[i] == '\n') lineStarts_.push_back(i + 1);
}

std::string_view SourceFile::line(int line) const {
  if (line < 1 || static_cast<size_t>(line) > lineStarts_.size()) return {};
  size_t begin = lineStarts_[line - 1];
  size_t end = text_.find('\n', begin);
  if (end == std::string::npos) end = text_.size();
  if (end > begin && text_[end - 1] == '\r') --end;
  return std::string_view(text_).substr(begin, end - begin);
}

void DiagnosticEngine::error(SourceLocation location, std::string message) {
  ++errorCount_;
  if (errorCount_ <= kMaxReportedErrors)
    diagnostics_.push_back({Severity::Error, location, std::move(message)});
}

void DiagnosticEngine::warning(SourceLocation location, std::string message) {
  ++warningCount_;
  diagnostics_.push_back({Severity::Warning, location, std::move(message)});
}

void DiagnosticEngine::note(SourceLocation location, std::string message) {
  if (errorCount_ <= kMaxReportedErrors)
    diagnostics_.push_back({Severity::Note, location, std::move(message)});
}

static std::string printable(std::string_view line) {
  std::string out;
  for (unsigned char c : line) out += (c == '\t' || c >= 0x20) ? static_cast<char>(c) : ' ';
  return out;
}

std::string DiagnosticEngine::render() const {
  std::string out;
  for (const Diagnostic& d : diagnostics_) {
    const char* severity = d.severity == Severity::Error     ? "error"
                           : d.severity == Severity::Warning ? "warning"
                                                             : "note";
    if (!d.location.known()) {
      out += fmt::format("{}: {}: {}\n", file_.name(), severity, d.message);
      continue;
    }
    out += fmt::format("{}:{}:{}: {}: {}\n", file_.name(), d.location.line, d.location.column,
                       severity, d.message);
    std::string source = printable(file_.line(d.location.line));
    out += source + "\n";
    std::string caret;
    for (int i = 0; i + 1 < d.location.column && i < static_cast<int>(source.size()); ++i)
      caret += source[i] == '\t' ? '\t' : ' ';
    out += caret + "^\n";
  }
  if (errorCount_ > kMaxReportedErrors)
    out += fmt::format("{}: note: {} more errors not shown\n", file_.name(),
                       errorCount_ - kMaxReportedErrors);
  return out;
}

void DiagnosticEngine::throwIfErrors() const {
  if (hasErrors()) throw Error(Error::Kind::Model, render(), true);
}

}  // namespace cnv
