#!/usr/bin/env bash
# Installs cnv's build, test and benchmark dependencies from Debian 12's packages.
# Safe to re-run: apt-get skips what is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  llvm-19-dev llvm-19-tools libzstd-dev zlib1g-dev libedit-dev libxml2-dev libffi-dev
  antlr4 default-jre-headless libantlr4-runtime-dev
  catch2 libcli11-dev nlohmann-json3-dev libfmt-dev
  libdnnl-dev
  python3 python3-dev python3-numpy python3-torch python3-pytest pybind11-dev
  clang-19 libclang-rt-19-dev
)

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  # apt's own output goes to a log, shown only if it fails.
  log="${TMPDIR:-/tmp}/cnv-setup.log"
  echo "setup: installing ${#missing[@]} packages: ${missing[*]} (log: $log)" >&2
  if ! { $sudo apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
           "${missing[@]}"; } > "$log" 2>&1; then
    cat "$log" >&2
    echo "setup: installing the packages failed (log above, also in $log)" >&2
    exit 1
  fi
  echo "setup: done" >&2
else
  echo "setup: all dependencies present" >&2
fi
