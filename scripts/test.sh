#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, and runs ctest
# (unit and correctness tests, error and lint tests, PyTorch interop and the port, the
# C API, the Python module, and the examples built against an installed prefix).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CNV_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "$build"
# A hung test fails after 15 minutes instead of eating the CI job's time limit.
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"
