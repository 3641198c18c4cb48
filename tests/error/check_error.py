#!/usr/bin/env python3
"""Runs cnvc on one tests/error/*.cnv file and checks the diagnostics it prints.

Directives in the .cnv file's comments:
  # ARGS: check            the cnvc subcommand and flags (the file is appended); default "check"
  # EXIT: 1                the expected exit status; default 1
  # CHECK: 4:13: error: unknown name 'q'
                           stderr must contain FILE:<text>, and the first such line must be
                           followed by the source line and a caret under the column.
  # STDERR: unknown kernel strategy
                           stderr must contain this text (messages without a position).
  # STREAM: stdout         read the diagnostics from stdout instead (cnvc lint)
  # NOTHING                the stream holds nothing at all (a model lint finds clean)
CHECK lines must match in order; CHECK'd warnings must be all the warnings shown (their
count must match).
"""
import re
import subprocess
import sys


def main():
    cnvc, case = sys.argv[1], sys.argv[2]
    text = open(case, encoding="utf-8", errors="replace").read()
    args = ["check"]
    expected_exit = 1
    checks = []
    plain = []
    stream = "stderr"
    nothing = False
    for line in text.splitlines():
        if re.match(r"\s*#\s*NOTHING\s*$", line):
            nothing = True
            continue
        m = re.match(r"\s*#\s*(ARGS|EXIT|CHECK|STDERR|STREAM):\s?(.*)$", line)
        if not m:
            continue
        kind, value = m.group(1), m.group(2).rstrip()
        if kind == "STREAM":
            stream = value
            continue
        if kind == "ARGS":
            args = value.split()
        elif kind == "EXIT":
            expected_exit = int(value)
        elif kind == "STDERR":
            plain.append(value)
        else:
            checks.append(value)
    result = subprocess.run([cnvc] + args + [case], capture_output=True, text=True, timeout=60)
    failures = []
    if result.returncode != expected_exit:
        failures.append(f"exit status {result.returncode}, expected {expected_exit}")
    for wanted in plain:
        if wanted not in result.stderr:
            failures.append(f"stderr lacks {wanted!r}")
    output = result.stdout if stream == "stdout" else result.stderr
    if nothing and output:
        failures.append(f"{stream} is not empty")
    err_lines = output.splitlines()
    for severity in ("warning",):
        checked = sum(1 for c in checks if re.match(rf"\d+:\d+: {severity}:", c))
        shown = sum(1 for line in err_lines if re.match(rf".*:\d+:\d+: {severity}:", line))
        if checked and shown != checked:
            failures.append(f"{shown} {severity}s in {stream}, {checked} expected")
    position = 0
    source_lines = text.splitlines()
    for check in checks:
        wanted = f"{case}:{check}"
        found = next((i for i in range(position, len(err_lines)) if wanted in err_lines[i]), None)
        if found is None:
            failures.append(f"missing diagnostic: {wanted!r}")
            continue
        m = re.match(r"(\d+):(\d+): (error|warning|note)", check)
        if m:
            line_no, column = int(m.group(1)), int(m.group(2))
            expected_source = source_lines[line_no - 1] if line_no <= len(source_lines) else ""
            shown = err_lines[found + 1] if found + 1 < len(err_lines) else None
            caret = err_lines[found + 2] if found + 2 < len(err_lines) else None
            if shown != expected_source:
                failures.append(f"source line after {wanted!r} is {shown!r}, expected {expected_source!r}")
            if caret is None or caret.rstrip() != " " * (column - 1) + "^":
                failures.append(f"caret line after {wanted!r} is {caret!r}, expected a caret at column {column}")
        position = found + 1
    if failures:
        print(f"FAIL {case}")
        for f in failures:
            print("  " + f)
        print("--- stderr ---\n" + result.stderr + "--- stdout ---\n" + result.stdout)
        return 1
    print(f"ok {case}: {len(checks) + len(plain)} messages checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
