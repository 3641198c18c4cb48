#!/usr/bin/env bash
# A newcomer's first command: install the dependencies, build, and JIT-run the bundled
# seed examples, printing each model's signature and its agreement with PyTorch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
/usr/bin/python3 "$root/scripts/run_examples.py" --cnvc "${CNV_BUILD_DIR:-$root/build}/cnvc" \
  --examples "$root/examples/seed"
