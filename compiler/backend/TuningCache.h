// The tuning cache: the schedule `cnvc tune` measured fastest for a conv on a machine,
// which every later compile on that machine uses instead of the planner's own pick.
//
// One JSON file per user. An entry is keyed by the machine (the CPU LLVM generates code
// for, a digest of its features, the vector width and the cache sizes blocking reads)
// and by the conv as the back end sees it (layouts, channels, kernel, stride, dilation,
// groups, padding, widths, epilogue). An entry is a hint, never trusted: a schedule it
// names that the strategies no longer offer for the op is ignored, and a file that
// cannot be read or parsed holds no entries.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "compiler/backend/Target.h"
#include "compiler/ir/Ir.h"

namespace cnv::backend {

struct TunedChoice {
  std::string schedule;  // "Strategy:label" (Schedule::label)
  double seconds = 0;    // best time of one call of the kernel, at `dims`
  // The planner's own pick when it was tuned, and its time: what tells whether the
  // cost model is within reach of the measured best.
  std::string modelPick;
  double modelPickSeconds = 0;
  std::string dims;  // the dims and threads it was timed at ("N=8 L=1000, 1 thread")
};

class TuningCache {
 public:
  // The file compiles read and `cnvc tune` writes: $CNV_TUNING_CACHE when set ("off"
  // turns tuning off: nullopt), else $XDG_CACHE_HOME/cnv/tuning.json, else
  // $HOME/.cache/cnv/tuning.json; nullopt when none of them is set.
  static std::optional<std::string> defaultPath();
  // The entries of the file at `path`: none when it is not a regular file of at most
  // 16 MiB or cannot be parsed as this format's version; entries of the wrong form are
  // skipped.
  static TuningCache load(const std::string& path);
  // Writes the entries to `path` through a temporary file renamed over it, so that a
  // reader never sees half a file; creates the directory. Throws a data error when it
  // cannot.
  void save(const std::string& path) const;
  // Loads the file at `path`, lets `change` edit the entries and saves them, holding a
  // lock (`path`.lock) that other updates wait for. Throws a data error as save does.
  static void update(const std::string& path, const std::function<void(TuningCache&)>& change);

  const TunedChoice* find(const std::string& machine, const std::string& conv) const;
  void record(const std::string& machine, const std::string& conv, const TunedChoice& choice);
  size_t size() const;

 private:
  std::map<std::string, std::map<std::string, TunedChoice>> entries_;  // machine → conv → choice
};

// The keys of an entry.
std::string machineKey(const Target& target);
std::string convKey(const ir::Op& op);

}  // namespace cnv::backend
