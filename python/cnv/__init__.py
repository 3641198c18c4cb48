"""cnv from Python: compile a .cnv model, bind its weights, run it on NumPy arrays.

    import cnv
    model = cnv.compile("block.cnv")                  # or cnv.compile_source(text)
    model.set_params({"w": w, "b": b})                 # NumPy arrays or torch tensors
    y = model(x=x)                                     # the output as a NumPy array
    model(x=x, out=y)                                  # ... or into an array of yours

Arrays are float32 in the declared layout of their name; any array of numbers is taken
(copied only when it is not already a C-contiguous float32 array). A model with several
outputs returns a tuple in declaration order. Every failure raises a cnv.Error subclass:
ModelError (the text is wrong; .file, .line, .column and .message locate it), DataError
(an array or file does not fit), UsageError (a wrong call). The GIL is released while a
model runs, and one model may run from several threads at once.
"""
import re as _re

import numpy as _np

from . import _cnv

__version__ = _cnv.version
__all__ = ["compile", "compile_source", "Model", "TensorSpec", "Error", "ModelError",
           "DataError", "UsageError", "InternalError", "read_safetensors"]


class Error(Exception):
    """A failure in cnv. .message is the whole message; for errors located in a .cnv file
    (ModelError, and run-time checks of the width), .file, .line and .column give the
    first diagnostic's position, else they are None."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
        self.file = self.line = self.column = None
        match = _re.match(r"(.*?):(\d+):(\d+): error: ", message)
        if match:
            self.file, self.line, self.column = match.group(1), int(match.group(2)), int(match.group(3))


class ModelError(Error):
    """The model's text is wrong: syntax, names, shapes."""


class DataError(Error):
    """An input, a weight or a file does not fit the model."""


class UsageError(Error):
    """The API was called the wrong way."""


class InternalError(Error):
    """A bug in cnv."""


_KINDS = {"model": ModelError, "data": DataError, "usage": UsageError, "internal": InternalError}


def _raise(native):
    kind, message, _rendered = native.args
    raise _KINDS.get(kind, Error)(message.rstrip("\n")) from None


class TensorSpec(tuple):
    """(name, dims, layout): dims as declared text ("N", "4"), layout "NWC", "NCW",
    "WIO", "OIW" or "" for a bias."""

    __slots__ = ()

    def __new__(cls, name, dims, layout):
        return super().__new__(cls, (name, tuple(dims), layout))

    name = property(lambda self: self[0])
    dims = property(lambda self: self[1])
    layout = property(lambda self: self[2])

    def __repr__(self):
        return f"TensorSpec({self.name!r}, {list(self.dims)}, {self.layout!r})"


class Model:
    """A compiled model. Made by cnv.compile or cnv.compile_source."""

    def __init__(self, native):
        self._native = native

    name = property(lambda self: self._native.name)
    inputs = property(lambda self: [TensorSpec(*s) for s in self._native.inputs])
    params = property(lambda self: [TensorSpec(*s) for s in self._native.params])
    outputs = property(lambda self: [TensorSpec(*s) for s in self._native.outputs])

    def unbound_params(self):
        return list(self._native.unbound_params())

    def set_param(self, name, value):
        """Binds param `name` from an array (or torch tensor) in its declared layout."""
        try:
            self._native.set_param(name, _as_array(value))
        except _cnv.NativeError as native:
            _raise(native)

    def set_params(self, params):
        """Binds every param of a dict name -> array."""
        for name, value in params.items():
            self.set_param(name, value)

    def load_weights(self, path):
        """Binds every param from the tensor of its name in a .safetensors file; other
        tensors are ignored."""
        tensors = read_safetensors(path)
        for spec in self.params:
            if spec.name in tensors:
                self.set_param(spec.name, tensors[spec.name])

    def output_shapes(self, **inputs):
        """Each output's shape (declared layout) for these inputs, by name."""
        try:
            shapes = self._native.output_shapes({k: _as_array(v) for k, v in inputs.items()})
        except _cnv.NativeError as native:
            _raise(native)
        return {name: tuple(shape) for name, shape in shapes.items()}

    def __call__(self, out=None, threads=0, **inputs):
        """Runs the model on keyword inputs. Returns the output (a tuple of them in
        declaration order when there are several) as NumPy arrays; with `out` (an array,
        a tuple of arrays in declaration order, or a dict by name) writes into those
        instead and returns them. threads <= 0: all cores."""
        arrays = {k: _as_array(v) for k, v in inputs.items()}
        names = [spec.name for spec in self.outputs]
        if out is None:
            shapes = self.output_shapes(**arrays)
            buffers = {name: _np.empty(shapes[name], dtype=_np.float32) for name in names}
        else:
            if isinstance(out, dict):
                buffers = dict(out)
            elif isinstance(out, (tuple, list)):
                buffers = dict(zip(names, out))
                if len(out) != len(names):
                    raise UsageError(f"out has {len(out)} arrays; the model has {len(names)} outputs")
            else:
                if len(names) != 1:
                    raise UsageError(f"the model has {len(names)} outputs: give out as a tuple or a dict")
                buffers = {names[0]: out}
            for name, array in buffers.items():
                if not (isinstance(array, _np.ndarray) and array.dtype == _np.float32 and
                        array.flags.c_contiguous and array.flags.writeable):
                    raise UsageError(f"out for '{name}' must be a writable C-contiguous float32 "
                                     "NumPy array")
        try:
            self._native.run(arrays, buffers, int(threads))
        except _cnv.NativeError as native:
            _raise(native)
        results = tuple(buffers[name] for name in names)
        return results[0] if len(results) == 1 else results

    def report(self):
        """What the compiler did: fusions, folded layout changes, FLOPs, kernels."""
        return self._call(self._native.report)

    def ir(self, after="epilogue-fusion"):
        """The IR after pass `after` (build, shape-inference, padding-resolution,
        layout-assignment, epilogue-fusion), as `cnvc compile --dump-after` prints it."""
        return self._call(self._native.ir_after, after)

    def port(self, to="pytorch", layout="declared"):
        """The PyTorch module `cnvc port` writes, as source text."""
        return self._call(self._native.port, to, layout)

    def _call(self, function, *args):
        try:
            return function(*args)
        except _cnv.NativeError as native:
            _raise(native)

    def __repr__(self):
        return f"<cnv.Model {self.name}: inputs {self.inputs}, outputs {self.outputs}>"


def _as_array(value):
    # torch tensors (on the CPU) and anything else with __array__ become NumPy arrays
    # without a copy where their memory allows; the native side copies only what is not
    # C-contiguous float32.
    if isinstance(value, _np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return _np.asarray(value)


def compile_source(source, file_name="<source>", model="", cpu=""):
    """Compiles model text. `model` picks one of several models; `cpu` as cnvc's --cpu."""
    try:
        return Model(_cnv.Model.compile(source, file_name, model or "", cpu or ""))
    except _cnv.NativeError as native:
        _raise(native)


def compile(path, model="", cpu=""):  # noqa: A001 (cnv.compile reads as it should)
    """Compiles the model of a .cnv file."""
    try:
        with open(path, "rb") as f:
            text = f.read()  # bytes: the compiler, not Python, judges the encoding
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None
    return compile_source(text, str(path), model, cpu)


def read_safetensors(path):
    """The tensors of a .safetensors file (F32), by name, as NumPy arrays."""
    try:
        return _cnv.read_safetensors(str(path))
    except _cnv.NativeError as native:
        _raise(native)
