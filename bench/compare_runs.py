#!/usr/bin/env python3
"""Compares two sets of cnv_bench --markdown runs (e.g. before and after a change).

    bench/compare_runs.py --before 'before*.md' --after 'after*.md'

Run the two binaries alternately in one sitting (before, after, before, after, ...):
on a shared VM the machine's speed drifts by 10-20% from one minute to the next, and
alternating spreads that drift over both sides. Prints a markdown table with, per
shape and thread count, the best cnv time of each side from either layout, the
change, and each run's cnv/oneDNN ratio (measured in the same run, so immune to the
drift).
"""
import argparse
import glob
import sys

COLUMNS = {"ncw_ms": 4, "nwc_ms": 7, "ncw_ratio": 17, "nwc_ratio": 18}


def read_rows(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("| ") or line.startswith("| shape"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) > max(COLUMNS.values()):
                rows[(cells[0], cells[1])] = cells
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="glob of the runs before")
    parser.add_argument("--after", required=True, help="glob of the runs after")
    args = parser.parse_args()
    before = [read_rows(p) for p in sorted(glob.glob(args.before))]
    after = [read_rows(p) for p in sorted(glob.glob(args.after))]
    if not before or not after:
        print("compare_runs: no runs match", file=sys.stderr)
        return 2

    def best(runs, key, column):
        return min(float(r[key][COLUMNS[column]]) for r in runs if key in r)

    def ratios(runs, key, column):
        return ", ".join(r[key][COLUMNS[column]] for r in runs if key in r)

    print(f"{len(before)} runs before, {len(after)} after; times are the best of each side's runs.\n")
    print("| shape | T | NCW ms before | after | change | NWC ms before | after | change "
          "| NCW / oneDNN per run, before → after | NWC / oneDNN per run, before → after |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
    for key in before[0]:
        if not all(key in r for r in after):
            continue
        cells = [key[0], key[1]]
        for layout in ("ncw", "nwc"):
            b, a = best(before, key, layout + "_ms"), best(after, key, layout + "_ms")
            cells += [f"{b:g}", f"{a:g}", f"{100 * (a / b - 1):+.1f}%"]
        for layout in ("ncw", "nwc"):
            cells.append(f"{ratios(before, key, layout + '_ratio')} → "
                         f"{ratios(after, key, layout + '_ratio')}")
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
