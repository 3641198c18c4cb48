#!/usr/bin/python3
"""The seed examples end to end through `cnvc run`, against PyTorch, plus SPEC §2's exit codes.

    python3 test_seed_examples.py --cnvc build/cnvc --source-dir . [--seed S]

Checks
  agreement    every examples/seed model agrees with the PyTorch evaluator (cnv_torch.py)
               within SPEC §4, for batches 0, 1, 5 and 100 and, where the width is
               symbolic, widths 1, 4, 15 and 33;
  binding      --param .npy files and a --weights .safetensors file give identical
               outputs, also when the .safetensors holds an extra tensor (SPEC §2: ignored);
  styles       example{1,2,3}_tf and example{1,2,3}_torch give the same numbers on the
               same data transposed (NWC<->NCW inputs, WIO<->OIW weights);
  tf_to_torch  example3_tf_to_torch's NCW output is example3_tf's NWC output transposed;
  cli          SPEC §2 exit codes (2 usage, 1 model/data) and SPEC §2's diagnostic format.
Prints one line per check and finally `N passed, M failed`; exits non-zero on any failure.
Random data is seeded per case from --seed; a failure prints the case's seed.
"""
import argparse
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cnv_torch  # noqa: E402  (found through the path set just above)

BATCHES = (0, 1, 5, 100)
SYMBOLIC_WIDTHS = (1, 4, 15, 33)
DEFAULT_SEED = 1234
TIMEOUT_SECONDS = 60
STYLE_PAIRS = [(f"example{k}_tf.cnv", f"example{k}_torch.cnv") for k in (1, 2, 3)]


class CaseFailure(Exception):
    pass


class Suite:
    """Runs cnvc and keeps the tally of checks."""

    def __init__(self, cnvc: Path, seed_dir: Path, workdir: Path, base_seed: int):
        self.cnvc, self.seed_dir, self.workdir, self.base_seed = cnvc, seed_dir, workdir, base_seed
        self.passed = self.failed = 0
        self.case_count = 0

    # -- bookkeeping --
    def record(self, label: str, ok: bool, detail: str = "", seed=None) -> None:
        if ok:
            self.passed += 1
            print(f"ok    {label}{'  ' + detail if detail else ''}")
        else:
            self.failed += 1
            seed_note = f" (seed {seed}; rerun with --seed {self.base_seed})" if seed is not None else ""
            print(f"FAIL  {label}{seed_note}: {detail}")

    def case_seed(self, label: str) -> int:
        # Depends on the label only, so each case reproduces without running the others.
        return self.base_seed + zlib.crc32(label.encode())

    def case_dir(self) -> Path:
        self.case_count += 1
        path = self.workdir / f"case{self.case_count}"
        path.mkdir()
        return path

    # -- cnvc --
    def cnvc_raw(self, args) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([str(self.cnvc)] + [str(a) for a in args], capture_output=True,
                                  text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"cnvc {' '.join(map(str, args))} hung for {TIMEOUT_SECONDS} s")

    def run_model(self, path: Path, model, inputs, params, weights_file: bool = False,
                  extra_tensors=None):
        """`cnvc run` on arrays in their declared layouts; returns {output: array}."""
        tmp = self.case_dir()
        args = ["run", path] + npy_args(tmp, "--input", inputs)
        if weights_file:
            file = tmp / "weights.safetensors"
            cnv_torch.write_safetensors(file, {**params, **(extra_tensors or {})})
            args += ["--weights", file]
        else:
            args += npy_args(tmp, "--param", params)
        outputs = {name: tmp / f"out_{name}.npy" for name in model.outputs}
        for name, file in outputs.items():
            args += ["--output", f"{name}={file}"]
        result = self.cnvc_raw(args)
        if result.returncode != 0:
            raise CaseFailure(f"cnvc run {cnv_torch.exit_description(result.returncode)}: "
                              f"{result.stderr.strip()[-800:]}")
        return {name: np.load(file, allow_pickle=False) for name, file in outputs.items()}

    def load(self, file_name: str):
        path = self.seed_dir / file_name
        (model,) = cnv_torch.parse_file(path)
        return path, model


# ---------------------------------------------------------------------------------------
# Data.

def npy_args(tmp: Path, flag: str, arrays) -> list:
    args = []
    for name, array in arrays.items():
        file = tmp / f"{flag[2:]}_{name}.npy"
        cnv_torch.write_npy(file, array)
        args += [flag, f"{name}={file}"]
    return args


def random_data(model, batch: int, width: int, seed: int):
    rng = np.random.default_rng(seed)
    bindings = cnv_torch.bind_symbols(model, batch, width)

    def make(decls):
        return {name: rng.standard_normal(cnv_torch.concrete_shape(d, bindings)).astype(np.float32)
                for name, d in decls.items()}
    return make(model.inputs), make(model.params)


def translate(src_decls: dict, dst_decls: dict, arrays: dict) -> dict:
    """Moves arrays from one model's declarations to another's, paired by declaration
    order, transposing where the layouts differ (NWC<->NCW and WIO<->OIW alike)."""
    result = {}
    for (src_name, src), (dst_name, dst) in zip(src_decls.items(), dst_decls.items()):
        array = arrays[src_name]
        if src.layout != dst.layout:
            array = array.transpose(0, 2, 1) if src.layout in ("NWC", "NCW") else array.transpose(2, 1, 0)
        result[dst_name] = np.ascontiguousarray(array)
    return result


def to_layout(array: np.ndarray, src_layout: str, dst_layout: str) -> np.ndarray:
    return array if src_layout == dst_layout else array.transpose(0, 2, 1)


def compare(actual: dict, expected: dict):
    """(all within SPEC §4, max |err| over every output, a description)."""
    ok = all(cnv_torch.allclose(actual[n], expected[n]) for n in expected)
    err = max(cnv_torch.max_abs_error(actual[n], expected[n]) for n in expected)
    shapes = ", ".join(f"{n} {list(actual[n].shape)}" for n in expected)
    return ok, err, f"{shapes}  max|err| {err:.1e}"


# ---------------------------------------------------------------------------------------
# Checks.

def check_agreement(suite: Suite, file_name: str) -> None:
    path, model = suite.load(file_name)
    widths = SYMBOLIC_WIDTHS if cnv_torch.is_symbolic_width(model) else (None,)
    configs = [(b, w) for b in BATCHES for w in widths if b != 100 or w in (None, 15)]
    for batch, width in configs:
        label = f"agreement {file_name} batch={batch}" + (f" width={width}" if width else "")
        seed = suite.case_seed(label)
        try:
            inputs, params = random_data(model, batch, width or 0, seed)
            actual = suite.run_model(path, model, inputs, params)
            ok, _, detail = compare(actual, cnv_torch.evaluate(model, inputs, params))
            suite.record(label, ok, detail, seed)
        except (CaseFailure, cnv_torch.CnvError) as e:
            suite.record(label, False, str(e), seed)


def check_binding(suite: Suite, file_name: str) -> None:
    path, model = suite.load(file_name)
    label = f"binding {file_name}"
    seed = suite.case_seed(label)
    try:
        inputs, params = random_data(model, 5, 15, seed)
        from_npy = suite.run_model(path, model, inputs, params)
        from_weights = suite.run_model(path, model, inputs, params, weights_file=True)
        extra = {"unused_extra": np.ones((2, 3), np.float32)}
        with_extra = suite.run_model(path, model, inputs, params, weights_file=True,
                                     extra_tensors=extra)
    except CaseFailure as e:
        suite.record(label, False, str(e), seed)
        return
    same = all(np.array_equal(from_npy[n], from_weights[n]) for n in model.outputs)
    suite.record(f"{label}: --param .npy == --weights .safetensors", same,
                 "" if same else "outputs differ", seed)
    same = all(np.array_equal(from_npy[n], with_extra[n]) for n in model.outputs)
    suite.record(f"{label}: an extra .safetensors tensor is ignored", same,
                 "" if same else "outputs differ", seed)


def check_style_pair(suite: Suite, tf_file: str, torch_file: str) -> None:
    """The TF-style model and the PyTorch-style model compute the same thing."""
    tf_path, tf_model = suite.load(tf_file)
    torch_path, torch_model = suite.load(torch_file)
    label = f"styles {tf_file} == {torch_file} transposed"
    seed = suite.case_seed(label)
    try:
        tf_inputs, tf_params = random_data(tf_model, 4, 15, seed)
        tf_out = suite.run_model(tf_path, tf_model, tf_inputs, tf_params)
        torch_out = suite.run_model(torch_path, torch_model,
                                    translate(tf_model.inputs, torch_model.inputs, tf_inputs),
                                    translate(tf_model.params, torch_model.params, tf_params))
    except CaseFailure as e:
        suite.record(label, False, str(e), seed)
        return
    record_output_match(suite, label, seed, tf_model, tf_out, torch_model, torch_out)


def check_tf_to_torch(suite: Suite) -> None:
    tf_path, tf_model = suite.load("example3_tf.cnv")
    mixed_path, mixed_model = suite.load("example3_tf_to_torch.cnv")
    label = "tf_to_torch example3_tf_to_torch NCW == example3_tf NWC transposed"
    seed = suite.case_seed(label)
    try:
        inputs, params = random_data(tf_model, 6, 15, seed)
        tf_out = suite.run_model(tf_path, tf_model, inputs, params)
        mixed_out = suite.run_model(mixed_path, mixed_model,
                                    translate(tf_model.inputs, mixed_model.inputs, inputs),
                                    translate(tf_model.params, mixed_model.params, params))
    except CaseFailure as e:
        suite.record(label, False, str(e), seed)
        return
    record_output_match(suite, label, seed, tf_model, tf_out, mixed_model, mixed_out)


def record_output_match(suite, label, seed, model_a, out_a, model_b, out_b) -> None:
    """Pairs the two models' outputs by order and compares them in model_b's layouts."""
    expected, actual = {}, {}
    for (name_a, layout_a), (name_b, layout_b) in zip(model_a.outputs.items(), model_b.outputs.items()):
        expected[name_b] = to_layout(out_a[name_a], layout_a, layout_b)
        actual[name_b] = out_b[name_b]
    ok, _, detail = compare(actual, expected)
    exact = all(np.array_equal(actual[n], expected[n]) for n in expected)
    suite.record(label, ok, detail + ("  (bitwise equal)" if exact else ""), seed)


# -- SPEC §2 command-line contract, on example3_tf ---------------------------------------

def check_cli(suite: Suite) -> None:
    path, model = suite.load("example3_tf.cnv")
    seed = suite.case_seed("cli")
    inputs, params = random_data(model, 2, 15, seed)
    tmp = suite.case_dir()
    good_inputs, good_params = npy_args(tmp, "--input", inputs), npy_args(tmp, "--param", params)
    output = ["--output", f"conv={tmp / 'out.npy'}"]
    param_file = tmp / "param_W.npy"  # written by npy_args above

    expect_exit(suite, "cli missing --input name", 2, ["run", path] + good_params + output)
    expect_exit(suite, "cli unknown --param name", 2,
                ["run", path] + good_inputs + good_params + ["--param", f"nosuch={param_file}"] + output)
    expect_exit(suite, "cli duplicate --output name", 2,
                ["run", path] + good_inputs + good_params + output + ["--output", f"conv={tmp / 'again.npy'}"])
    expect_exit(suite, "cli unknown subcommand", 2, ["frobnicate", path])

    float64_file = tmp / "x_float64.npy"
    np.save(float64_file, inputs["x"].astype(np.float64))
    expect_exit(suite, "cli float64 .npy input", 1,
                ["run", path, "--input", f"x={float64_file}"] + good_params + output, needs_message=True)

    channels_file = tmp / "x_3_channels.npy"
    cnv_torch.write_npy(channels_file, np.zeros((2, 15, 3), np.float32))
    expect_exit(suite, "cli wrong channel count (3, declared 2)", 1,
                ["run", path, "--input", f"x={channels_file}"] + good_params + output, needs_message=True)
    check_diagnostic_format(suite, tmp)


def expect_exit(suite, label, expected, args, needs_message=False) -> None:
    try:
        result = suite.cnvc_raw(args)
    except CaseFailure as e:
        suite.record(label, False, str(e))
        return
    message = first_line(result.stderr)
    ok = result.returncode == expected and (message or not needs_message)
    detail = cnv_torch.exit_description(result.returncode) + (f", {message!r}" if message else ", no message")
    if not ok:
        detail += f" (expected exit {expected}{' with a message' if needs_message else ''})"
    suite.record(label, ok, detail)




def first_line(text: str) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[0].strip() if lines else ""


# A model with one stray ')' on line 5: any parser must stop at exactly that token.
MALFORMED_MODEL = """\
model broken {
  input x : f32[N, L, 2] layout NWC
  param w : f32[3, 2, 4] layout WIO
  param b : f32[4]
  h = relu(conv1d(x, w, b, padding=same)))
  output h
}
"""
MALFORMED_LINE = 5
MALFORMED_COL = MALFORMED_MODEL.splitlines()[MALFORMED_LINE - 1].rindex(")") + 1


def check_diagnostic_format(suite: Suite, tmp: Path) -> None:
    """SPEC §2: `FILE:LINE:COL: error: MESSAGE`, then the source line, then a caret."""
    label = "cli malformed model: exit 1 and FILE:LINE:COL: error: + source line + caret"
    path = tmp / "broken.cnv"
    path.write_text(MALFORMED_MODEL)
    try:
        result = suite.cnvc_raw(["check", path])
    except CaseFailure as e:
        suite.record(label, False, str(e))
        return
    problems = [] if result.returncode == 1 else [f"{cnv_torch.exit_description(result.returncode)}, expected exit 1"]
    lines = result.stderr.splitlines()
    pattern = re.compile(re.escape(str(path)) + r":(\d+):(\d+): error: \S")
    found = next((i for i, l in enumerate(lines) if pattern.match(l)), None)
    if found is None:
        problems.append(f"no line matching {str(path)!r}:LINE:COL: error: in {result.stderr!r}")
    else:
        line_no, col = map(int, pattern.match(lines[found]).groups())
        source = MALFORMED_MODEL.splitlines()[MALFORMED_LINE - 1]
        shown = lines[found + 1:found + 3] + ["", ""]
        if (line_no, col) != (MALFORMED_LINE, MALFORMED_COL):
            problems.append(f"reported {line_no}:{col}, expected {MALFORMED_LINE}:{MALFORMED_COL} "
                            f"(the stray ')')")
        if shown[0] != source:
            problems.append(f"source line shown as {shown[0]!r}, expected {source!r}")
        if shown[1].rstrip() != " " * (col - 1) + "^":
            problems.append(f"caret line {shown[1]!r} is not a caret under column {col}")
    detail = "; ".join(problems) if problems else repr(lines[found]) if found is not None else ""
    suite.record(label, not problems, detail)


# ---------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnvc", type=Path, required=True)
    parser.add_argument("--source-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    seed_dir = args.source_dir / "examples" / "seed"
    with tempfile.TemporaryDirectory(prefix="cnv_seed_test_") as tmp:
        suite = Suite(args.cnvc.resolve(), seed_dir, Path(tmp), args.seed)
        for path in sorted(seed_dir.glob("*.cnv")):
            check_agreement(suite, path.name)
        for path in sorted(seed_dir.glob("*.cnv")):
            check_binding(suite, path.name)
        for tf_file, torch_file in STYLE_PAIRS:
            check_style_pair(suite, tf_file, torch_file)
        check_tf_to_torch(suite)
        check_cli(suite)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 and suite.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
