// The tuner behind `cnvc tune`: times every candidate schedule of each conv of a model
// on this machine and records the fastest in the tuning cache, which later compiles
// on this machine use. Not part of the public API; needs no compiler header.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cnv/cnv.h"

namespace cnv {

// Random inputs for `model` (uniform in [-1, 1), fixed seed), symbolic dims taken from
// `dims`; a dim without a value is a usage error. Random params are bound with
// bindRandomParams.
std::map<std::string, Tensor> randomInputs(const Model& model,
                                           const std::map<std::string, int64_t>& dims,
                                           std::mt19937& random);
void bindRandomParams(Model& model, std::mt19937& random);

// Each kernel's best wall time (seconds, in kernel order) over at least `minRuns` runs
// of `model` after a warm-up, and as many more as fit in `budget` seconds (at most 1000).
std::vector<double> bestKernelSeconds(const Model& model,
                                      const std::map<std::string, TensorView>& inputs,
                                      const std::map<std::string, MutableTensorView>& outputs,
                                      int threads, int minRuns, double budget);

struct TuningOptions {
  std::string model;  // as CompileOptions
  std::string cpu;
  std::map<std::string, int64_t> dims;
  int threads = 1;
  // Rounds over all candidates (taking each candidate's best): two or more make the
  // comparison robust against a machine whose speed drifts while it runs.
  int passes = 2;
  double secondsPerRound = 0.3;  // timing budget of one compiled candidate (cnvc tune --seconds)
  std::function<void(const std::string&)> progress;  // a line per step; may be empty
};

struct TunedConv {
  std::string kernel;  // the kernel's symbol
  std::string value;   // the IR value it computes
  std::string conv;    // its tuning-cache key
  std::string modelPick, best;
  double modelPickSeconds = 0, bestSeconds = 0;
  std::vector<std::pair<std::string, double>> candidates;  // every schedule timed, fastest first
};

struct TuningResult {
  std::string machine;  // the tuning-cache key of this machine
  std::vector<TunedConv> convs;
};

// Times the candidates of every conv of the model in `source` (each candidate's best
// call over `passes` rounds; a round compiles the model with the i-th candidate of
// every conv, so that all convs are timed at once).
TuningResult tuneSource(const std::string& source, const std::string& fileName,
                        const TuningOptions& options);

// How much slower the compiler's pick ran than the tuned best, in percent; nothing when
// either time is unknown (not measured, or missing from the cache).
std::optional<double> pickSlowdownPercent(double pickSeconds, double bestSeconds);

// Records the result's winners in the tuning cache at `path`, keeping its other
// entries; throws a data error when the file cannot be written.
void recordTuning(const TuningResult& result, const std::string& path, const std::string& dims);

// The tuning cache's file (see TuningCache::defaultPath in the back end), or empty when
// tuning is turned off.
std::string tuningCachePath();

// What the tuning cache holds for the convs `model` (compiled for `cpu`) runs: per conv
// kernel, the entry's best schedule and time and the model pick's time when tuned.
struct TuningStatus {
  std::string kernel, value, schedule;  // the schedule the model runs
  bool tuned = false;
  std::string best, modelPick;
  double bestSeconds = 0, modelPickSeconds = 0;
  std::string dims;
};
std::vector<TuningStatus> tuningStatus(const Model& model, const std::string& cpu);

}  // namespace cnv
