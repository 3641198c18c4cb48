#!/bin/sh
# The porting walk-through: each model is linted for PyTorch, ported to a PyTorch module
# in out/, and the module is run in PyTorch on random data and compared with cnv's own
# run (--verify). Needs a build (scripts/build.sh) and python3-torch.
#   examples/porting/run.sh [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
cnvc="$build/cnvc"
out="$here/out"
mkdir -p "$out"
for model in "$here"/../seed/example1_tf.cnv "$here"/../seed/example2_tf.cnv \
             "$here"/../seed/example3_tf.cnv "$here"/tcn_block.cnv "$here"/wav2letter.cnv; do
  echo "== $(basename "$model")"
  "$cnvc" lint "$model" --target=pytorch
  "$cnvc" port "$model" --to=pytorch -o "$out" --verify
done
echo "the generated modules are in $out"
