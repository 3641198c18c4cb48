#!/usr/bin/python3
"""The compile cache survives processes killed mid-compile and concurrent writers.

    python3 test_cache_kill.py --cnvc build/cnvc --source-dir .

Starts `cnvc run` on a model with an empty cache and kills it (SIGKILL) after a random
delay, 25 times, so that some die while the entry is being written; then eight `cnvc
run`s at once. Every run that finishes, and a final one, must give the output of a run
with the cache off, and the cache must end with exactly one entry that loads (the
final run says `compile cache: hit` through `cnvc bench`). Stray temporaries of killed
writers are allowed; they are never read.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = """model killed {
  input  x : f32[N, L, 8] layout NWC
  param  w : f32[5, 8, 16] layout WIO
  param  w2 : f32[3, 16, 16] layout WIO
  h = relu(conv1d(x, w, padding=same))
  y = tanh(conv1d(h, w2, stride=2, padding=same))
  output y layout NCW
}
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnvc", required=True)
    parser.add_argument("--source-dir")
    args = parser.parse_args()
    rng = np.random.default_rng(9)
    failures = []
    with tempfile.TemporaryDirectory(prefix="cnv-cache-kill-") as tmp:
        work = Path(tmp)
        model = work / "killed.cnv"
        model.write_text(MODEL)
        np.save(work / "x.npy", rng.standard_normal((2, 50, 8)).astype(np.float32))
        np.save(work / "w.npy", rng.standard_normal((5, 8, 16)).astype(np.float32))
        np.save(work / "w2.npy", rng.standard_normal((3, 16, 16)).astype(np.float32))
        cache = work / "cache"

        def command(out):
            return [args.cnvc, "run", str(model), "--input", f"x={work / 'x.npy'}",
                    "--param", f"w={work / 'w.npy'}", "--param", f"w2={work / 'w2.npy'}",
                    "--output", f"y={out}"]

        env_off = dict(os.environ, CNV_CACHE="off")
        start = time.monotonic()
        subprocess.run(command(work / "expected.npy"), env=env_off, check=True, timeout=120)
        full = time.monotonic() - start  # kills land anywhere from start to past the end
        expected = np.load(work / "expected.npy")
        env = dict(os.environ, CNV_CACHE_DIR=str(cache))
        env.pop("CNV_CACHE", None)
        delays = random.Random(3)
        finished = 0
        for attempt in range(25):
            for entry in cache.glob("model-*"):
                entry.unlink()  # every attempt starts without an entry, so each writes one
            out = work / f"y{attempt}.npy"
            process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(delays.uniform(0.3, 1.1) * full)
            process.send_signal(signal.SIGKILL)
            if process.wait() == 0:
                finished += 1
                if not np.array_equal(np.load(out), expected):
                    failures.append(f"attempt {attempt}: a finished run differs")
        # A killed writer may have left an entry half written or not at all: what is there
        # must still give the right answer.
        concurrent = [subprocess.Popen(command(work / f"c{i}.npy"), env=env) for i in range(8)]
        for i, process in enumerate(concurrent):
            if process.wait(timeout=300) != 0:
                failures.append(f"concurrent run {i} failed")
            elif not np.array_equal(np.load(work / f"c{i}.npy"), expected):
                failures.append(f"concurrent run {i} differs")
        entries = sorted(p.name for p in cache.glob("model-*"))
        if len(entries) != 1:
            failures.append(f"the cache holds {entries}, not one entry")
        bench = subprocess.run([args.cnvc, "bench", str(model), "--dim", "N=2", "--dim", "L=50",
                                "--seconds", "0.01"], env=env, capture_output=True, text=True,
                               timeout=120)
        if "compile cache: hit" not in bench.stdout:
            failures.append(f"the final compile did not load the entry:\n{bench.stdout}{bench.stderr}")
        print(f"{finished} of 25 killed runs had finished; {len(list(cache.glob('.model-*')))} "
              "stray temporaries")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
