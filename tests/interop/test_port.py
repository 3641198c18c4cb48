#!/usr/bin/python3
"""`cnvc port --to=pytorch` on random models (SPEC §6), in both --layout modes.

    python3 test_port.py --cnvc build/cnvc --source-dir . [--count N] [--seed S]

Each random model (test_random_pipelines.py's generator: every construct of the
language — strides, dilations, groups, every padding rule and mode, bias, activations,
residual adds, nested calls, copies, several outputs in mixed layouts, NWC/NCW inputs,
WIO/OIW weights, symbolic or integer dims) is run by `cnvc run`, then ported with
--layout=declared and --layout=pytorch. Each generated file must compile
(py_compile), import nothing but torch, define the model's class, take its params
through state_dict_from and agree with `cnvc run` within |a - e| <= 1e-4 + 1e-4·|e|.
A few fixed cases check the state_dict `--weights` writes (NAME.pt), `--verify`, and
the usage errors. Prints one line per failure and `N passed, M failed`.
"""
import argparse
import ast
import importlib.util
import json
import math
import py_compile
import random
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_random_pipelines as pipelines  # noqa: E402  (the model generator)
import torch  # noqa: E402

DEFAULT_COUNT = 220
DEFAULT_SEED = 20261201
ALLOWED_IMPORTS = {"torch", "torch.nn", "torch.nn.functional"}


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"ported_{path.parent.name}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_source(path: Path, class_name: str):
    py_compile.compile(str(path), cfile=str(path) + "c", doraise=True)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {node.module}
        else:
            continue
        if not names <= ALLOWED_IMPORTS:
            raise AssertionError(f"imports {names - ALLOWED_IMPORTS}")
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    if classes != [class_name]:
        raise AssertionError(f"defines classes {classes}, not [{class_name}]")


def swap(array):
    return np.ascontiguousarray(np.transpose(array, (0, 2, 1)))


def tolerance_ratio(actual, expected):
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape} != {expected.shape}")
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected) / (1e-4 + 1e-4 * np.abs(expected))))


def one_case(index, seed, work: Path, cnvc: str):
    rng = random.Random(seed)
    data = np.random.default_rng(seed)
    case = work / f"case{index}"
    case.mkdir()
    name = rng.choice(["net", "block", "m", "tcn", "model_a"])
    model = pipelines.Generator(rng, name).model()
    path = case / "model.cnv"
    path.write_text(model.text)
    pymodel = pipelines.cnv_torch.parse_file(path)[0]
    params, param_args = {}, []
    for pname, decl in pymodel.params.items():
        shape = tuple(decl.dims)
        fan_in = shape[1] * (shape[0] if decl.layout == "WIO" else shape[2]) if len(shape) == 3 else 4
        params[pname] = (data.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32)
        file = case / f"param_{pname}.npy"
        np.save(file, params[pname])
        param_args += ["--param", f"{pname}={file}"]
    binding, batch = model.bindings[0], model.batches[0]
    inputs, input_args = {}, []
    for inp in model.inputs:
        dims = {"N": batch, "W": inp.width.at(binding), "C": inp.channels}
        inputs[inp.name] = data.standard_normal(tuple(dims[a] for a in inp.layout)).astype(np.float32)
        file = case / f"input_{inp.name}.npy"
        np.save(file, inputs[inp.name])
        input_args += ["--input", f"{inp.name}={file}"]
    output_names = list(pymodel.outputs)  # in declaration order: forward returns them so
    output_args = []
    for oname in output_names:
        output_args += ["--output", f"{oname}={case / f'out_{oname}.npy'}"]
    result = run([cnvc, "run", str(path)] + input_args + param_args + output_args)
    if result.returncode != 0:
        raise AssertionError(f"cnvc run failed: {result.stderr}")
    expected = [np.load(case / f"out_{oname}.npy") for oname in output_names]
    input_layouts = [decl.layout for decl in pymodel.inputs.values()]
    output_layouts = [pymodel.outputs[oname] for oname in output_names]
    for mode in ("declared", "pytorch"):
        out_dir = case / mode
        result = run([cnvc, "port", str(path), "--to=pytorch", "-o", str(out_dir), f"--layout={mode}"])
        if result.returncode != 0:
            raise AssertionError(f"cnvc port --layout={mode} failed: {result.stderr}")
        file = out_dir / f"{model.name}.py"
        check_source(file, model.name)
        module = load_module(file, f"{mode}{index}")
        net = getattr(module, model.name)()
        net.load_state_dict(net.state_dict_from(params), strict=True)
        args = [torch.from_numpy(swap(inputs[n]) if mode == "pytorch" and layout == "NWC" else inputs[n])
                for n, layout in zip(pymodel.inputs, input_layouts)]
        with torch.no_grad():
            got = net(*args)
        got = got if isinstance(got, tuple) else (got,)
        if len(got) != len(expected):
            raise AssertionError(f"{mode}: {len(got)} outputs, expected {len(expected)}")
        for oname, value, e, layout in zip(output_names, got, expected, output_layouts):
            e = swap(e) if mode == "pytorch" and layout == "NWC" else e
            ratio = tolerance_ratio(value.contiguous().numpy(), e)
            if ratio > 1:
                raise AssertionError(f"{mode}: output {oname} differs by {ratio:.3g}x the tolerance")


def save_safetensors(path, tensors):
    header, blob = {}, b""
    for key, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(array.shape),
                       "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + blob)


def fixed_cases(work: Path, cnvc: str, source: Path):
    """The state_dict --weights writes, --verify, and usage errors."""
    seed3 = source / "examples" / "seed" / "example3_tf.cnv"
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal((3, 2, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    weights = work / "w.safetensors"
    save_safetensors(weights, {"W": w, "b": b, "unused": np.zeros(2, np.float32)})
    out = work / "fixed"
    result = run([cnvc, "port", str(seed3), "--to=pytorch", "-o", str(out), "--weights", str(weights)])
    assert result.returncode == 0, result.stderr
    state = torch.load(out / "example3_tf.pt")
    assert set(state) == {"conv_conv.weight", "conv_conv.bias"}, set(state)
    assert np.array_equal(state["conv_conv.weight"].numpy(), np.transpose(w, (2, 1, 0))), "WIO -> OIW"
    assert np.array_equal(state["conv_conv.bias"].numpy(), b)
    module = load_module(out / "example3_tf.py", "fixed")
    net = module.example3_tf()
    net.load_state_dict(state, strict=True)
    x = rng.standard_normal((2, 15, 2)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    # Against torch's own conv1d on the transposed data, written here independently.
    xt = torch.from_numpy(np.transpose(x, (0, 2, 1)).copy())
    ref = torch.relu(torch.nn.functional.conv1d(
        torch.nn.functional.pad(xt, (1, 1)), torch.from_numpy(np.transpose(w, (2, 1, 0)).copy()),
        torch.from_numpy(b))).permute(0, 2, 1).numpy()
    assert tolerance_ratio(y, ref) <= 1, "the ported seed example differs from F.conv1d"

    result = run([cnvc, "port", str(seed3), "--to=pytorch", "-o", str(out), "--verify"])
    assert result.returncode == 0 and "verify: PyTorch agrees" in result.stdout, result.stdout + result.stderr
    for args, what in ((["--to=keras"], "unknown --to"), (["--to=pytorch", "--layout=nchw"], "bad --layout"),
                       (["--to=pytorch", "--weights", str(weights), "--param", "W=x.npy"], "both"),
                       (["--to=pytorch", "--param", "nosuch=x.npy"], "unknown param")):
        result = run([cnvc, "port", str(seed3), "-o", str(out)] + args)
        assert result.returncode == 2, f"{what}: exit {result.returncode}: {result.stderr}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnvc", required=True)
    parser.add_argument("--source-dir", required=True, type=Path)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    torch.set_num_threads(1)
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="cnv-port-test-") as tmp:
        work = Path(tmp)
        try:
            fixed_cases(work, args.cnvc, args.source_dir.resolve())
            passed += 1
        except Exception as error:  # noqa: BLE001
            print(f"FAIL fixed cases: {error}")
            failed += 1
        for index in range(args.count):
            seed = args.seed * 1000 + index
            try:
                one_case(index, seed, work, args.cnvc)
                passed += 1
            except Exception as error:  # noqa: BLE001
                print(f"FAIL case {index} (seed {seed}): {error}")
                print((work / f"case{index}" / "model.cnv").read_text())
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
