#!/usr/bin/python3
"""The cnvc command line of SPEC §2 beyond the numbers: argument order, stdin, --threads,
the program name in usage and --version.

    python3 test_cli.py --cnvc build/cnvc --source-dir .

Checks
  order     options before MODEL work in run, bench, check, compile and tune (a repeated
            --input/--param/--output/--dim takes one NAME=VALUE per occurrence and leaves
            MODEL alone); run's results in either order equal each other bitwise and
            numpy's within SPEC §4;
  stdin     MODEL `-` reads the model from standard input (diagnostics name `<stdin>`);
            `run --input NAME=-` reads the array from standard input and
            `--output NAME=-` writes it to standard output; standard input twice is a
            usage error;
  threads   --threads 0 means all cores (exit 0, same results); a negative count is a
            usage error (exit 2) with a message naming --threads;
  name      --help and usage errors say `cnvc`, never the path cnvc was started by;
  version   --version prints cnv's version (CMakeLists.txt's project version), LLVM's
            (19.x) and the host CPU's name;
  status    0 success, 1 a problem with the model or the data, 2 a usage error.
Prints one line per check and finally `N passed, M failed`; exits non-zero on any failure.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TIMEOUT_SECONDS = 60

# A 1x1 conv with bias plus a residual: y = w·x + b + z, which numpy computes directly.
MODEL = """\
model pointwise {
  input  x : f32[N, 2, L] layout NCW
  input  z : f32[N, 3, L] layout NCW
  param  w : f32[3, 2, 1] layout OIW
  param  b : f32[3]
  y = add(conv1d(x, w, b), z)
  output y
}
"""
# One stray ')' at the end of line 6.
MALFORMED = MODEL.replace("b), z)", "b), z))")
MALFORMED_LINE, MALFORMED_COL = 6, MALFORMED.splitlines()[5].rindex(")") + 1


class Suite:
    def __init__(self, cnvc: Path, tmp: Path):
        self.cnvc, self.tmp = cnvc, tmp
        self.passed = self.failed = 0
        # The tests never touch the user's tuning cache, also when run by hand.
        self.env = dict(os.environ, CNV_TUNING_CACHE="off")

    def record(self, label: str, ok: bool, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok    {label}{'  ' + detail if detail else ''}")
        else:
            self.failed += 1
            print(f"FAIL  {label}: {detail}")

    def cnvc_raw(self, args, stdin: bytes = b"") -> subprocess.CompletedProcess:
        """cnvc started by its absolute path, so that argv[0] is that path."""
        try:
            return subprocess.run([str(self.cnvc)] + [str(a) for a in args], input=stdin,
                                  capture_output=True, timeout=TIMEOUT_SECONDS, env=self.env)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, -9, b"", b"hung")

    def expect(self, label: str, status: int, args, stdin: bytes = b"", stderr_has: str = ""):
        """Runs cnvc; records whether it exited `status` (with `stderr_has` in its stderr)."""
        result = self.cnvc_raw(args, stdin)
        err = result.stderr.decode(errors="replace")
        ok = result.returncode == status and stderr_has in err
        detail = f"exited {result.returncode}"
        if not ok:
            detail += f" (expected {status}{f' and {stderr_has!r} in stderr' if stderr_has else ''})"
            detail += f"; cnvc {' '.join(map(str, args))}; stderr {err.strip()!r}"
        self.record(label, ok, detail)
        return result if ok else None


def close(actual: np.ndarray, expected: np.ndarray) -> bool:
    """SPEC §4's tolerance."""
    return actual.shape == expected.shape and bool(
        np.all(np.abs(actual - expected) <= 1e-4 + 1e-4 * np.abs(expected)))


def check_run(suite: Suite, model: Path) -> None:
    rng = np.random.default_rng(7)
    arrays = {"x": rng.standard_normal((3, 2, 11)), "z": rng.standard_normal((3, 3, 11)),
              "w": rng.standard_normal((3, 2, 1)), "b": rng.standard_normal(3)}
    files = {}
    for name, array in arrays.items():
        files[name] = suite.tmp / f"{name}.npy"
        np.save(files[name], array.astype("<f4"))
    a = {n: v.astype(np.float32) for n, v in arrays.items()}
    expected = np.einsum("oi,nil->nol", a["w"][:, :, 0], a["x"]) + a["b"][None, :, None] + a["z"]

    inputs = ["--input", f"x={files['x']}", "--input", f"z={files['z']}"]
    params = ["--param", f"w={files['w']}", "--param", f"b={files['b']}"]
    out = lambda tag: ["--output", f"y={suite.tmp / f'y_{tag}.npy'}"]  # noqa: E731
    orders = {
        "MODEL first": [model] + inputs + params + out("first"),
        "every option before MODEL": inputs + params + out("last") + [model],
        "one --input before MODEL, the rest after": inputs[:2] + [model] + inputs[2:] + params
        + out("middle"),
        "--input=NAME=FILE before MODEL": [f"--input=x={files['x']}", model] + inputs[2:] + params
        + out("equals"),
        "--threads 0 before MODEL": ["--threads", "0"] + inputs + [model] + params + out("threads0"),
        "--threads 1": [model, "--threads", "1"] + inputs + params + out("threads1"),
    }
    results = {}
    for label, args in orders.items():
        if suite.expect(f"run, {label}: exit 0", 0, ["run"] + args):
            results[label] = np.load(args[args.index("--output") + 1].split("=", 1)[1])
    for label, y in results.items():
        suite.record(f"run, {label}: y = w·x + b + z as numpy computes it", close(y, expected),
                     f"max |diff| {np.max(np.abs(y - expected)):.2e}" if y.shape == expected.shape
                     else f"shape {y.shape}, expected {expected.shape}")
    if "MODEL first" in results and "every option before MODEL" in results:
        suite.record("run: MODEL first and last give bitwise equal results",
                     np.array_equal(results["MODEL first"], results["every option before MODEL"]))

    # Standard input and output.
    text = model.read_bytes()
    stdin_out = suite.tmp / "y_stdin_model.npy"
    if suite.expect("run, MODEL - (model from stdin): exit 0", 0,
                    ["run"] + inputs + params + ["--output", f"y={stdin_out}", "-"], stdin=text):
        suite.record("run, MODEL -: y as numpy computes it", close(np.load(stdin_out), expected))
    result = suite.expect("run, --input x=- and --output y=-: exit 0", 0,
                          ["run", model, "--input", "x=-"] + inputs[2:] + params + ["--output", "y=-"],
                          stdin=files["x"].read_bytes())
    if result:
        piped = suite.tmp / "y_piped.npy"
        piped.write_bytes(result.stdout)
        y = np.load(piped)
        suite.record("run, --input x=- and --output y=-: stdout is y as numpy computes it",
                     close(y, expected))
    suite.expect("run, MODEL - and --input x=-: usage error", 2,
                 ["run", "-", "--input", "x=-"] + inputs[2:] + params + out("twice"), stdin=text,
                 stderr_has="standard input")

    # --threads: negative counts.
    suite.expect("run --threads -1: usage error naming --threads", 2,
                 ["run", "--threads", "-1", model] + inputs + params + out("neg"),
                 stderr_has="--threads")
    suite.expect("run --threads=-3: usage error naming --threads", 2,
                 ["run", "--threads=-3", model] + inputs + params + out("neg"),
                 stderr_has="--threads")

    # Exit statuses around the argument order.
    suite.expect("run, a second word after --input NAME=FILE: usage error", 2,
                 ["run", "--input", f"x={files['x']}", str(files["z"]), model] + inputs[2:] + params
                 + out("stray"))
    suite.expect("run, options but no MODEL: usage error", 2, ["run"] + inputs + params + out("none"),
                 stderr_has="MODEL")
    suite.expect("run, missing --input z before MODEL: usage error", 2,
                 ["run"] + inputs[:2] + params + out("missing") + [model])
    suite.expect("run, --frobnicate: usage error", 2, ["run", "--frobnicate", model])
    suite.expect("run, x of 3 channels (declared 2): exit 1", 1,
                 ["run", "--input", f"x={files['z']}", model] + inputs[2:] + params + out("bad"))


def check_other_subcommands(suite: Suite, model: Path) -> None:
    text = model.read_bytes()
    # check: the same signature in every order and from stdin.
    signatures = {}
    for label, args in {"MODEL first": [model, "--model", "pointwise"],
                        "--model before MODEL": ["--model", "pointwise", model],
                        "MODEL -": ["--model", "pointwise", "-"]}.items():
        result = suite.expect(f"check, {label}: exit 0", 0, ["check"] + args, stdin=text)
        if result:
            signatures[label] = result.stdout.decode()
    if signatures:
        first = next(iter(signatures.values()))
        suite.record("check: the same signature in every order and from stdin",
                     len(signatures) == 3 and all(s == first for s in signatures.values())
                     and "output y : f32[N, 3, L] layout NCW" in first, repr(signatures))
    suite.expect("check --model nosuch: usage error", 2, ["check", "--model", "nosuch", model])

    # A malformed model on stdin: exit 1, with the diagnostic naming <stdin>.
    result = suite.cnvc_raw(["check", "-"], MALFORMED.encode())
    err = result.stderr.decode(errors="replace")
    where = f"<stdin>:{MALFORMED_LINE}:{MALFORMED_COL}: error: "
    suite.record("check, a malformed model on stdin: exit 1, the diagnostic names <stdin>",
                 result.returncode == 1 and err.startswith(where),
                 f"exited {result.returncode}, stderr {err[:200]!r} (expected {where!r}...)")

    # compile: --emit before MODEL, after it and from stdin print the same IR.
    irs = {}
    for label, args in {"MODEL first": [model, "--emit", "ir"],
                        "--emit before MODEL": ["--emit", "ir", model],
                        "MODEL -": ["--emit=ir", "-"]}.items():
        result = suite.expect(f"compile, {label}: exit 0", 0, ["compile"] + args, stdin=text)
        if result:
            irs[label] = result.stdout.decode()
    if irs:
        first = next(iter(irs.values()))
        suite.record("compile: the same IR in every order and from stdin",
                     len(irs) == 3 and all(s == first for s in irs.values()) and "conv1d" in first)
    obj = suite.tmp / "pointwise.o"
    if suite.expect("compile, --emit=obj -o FILE before MODEL: exit 0", 0,
                    ["compile", "--emit=obj", "-o", obj, model]):
        suite.record("compile, --emit=obj -o FILE before MODEL: an ELF object",
                     obj.read_bytes()[:4] == b"\x7fELF")

    # bench: repeated --dim and --threads before MODEL.
    time_line = re.compile(r"time per run: [0-9.]+ ms, [0-9.]+ GFLOP/s")
    for label, args, stdin in [
            ("--dim --dim before MODEL", ["--dim", "N=2", "--dim", "L=32", model, "--seconds", "0.01"],
             b""),
            ("--threads 0 before MODEL",
             ["--threads", "0", "--dim", "N=2", model, "--dim", "L=32", "--seconds", "0.01"], b""),
            ("MODEL -", ["--dim", "N=2", "--dim", "L=32", "--seconds", "0.01", "-"], text)]:
        result = suite.expect(f"bench, {label}: exit 0", 0, ["bench"] + args, stdin=stdin)
        if result:
            last = result.stdout.decode().splitlines()[-1]
            suite.record(f"bench, {label}: the last line is the time per run",
                         bool(time_line.match(last)), repr(last))
    suite.expect("bench --threads -2: usage error naming --threads", 2,
                 ["bench", "--threads", "-2", "--dim", "N=2", "--dim", "L=32", model],
                 stderr_has="--threads")
    suite.expect("bench, a --dim value that is not an integer: usage error", 2,
                 ["bench", "--dim", "N=two", "--dim", "L=32", model])

    # tune: the same order, 0 threads, one short pass.
    suite.expect("tune, --dim --dim --threads 0 before MODEL: exit 0", 0,
                 ["tune", "--dim", "N=1", "--dim", "L=32", "--threads", "0", "--seconds", "0.005",
                  "--passes", "1", model])
    suite.expect("tune --threads -1: usage error naming --threads", 2,
                 ["tune", "--threads", "-1", "--dim", "N=1", "--dim", "L=32", model],
                 stderr_has="--threads")


def check_program_name(suite: Suite) -> None:
    path = str(suite.cnvc)
    for label, args, status, stream in [("cnvc --help", ["--help"], 0, "stdout"),
                                        ("cnvc run --help", ["run", "--help"], 0, "stdout"),
                                        ("cnvc bench --help", ["bench", "--help"], 0, "stdout"),
                                        ("cnvc (no subcommand)", [], 2, "stderr"),
                                        ("cnvc run (no MODEL)", ["run"], 2, "stderr")]:
        result = suite.cnvc_raw(args)
        out = getattr(result, stream).decode(errors="replace")
        usage = "Usage: cnvc" in out if status == 0 else "cnvc --help" in out
        ok = result.returncode == status and usage and path not in out
        suite.record(f"{label}: exit {status}, says cnvc and not {path}", ok,
                     "" if ok else f"exited {result.returncode}, {stream} {out[:300]!r}")


def check_version(suite: Suite, source_dir: Path) -> None:
    cmake = (source_dir / "CMakeLists.txt").read_text()
    declared = re.search(r"project\(cnv VERSION ([0-9.]+)", cmake)
    result = suite.cnvc_raw(["--version"])
    out = result.stdout.decode(errors="replace").strip()
    match = re.fullmatch(r"cnvc ([0-9.]+) \(LLVM (19\.[0-9]+\.[0-9]+[^,]*), host CPU ([^)\s]+)\)", out)
    problems = []
    if result.returncode != 0:
        problems.append(f"exited {result.returncode}")
    if not match:
        problems.append("not 'cnvc VERSION (LLVM 19.x.y, host CPU NAME)'")
    elif not declared or match.group(1) != declared.group(1):
        problems.append(f"version {match.group(1)}, CMakeLists.txt says "
                        f"{declared.group(1) if declared else 'nothing'}")
    elif match.group(3) == "unknown":
        problems.append("no host CPU name")
    suite.record("cnvc --version: cnv's version, LLVM 19 and the host CPU", not problems,
                 "; ".join(problems + [repr(out)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnvc", type=Path, required=True)
    parser.add_argument("--source-dir", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnv_cli_test_") as tmp:
        suite = Suite(args.cnvc.resolve(), Path(tmp))
        model = Path(tmp) / "pointwise.cnv"
        model.write_text(MODEL)
        check_run(suite, model)
        check_other_subcommands(suite, model)
        check_program_name(suite)
        check_version(suite, args.source_dir)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 and suite.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
