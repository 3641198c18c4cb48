// libFuzzer target: any bytes as a .cnv file through the whole front end — parse, check,
// IR, every pass — then `cnvc lint` and `cnvc port` on what compiles. Every outcome
// must be a result or a cnv::Error; anything else (a crash, a sanitizer report, another
// exception) is a finding.
#include <cstdint>
#include <string>

#include "cnv/Error.h"
#include "compiler/Compiler.h"
#include "compiler/port/Lint.h"
#include "compiler/port/PytorchPort.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    cnv::compileToIr(std::make_unique<cnv::SourceFile>("fuzz.cnv", text), "");
  } catch (const cnv::Error&) {
  }
  try {
    cnv::CompiledIr compiled = cnv::compileToIr(std::make_unique<cnv::SourceFile>("fuzz.cnv", text),
                                                "", cnv::port::portPipeline());
    cnv::DiagnosticEngine diagnostics(*compiled.source);
    cnv::port::lint(*compiled.graph, {cnv::port::Framework::Pytorch, cnv::port::Framework::Keras},
                    diagnostics);
    diagnostics.render();
    cnv::port::portToPytorch(compiled, cnv::port::LayoutMode::Declared);
    cnv::port::portToPytorch(compiled, cnv::port::LayoutMode::Pytorch);
  } catch (const cnv::Error&) {
  }
  return 0;
}
