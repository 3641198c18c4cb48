// `cnvc bench`: the same model run by oneDNN, for the cnv/oneDNN ratio.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "compiler/ir/Ir.h"

namespace cnv::driver {

// Maps the conv ops of `graph` (fused epilogues as post-ops) to oneDNN, times
// them at `threads` for about `seconds` with every symbolic dim from `dims`, and prints
// oneDNN's time and cnv's speed relative to it (cnvMs: cnv's time per run). Elementwise
// ops cnv could not fuse into a conv are not timed on oneDNN's side, so the ratio then
// flatters oneDNN. Prints why when there is no comparison (oneDNN not built in, a
// padding mode it lacks, no conv).
void printOnednnComparison(const ir::Graph& graph, const std::map<std::string, int64_t>& dims,
                           int threads, double seconds, double cnvMs);

}  // namespace cnv::driver
