#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, and runs ctest
# (unit and correctness tests, error and lint tests, PyTorch interop and the port, the
# C API, the Python module, and the examples built against an installed prefix).
#
#   scripts/test.sh [--sanitize] [CTEST ARGS ...]
#
# --sanitize instead builds the suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang-19, with the libFuzzer targets) into build-sanitize/ and runs it there (all but
# the install and Python tests, whose host processes are not instrumented), replaying
# every fuzz corpus and fuzzing each target for CNV_FUZZ_SECONDS (30); then builds the
# concurrency tests with ThreadSanitizer into build-tsan/ and runs them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sanitize=0
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=1
  shift
fi
"$root/scripts/setup.sh"
jobs="$(nproc)"

if [ "$sanitize" = 0 ]; then
  build="${CNV_BUILD_DIR:-$root/build}"
  "$root/scripts/build.sh"
  cd "$build"
  # A hung test fails after 15 minutes instead of eating the CI job's time limit.
  ctest --output-on-failure --timeout 900 -j "$jobs" "$@"
  exit 0
fi

# Tool noise goes to logs, shown when a step fails.
quiet() {
  local log="$1"
  shift
  if ! "$@" > "$log" 2>&1; then
    tail -60 "$log" >&2
    echo "test: failed: $* (log: $log)" >&2
    exit 1
  fi
}

asan="$root/build-sanitize"
echo "test: building with ASan + UBSan (clang-19) into $asan (log: $asan.log)" >&2
quiet "$asan.log" env CC=clang-19 CXX=clang++-19 cmake -S "$root" -B "$asan" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNV_SANITIZE=ON -DCNV_FUZZ=ON -DCNV_BUILD_BENCH=OFF \
  -DCNV_BUILD_PYTHON=OFF
quiet "$asan.log" cmake --build "$asan" -j "$jobs"
echo "test: running the suite under ASan + UBSan" >&2
(cd "$asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure --timeout 1800 -j "$jobs" -LE "install|python" "$@")
CNV_FUZZ_BUILD_DIR="$asan" "$root/scripts/fuzz.sh" "${CNV_FUZZ_SECONDS:-30}"

tsan="$root/build-tsan"
echo "test: building the concurrency tests with ThreadSanitizer into $tsan (log: $tsan.log)" >&2
quiet "$tsan.log" cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCNV_SANITIZE=thread -DCNV_BUILD_BENCH=OFF -DCNV_BUILD_PYTHON=OFF
quiet "$tsan.log" cmake --build "$tsan" -j "$jobs" --target cnv_unit_tests cnv_c_api_test
echo "test: running the concurrency tests under ThreadSanitizer" >&2
export TSAN_OPTIONS=halt_on_error=1 CNV_TUNING_CACHE=off CNV_CACHE_DIR="$tsan/test-compile-cache"
"$tsan/tests/cnv_unit_tests" "[threads],[cache],[soak]"
"$tsan/tests/cnv_c_api_test"
echo "test: sanitizers clean" >&2
