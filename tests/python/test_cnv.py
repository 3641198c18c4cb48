"""The Python module (`import cnv`), with Debian's python3-pytest, against torch's own
conv1d: compile from a path or a string, the signature, params from NumPy arrays and
torch tensors, calls with and without out=, errors, two threads on one model."""
import json
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnv

SOURCE_DIR = Path(__file__).resolve().parents[2]
SEED3 = SOURCE_DIR / "examples" / "seed" / "example3_tf.cnv"

TWO_OUTPUTS = """
model two {
  input  x : f32[N, 3, L] layout NCW
  param  w : f32[4, 3, 5] layout OIW
  param  b : f32[4]
  h = conv1d(x, w, b, stride=2, padding=same)
  y = relu(h)
  z = tanh(conv1d(x, w, padding=(2, 1)))
  output y
  output z layout NWC
}
"""


def reference_seed3(x, w, b):
    """relu(conv1d(x, W, b, padding=same)) with NWC x and WIO W, by torch alone."""
    xt = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 2, 1)), dtype=np.float32))
    wt = torch.from_numpy(np.ascontiguousarray(np.transpose(w, (2, 1, 0)), dtype=np.float32))
    y = torch.relu(F.conv1d(F.pad(xt, (1, 1)), wt, torch.from_numpy(np.asarray(b, np.float32))))
    return y.permute(0, 2, 1).numpy()


def close(a, e):
    return a.shape == e.shape and bool(np.all(np.abs(a - e) <= 1e-4 + 1e-4 * np.abs(e)))


@pytest.fixture
def seed3():
    rng = np.random.default_rng(1)
    model = cnv.compile(SEED3)
    w = rng.standard_normal((3, 2, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    model.set_params({"W": w, "b": b})
    return model, w, b, rng


def test_signature_from_a_path_and_a_string():
    model = cnv.compile(SEED3)
    assert model.name == "example3_tf"
    assert model.inputs == [("x", ("N", "L", "2"), "NWC")]
    assert [p.name for p in model.params] == ["W", "b"]
    assert model.params[0].layout == "WIO" and model.params[1].layout == ""
    assert model.outputs[0].dims == ("N", "L", "4")
    assert model.unbound_params() == ["W", "b"]
    again = cnv.compile_source(SEED3.read_text(), "seed3.cnv")
    assert again.inputs == model.inputs


def test_run_agrees_with_torch(seed3):
    model, w, b, rng = seed3
    for n, l in ((1, 1), (2, 15), (3, 200)):
        x = rng.standard_normal((n, l, 2)).astype(np.float32)
        y = model(x=x)
        assert isinstance(y, np.ndarray) and y.dtype == np.float32
        assert close(y, reference_seed3(x, w, b))


def test_params_and_inputs_of_any_array_kind(seed3):
    model, w, b, rng = seed3
    x = rng.standard_normal((2, 9, 2))
    expected = reference_seed3(x, w, b)
    # float64, a transposed (non-contiguous) view, a torch tensor: all accepted.
    model.set_param("W", torch.from_numpy(w))
    model.set_param("b", b.astype(np.float64))
    assert close(model(x=x), expected)
    transposed = np.ascontiguousarray(np.transpose(x, (0, 2, 1))).transpose(0, 2, 1)
    assert not transposed.flags.c_contiguous
    assert close(model(x=transposed), expected)
    assert close(model(x=torch.from_numpy(x.astype(np.float32))), expected)
    assert close(model(x=x.tolist()), expected)


def test_out_writes_into_the_callers_arrays(seed3):
    model, w, b, rng = seed3
    x = rng.standard_normal((2, 7, 2)).astype(np.float32)
    out = np.full((2, 7, 4), np.nan, dtype=np.float32)
    returned = model(x=x, out=out)
    assert returned is out
    assert close(out, reference_seed3(x, w, b))
    with pytest.raises(cnv.UsageError):
        model(x=x, out=np.zeros((2, 7, 4), dtype=np.float64))
    with pytest.raises(cnv.UsageError):
        model(x=x, out=np.zeros((2, 4, 7), dtype=np.float32).transpose(0, 2, 1))
    with pytest.raises(cnv.UsageError):
        model(x=x, out=np.zeros((2, 7, 5), dtype=np.float32))  # wrong shape


def test_several_outputs_come_as_a_tuple_in_declaration_order():
    rng = np.random.default_rng(2)
    model = cnv.compile_source(TWO_OUTPUTS, "two.cnv")
    w = rng.standard_normal((4, 3, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    model.set_params({"w": w, "b": b})
    x = rng.standard_normal((2, 3, 11)).astype(np.float32)
    y, z = model(x=x)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    # same, stride 2, width 11, E 5: total (6 - 1)·2 + 5 - 11 = 4, (2, 2)
    assert close(y, torch.relu(F.conv1d(F.pad(xt, (2, 2)), wt, torch.from_numpy(b), stride=2)).numpy())
    assert close(z, torch.tanh(F.conv1d(F.pad(xt, (2, 1)), wt)).permute(0, 2, 1).numpy())
    yo, zo = np.empty_like(y), np.empty_like(z)
    model(x=x, out={"z": zo, "y": yo})
    assert np.array_equal(yo, y) and np.array_equal(zo, z)
    model(x=x, out=(yo, zo))
    assert np.array_equal(zo, z)
    assert model.output_shapes(x=x) == {"y": (2, 4, 6), "z": (2, 10, 4)}


def test_errors_are_cnv_error_subclasses_with_positions(seed3):
    with pytest.raises(cnv.ModelError) as error:
        cnv.compile_source("model m {\n  input x : f32[N, L, 2] layout NWC\n  y = relu(q)\n"
                           "  output y\n}\n", "bad.cnv")
    assert (error.value.file, error.value.line, error.value.column) == ("bad.cnv", 3, 12)
    assert "unknown name 'q'" in error.value.message
    assert isinstance(error.value, cnv.Error)
    with pytest.raises(cnv.DataError):
        cnv.compile("/nonexistent/model.cnv")
    model, w, b, rng = seed3
    with pytest.raises(cnv.DataError):
        model(x=np.zeros((2, 5, 3), np.float32))  # 3 channels, not 2
    with pytest.raises(cnv.DataError):
        model.set_param("W", np.zeros((4, 2, 3), np.float32))  # OIW given for WIO
    with pytest.raises(cnv.UsageError):
        model.set_param("nosuch", w)
    with pytest.raises(cnv.UsageError):
        model(y=np.zeros((2, 5, 2), np.float32))
    with pytest.raises(cnv.UsageError):
        model.set_param("W", "not an array")
    with pytest.raises(cnv.UsageError):
        cnv.compile(SEED3).__call__(x=np.zeros((1, 3, 2), np.float32))  # params not bound
    short = cnv.compile_source(
        "model s {\n  input x : f32[N, L, 1] layout NWC\n  param w : f32[5, 1, 1] layout WIO\n"
        "  y = conv1d(x, w)\n  output y\n}\n", "short.cnv")
    short.set_param("w", np.ones((5, 1, 1), np.float32))
    with pytest.raises(cnv.DataError) as error:
        short(x=np.ones((1, 3, 1), np.float32))  # width 3 < kernel 5: a run-time check
    assert (error.value.file, error.value.line) == ("short.cnv", 4)


def test_two_threads_run_one_model_at_once(seed3):
    model, w, b, rng = seed3
    inputs = [rng.standard_normal((4, 3000 + 7 * i, 2)).astype(np.float32) for i in range(2)]
    expected = [reference_seed3(x, w, b) for x in inputs]
    results, failures = {}, []

    def work(i):
        try:
            for _ in range(5):
                results[i] = model(x=inputs[i])
        except Exception as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    for i in range(2):
        assert close(results[i], expected[i])


def test_report_ir_and_port():
    model = cnv.compile(SEED3)
    assert "conv1d" in model.ir("padding-resolution")
    assert "pad=(1, 1)" in model.ir("padding-resolution")
    with pytest.raises(cnv.UsageError):
        model.ir("nosuchpass")
    assert "report for model example3_tf" in model.report()
    source = model.port()
    assert "class example3_tf(nn.Module)" in source and "import cnv" not in source
    compile(source, "example3_tf.py", "exec")
    assert "x.permute" not in cnv.compile_source(
        SEED3.read_text().replace("layout NWC", "layout NCW").replace("[N, L, 2]", "[N, 2, L]"),
        "ncw.cnv").port(layout="pytorch")
    with pytest.raises(cnv.UsageError):
        model.port(to="keras")


def test_weights_from_safetensors(tmp_path, seed3):
    _, w, b, rng = seed3
    header, blob = {}, b""
    for name, array in (("W", w), ("b", b), ("other", np.zeros(3, np.float32))):
        raw = array.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob)
    tensors = cnv.read_safetensors(path)
    assert set(tensors) == {"W", "b", "other"} and np.array_equal(tensors["W"], w)
    model = cnv.compile(SEED3)
    model.load_weights(path)
    x = rng.standard_normal((1, 6, 2)).astype(np.float32)
    assert close(model(x=x), reference_seed3(x, w, b))
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(cnv.DataError):
        cnv.read_safetensors(tmp_path / "bad.safetensors")
