#!/usr/bin/python3
"""Runs every bundled example through cnvc and checks it against PyTorch.

For each examples/seed/*.cnv (sorted) and each model in it: print `cnvc check`'s
signature, JIT-run the model with `cnvc run` on seeded random inputs and params, and
compare every output with the independent PyTorch evaluator (tests/interop/cnv_torch.py)
within |a - e| <= 1e-4 + 1e-4·|e| (docs/language.md). Exits 1 if any model disagrees or cnvc fails.

    python3 scripts/run_examples.py [--cnvc build/cnvc] [--examples examples/seed]
"""
import argparse
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, str(ROOT / "tests" / "interop"))
import cnv_torch  # noqa: E402  (found through the path set just above)

BATCH = 100          # the seed examples' batch
SYMBOLIC_WIDTH = 15  # the seed's width, for models that leave it symbolic
DEFAULT_SEED = 2024


class ExampleFailure(Exception):
    pass


def run_cnvc(cnvc, args):
    result = subprocess.run([str(cnvc)] + [str(a) for a in args],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ExampleFailure(f"`cnvc {' '.join(map(str, args))}` {cnv_torch.exit_description(result.returncode)}:\n"
                             f"{result.stdout}{result.stderr}")
    return result.stdout




def random_arrays(decls, bindings, rng):
    return {name: rng.standard_normal(cnv_torch.concrete_shape(decl, bindings)).astype(np.float32)
            for name, decl in decls.items()}


def run_model(cnvc, path, model, model_args, seed, workdir):
    """Runs `model` through cnvc and PyTorch; returns [(name, shape, layout, max_err, ok)]."""
    rng = np.random.default_rng(seed)
    bindings = cnv_torch.bind_symbols(model, BATCH, SYMBOLIC_WIDTH)
    inputs = random_arrays(model.inputs, bindings, rng)
    params = random_arrays(model.params, bindings, rng)
    args = ["run", path] + model_args
    for flag, arrays in (("--input", inputs), ("--param", params)):
        for name, array in arrays.items():
            file = workdir / f"{flag[2:]}_{name}.npy"
            cnv_torch.write_npy(file, array)
            args += [flag, f"{name}={file}"]
    for name in model.outputs:
        args += ["--output", f"{name}={workdir / f'output_{name}.npy'}"]
    run_cnvc(cnvc, args)
    expected = cnv_torch.evaluate(model, inputs, params)
    results = []
    for name, layout in model.outputs.items():
        actual = np.load(workdir / f"output_{name}.npy", allow_pickle=False)
        results.append((name, list(actual.shape), layout,
                        cnv_torch.max_abs_error(actual, expected[name]),
                        cnv_torch.allclose(actual, expected[name])))
    return results


def summary_line(label, results):
    outputs = ", ".join(f"output {name} {shape} {layout}" for name, shape, layout, _, _ in results)
    max_err = max((err for _, _, _, err, _ in results), default=0.0)
    verdict = ("agrees with PyTorch (|a - e| <= 1e-4 + 1e-4·|e|)" if all(ok for *_, ok in results)
               else "DISAGREES with PyTorch (beyond 1e-4 + 1e-4·|e|)")
    return f"{label}: {outputs}  max|err| {max_err:.1e}  {verdict}"


def run_example_file(cnvc, path, base_seed):
    """Checks every model of one file; returns True if all agree."""
    try:
        models = cnv_torch.parse_file(path)
    except (cnv_torch.CnvError, OSError) as e:
        print(f"{path.stem}: FAILED: the PyTorch evaluator cannot read it: {e}")
        return False
    all_ok = True
    for model in models:
        model_args = ["--model", model.name] if len(models) > 1 else []
        label = path.stem if path.stem == model.name else f"{path.stem} (model {model.name})"
        # Per-model seeds depend only on the names, so a failure reproduces on its own.
        seed = base_seed + zlib.crc32(f"{path.name}:{model.name}".encode())
        try:
            print(run_cnvc(cnvc, ["check", path] + model_args).rstrip())
            with tempfile.TemporaryDirectory(prefix="cnv_examples_") as tmp:
                results = run_model(cnvc, path, model, model_args, seed, Path(tmp))
        except (ExampleFailure, cnv_torch.CnvError, subprocess.TimeoutExpired, OSError) as e:
            print(f"{label}: FAILED (seed {seed}): {e}")
            all_ok = False
            continue
        print(summary_line(label, results))
        if not all(ok for *_, ok in results):
            print(f"  (seed {seed}; rerun with --seed {base_seed} to reproduce)")
            all_ok = False
        print()
    return all_ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnvc", type=Path, default=ROOT / "build" / "cnvc")
    parser.add_argument("--examples", type=Path, default=ROOT / "examples" / "seed")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    paths = sorted(args.examples.glob("*.cnv"))
    if not paths:
        print(f"no .cnv files in {args.examples}")
        return 1
    if not args.cnvc.is_file():
        print(f"cnvc not found at {args.cnvc} (build it with scripts/build.sh)")
        return 1
    failures = [p.name for p in paths if not run_example_file(args.cnvc, p, args.seed)]
    if failures:
        print(f"{len(failures)} of {len(paths)} examples FAILED: {', '.join(failures)}")
        return 1
    print(f"all {len(paths)} examples agree with PyTorch (|a - e| <= 1e-4 + 1e-4·|e|)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
