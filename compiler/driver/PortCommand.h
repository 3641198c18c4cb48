// `cnvc port` and `cnvc lint` (SPEC §6): the porting workflow's two commands.
#pragma once

#include <map>
#include <string>

#include "compiler/Compiler.h"

namespace cnv::driver {

struct PortOptions {
  std::string to;         // "pytorch"
  std::string directory;  // -o DIR
  std::string layout = "declared";
  std::map<std::string, std::string> params;  // --param NAME=FILE.npy
  std::string weights;                        // --weights FILE.safetensors
  bool verify = false;
  std::string cpu;  // for --verify's cnv run
};

// Writes DIR/NAME.py (and DIR/NAME.pt with weights); with verify, runs the module in
// PyTorch on random inputs and compares it with cnv's own run. Returns the exit status.
int port(std::unique_ptr<SourceFile> source, const std::string& model, const PortOptions& options);

// Prints the lint warnings for `target` ("pytorch", "keras" or "all"); returns the exit
// status (0: warnings alone do not fail).
int lint(std::unique_ptr<SourceFile> source, const std::string& model, const std::string& target);

// The number of lint warnings `compiled` (IR after padding-resolution) has for every
// target: what `cnvc check` mentions.
int lintWarningCount(const CompiledIr& compiled);

}  // namespace cnv::driver
