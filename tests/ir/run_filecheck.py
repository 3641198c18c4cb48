#!/usr/bin/env python3
"""Runs the `RUN:` lines of one tests/ir/*.cnv file, lit-style.

Substitutions: %cnvc (the driver), %FileCheck, %s (this file), %S (its folder),
%examples (examples/seed), %t (a fresh directory of this case's own, removed after).
Each RUN line is a shell pipeline that must exit 0.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    cnvc, filecheck, case, source_dir = sys.argv[1:5]
    text = open(case, encoding="utf-8").read()
    runs = [m.group(1) for m in re.finditer(r"^\s*#\s*RUN:\s*(.*)$", text, re.M)]
    if not runs:
        print(f"{case}: no RUN line")
        return 1
    scratch = tempfile.mkdtemp(prefix="cnv-ir-")
    try:
        return run_all(runs, cnvc, filecheck, case, source_dir, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_all(runs, cnvc, filecheck, case, source_dir, scratch):
    for run in runs:
        command = (run.replace("%cnvc", cnvc).replace("%FileCheck", filecheck)
                   .replace("%examples", os.path.join(source_dir, "examples", "seed"))
                   .replace("%S", os.path.dirname(case)).replace("%s", case)
                   .replace("%t", scratch))
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            print(f"FAIL {case}\n  $ {command}\n{result.stdout}{result.stderr}")
            return 1
        print(f"ok: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
