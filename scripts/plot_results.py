#!/usr/bin/python3
"""Draws docs/performance-by-cpu.png: % of the measured FMA peak per shape, per layout,
for cnv and oneDNN, one panel per CPU, from the full cnv_bench runs kept in
bench/results/ (the newest `*-constant.md` of each CPU, 1 thread).

    scripts/plot_results.py [--results bench/results] [--out docs/performance-by-cpu.png]

Needs Debian's python3-matplotlib (not needed to build or test cnv).
"""
import argparse
import glob
import os
import re
import sys


def read_run(path):
    """(cpu label, {shape: (ncw %, nwc %, onednn %)}) of one --markdown run, 1 thread."""
    cpu, peak, rows = None, None, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("- CPU:"):
                cpu = line[len("- CPU:"):].strip()
            m = re.match(r"- FMA peak .*: ([0-9.]+) GFLOP/s per thread", line)
            if m:
                peak = float(m.group(1))
            if line.startswith("| ") and not line.startswith("| shape"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) > 18 and cells[1] == "1":
                    pct = lambda c: float(c.rstrip("%"))
                    rows[cells[0].split(" (")[0]] = (pct(cells[6]), pct(cells[9]), pct(cells[15]))
    return cpu, peak, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="bench/results")
    parser.add_argument("--out", default="docs/performance-by-cpu.png")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_results: needs python3-matplotlib (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return 2
    # The newest full run per CPU family: the file names are DATE-CPU-constant.md.
    runs = {}
    for path in sorted(glob.glob(os.path.join(args.results, "*-constant.md"))):
        machine = os.path.basename(path).split("-")[3]
        runs[machine] = path
    if not runs:
        print(f"plot_results: no *-constant.md runs in {args.results}", file=sys.stderr)
        return 2
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 4.2 * len(runs)), squeeze=False)
    for ax, (machine, path) in zip(axes[:, 0], sorted(runs.items())):
        cpu, peak, rows = read_run(path)
        shapes = [s for s in rows if not s.startswith("seed")]
        xs = range(len(shapes))
        width = 0.27
        for i, (label, color) in enumerate(
                [("cnv NCW", "#1f77b4"), ("cnv NWC", "#2ca02c"), ("oneDNN", "#888888")]):
            ax.bar([x + (i - 1) * width for x in xs], [rows[s][i] for s in shapes], width,
                   label=label, color=color)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(shapes, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("% of measured FMA peak")
        ax.set_ylim(0, 105)
        ax.axhline(90, color="#cc4444", linewidth=0.8, linestyle="--")
        # Newer runs name the caches after a ';': on a second line.
        name, _, caches = cpu.partition(";")
        ax.set_title(f"{machine}: {name}, peak {peak:g} GFLOP/s per core, 1 thread "
                     f"({os.path.basename(path)})" + (f"\n{caches.strip()}" if caches else ""),
                     fontsize=9)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot_results: wrote {args.out} ({len(runs)} CPUs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
