#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-19, ASan + UBSan) and fuzzes each for SECONDS,
# starting from its seed corpus (tests/fuzz/corpus/TARGET) with the language's
# dictionary. New inputs go to build-fuzz/corpus/TARGET, crashes to build-fuzz/findings:
# copy a finding into tests/fuzz/regressions/TARGET, named after what it found, and fix.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]      (default 60 s; all five targets)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CNV_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frontend npy safetensors c_api differential)

log="$build.log"
mkdir -p "$build"
echo "fuzz: building the targets with clang-19 (log: $log)" >&2
if ! { CC=clang-19 CXX=clang++-19 cmake -S "$root" -B "$build" -G Ninja -DCNV_SANITIZE=ON \
         -DCNV_FUZZ=ON -DCNV_BUILD_BENCH=OFF -DCNV_BUILD_PYTHON=OFF &&
       ninja -C "$build" $(printf 'fuzz_%s ' "${targets[@]}"); } > "$log" 2>&1; then
  tail -40 "$log" >&2
  echo "fuzz: the build failed (log: $log)" >&2
  exit 1
fi
mkdir -p "$build/findings"
status=0
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus"
  dict=()
  [ "$target" = frontend ] && dict=(-dict="$root/tests/fuzz/cnv.dict")
  echo "fuzz: $target for ${seconds} s" >&2
  if ! CNV_CACHE=off CNV_TUNING_CACHE=off "$build/tests/fuzz_$target" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$build/findings/$target-" "$corpus" \
        "$root/tests/fuzz/corpus/$target" > "$build/fuzz-$target.log" 2>&1; then
    echo "fuzz: $target found something: $(ls "$build/findings" | grep "^$target-" | head -3)" >&2
    tail -30 "$build/fuzz-$target.log" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/fuzz-$target.log" |
    sed "s/^/fuzz: $target: /" >&2 || true
done
exit $status
