"""An independent PyTorch evaluator of .cnv models, written from SPEC.md §1 alone.

It shares no code or design with the C++ compiler on purpose: it is the oracle the
compiler is checked against, so a misreading of the spec in one should not be copied
into the other. Everything is computed in float32 with torch.nn.functional, in NCW
(PyTorch's native layout); NWC activations and WIO weights are transposed at the edges.

    models = parse_file("examples/seed/example3_tf.cnv")
    outputs = evaluate(models[0], {"x": x}, {"W": w, "b": b})   # name -> np.ndarray
    assert allclose(actual, outputs["conv"])                    # SPEC §4
"""
import json
import math
import re
import signal
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

Dim = Union[int, str]  # an integer or a symbolic dim's name

ACTIVATION_LAYOUTS = ("NWC", "NCW")
WEIGHT_LAYOUTS = ("WIO", "OIW")
PADDING_MODES = {"zeros": "constant", "reflect": "reflect",
                 "replicate": "replicate", "circular": "circular"}
CONV_DEFAULTS = {"stride": 1, "padding": "valid", "dilation": 1, "groups": 1,
                 "padding_mode": "zeros"}
INT_LIMIT = 2 ** 31  # SPEC §1: integers are below 2^31


class CnvError(Exception):
    """A problem with a model (syntax or meaning) or with the data given to it."""


# ---------------------------------------------------------------------------------------
# The model as parsed.

@dataclass
class Decl:
    """An `input` or `param` declaration."""
    name: str
    dims: List[Dim]
    layout: Optional[str]  # None only for a rank-1 bias


@dataclass
class Call:
    op: str
    args: List["Expr"]
    kwargs: Dict[str, object]
    line: int
    col: int


Expr = Union[str, Call]  # a name or a call


@dataclass
class Model:
    name: str
    inputs: Dict[str, Decl] = field(default_factory=dict)
    params: Dict[str, Decl] = field(default_factory=dict)
    statements: List[Tuple[str, Expr]] = field(default_factory=list)
    outputs: Dict[str, str] = field(default_factory=dict)  # name -> resolved layout

    def first_input_layout(self) -> str:
        if not self.inputs:
            raise CnvError(f"model {self.name} has no input")
        return next(iter(self.inputs.values())).layout


# ---------------------------------------------------------------------------------------
# Tokenizer.

TOKEN_RE = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<comment>(\#|//)[^\n]*)
  | (?P<number>\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\](),:;=\-+])
""", re.VERBOSE)


@dataclass
class Token:
    kind: str  # 'number', 'ident', 'punct' or 'eof'
    text: str
    line: int
    col: int


def tokenize(text: str, filename: str = "<string>") -> List[Token]:
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise CnvError(f"{filename}:{line}:{pos - line_start + 1}: "
                           f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, m.group(), line, pos - line_start + 1))
        for i in range(pos, m.end()):  # keep line/col right across multi-line spaces
            if text[i] == "\n":
                line, line_start = line + 1, i + 1
        pos = m.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


# ---------------------------------------------------------------------------------------
# Recursive-descent parser.

class Parser:
    def __init__(self, text: str, filename: str = "<string>"):
        self.filename = filename
        self.tokens = tokenize(text, filename)
        self.pos = 0

    # -- token helpers --
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def error(self, message: str, token: Optional[Token] = None) -> CnvError:
        token = token or self.peek()
        return CnvError(f"{self.filename}:{token.line}:{token.col}: {message}")

    def accept(self, text: str) -> bool:
        if self.peek().kind in ("punct", "ident") and self.peek().text == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        token = self.peek()
        if not self.accept(text):
            raise self.error(f"expected {text!r}, found {token.text or 'end of file'!r}")
        return token

    def expect_ident(self) -> str:
        token = self.peek()
        if token.kind != "ident":
            raise self.error(f"expected a name, found {token.text or 'end of file'!r}")
        self.pos += 1
        return token.text

    def expect_int(self) -> int:
        value = self.parse_number()
        if not isinstance(value, int):
            raise self.error(f"expected an integer, found {value}")
        return value

    # -- grammar --
    def parse_file(self) -> List[Model]:
        models = []
        while self.peek().kind != "eof":
            models.append(self.parse_model())
        if not models:
            raise self.error("the file holds no model")
        return models

    def parse_model(self) -> Model:
        self.expect("model")
        model = Model(self.expect_ident())
        self.expect("{")
        defined = set()
        while not self.accept("}"):
            self.parse_statement(model, defined)
            self.accept(";")
        if not model.outputs:
            raise self.error(f"model {model.name} has no output")
        return model

    def parse_statement(self, model: Model, defined: set) -> None:
        token = self.peek()
        is_assignment = self.peek(1).text == "="
        if token.text in ("input", "param") and not is_assignment:
            self.pos += 1
            decl = self.parse_decl(token.text)
            self.define(decl.name, defined, token)
            (model.inputs if token.text == "input" else model.params)[decl.name] = decl
        elif token.text == "output" and not is_assignment:
            self.pos += 1
            name_token = self.peek()
            name = self.expect_ident()
            layout = self.expect_ident() if self.accept("layout") else None
            if name not in defined:
                raise self.error(f"unknown name {name!r}", name_token)
            if name in model.outputs:
                raise self.error(f"{name!r} is already an output", name_token)
            if layout is not None and layout not in ACTIVATION_LAYOUTS:
                raise self.error(f"bad output layout {layout!r}", name_token)
            model.outputs[name] = layout or model.first_input_layout()
        else:
            name = self.expect_ident()
            self.expect("=")
            expr = self.parse_expr(defined)
            self.define(name, defined, token)
            model.statements.append((name, expr))

    def define(self, name: str, defined: set, token: Token) -> None:
        if name in defined:
            raise self.error(f"redefinition of {name!r}", token)
        defined.add(name)

    def parse_decl(self, kind: str) -> Decl:
        name = self.expect_ident()
        self.expect(":")
        dtype_token = self.peek()
        if self.expect_ident() != "f32":
            raise self.error("only f32 is supported", dtype_token)
        self.expect("[")
        dims = [self.parse_dim()]
        while self.accept(","):
            dims.append(self.parse_dim())
        self.expect("]")
        layout_token = self.peek()
        layout = self.expect_ident() if self.accept("layout") else None
        self.check_decl(kind, name, dims, layout, layout_token)
        return Decl(name, dims, layout)

    def parse_dim(self) -> Dim:
        if self.peek().kind == "ident":
            return self.expect_ident()
        return self.expect_int()

    def check_decl(self, kind, name, dims, layout, token) -> None:
        symbolic = [d for d in dims if isinstance(d, str)]
        if kind == "input":
            if len(dims) != 3 or layout not in ACTIVATION_LAYOUTS:
                raise self.error(f"input {name!r} needs 3 dims and layout NWC or NCW", token)
            if isinstance(dims[layout.index("C")], str):
                raise self.error(f"the channel dim of {name!r} must be an integer", token)
        elif len(dims) == 3:
            if layout not in WEIGHT_LAYOUTS:
                raise self.error(f"param {name!r} needs layout WIO or OIW", token)
        elif len(dims) != 1 or layout is not None:
            raise self.error(f"param {name!r} must be a rank-3 weight or a bias", token)
        if kind == "param" and symbolic:
            raise self.error(f"param {name!r} has symbolic dims", token)

    def parse_expr(self, defined: set) -> Expr:
        token = self.peek()
        name = self.expect_ident()
        if not self.accept("("):
            if name not in defined:
                raise self.error(f"unknown name {name!r}", token)
            return name
        args, kwargs = [], {}
        if not self.accept(")"):
            while True:
                if self.peek().kind == "ident" and self.peek(1).text == "=":
                    key_token = self.peek()
                    key = self.expect_ident()
                    self.expect("=")
                    if key in kwargs:
                        raise self.error(f"argument {key!r} given twice", key_token)
                    kwargs[key] = self.parse_value()
                elif kwargs:
                    raise self.error("positional argument after keyword argument")
                else:
                    args.append(self.parse_expr(defined))
                if self.accept(")"):
                    break
                self.expect(",")
        return Call(name, args, kwargs, token.line, token.col)

    def parse_value(self):
        """A keyword value: a number, a name (same, reflect, ...) or a pair (P, Q)."""
        if self.accept("("):
            left = self.expect_int()
            self.expect(",")
            right = self.expect_int()
            self.expect(")")
            return (left, right)
        if self.peek().kind == "ident":
            return self.expect_ident()
        return self.parse_number()

    def parse_number(self) -> Union[int, float]:
        sign = -1 if self.accept("-") else 1
        if sign == 1:
            self.accept("+")
        token = self.peek()
        if token.kind != "number":
            raise self.error(f"expected a number, found {token.text or 'end of file'!r}")
        self.pos += 1
        if re.fullmatch(r"\d+", token.text):
            value = int(token.text)
            if value >= INT_LIMIT:
                raise self.error(f"integer {token.text} is out of range", token)
            return sign * value
        return sign * float(token.text)


def parse_text(text: str, filename: str = "<string>") -> List[Model]:
    return Parser(text, filename).parse_file()


def parse_file(path) -> List[Model]:
    with open(path, encoding="utf-8") as f:
        return parse_text(f.read(), str(path))


# ---------------------------------------------------------------------------------------
# Shapes.

def bind_symbols(model: Model, batch: int, width: int) -> Dict[str, int]:
    """Binds every symbolic input dim: batch-position ones to `batch`, width ones to `width`."""
    bindings = {}
    for decl in model.inputs.values():
        for axis, dim in zip(decl.layout, decl.dims):
            if isinstance(dim, str):
                bindings.setdefault(dim, batch if axis == "N" else width)
    return bindings


def concrete_shape(decl: Decl, bindings: Dict[str, int]) -> Tuple[int, ...]:
    return tuple(bindings[d] if isinstance(d, str) else d for d in decl.dims)


def is_symbolic_width(model: Model) -> bool:
    return any(isinstance(d.dims[d.layout.index("W")], str) for d in model.inputs.values())


# ---------------------------------------------------------------------------------------
# Evaluation.

def padding_amounts(padding, width: int, kernel: int, stride: int, dilation: int) -> Tuple[int, int]:
    """(left, right) zero/edge padding, straight from SPEC §1's padding table."""
    effective = dilation * (kernel - 1) + 1
    if padding in ("same", "same_lower"):
        total = max((math.ceil(width / stride) - 1) * stride + effective - width, 0)
        small, large = total // 2, total - total // 2
        return (small, large) if padding == "same" else (large, small)
    if padding == "valid":
        return (0, 0)
    if padding == "causal":
        return (effective - 1, 0)
    if isinstance(padding, int):
        return (padding, padding)
    if isinstance(padding, tuple) and len(padding) == 2:
        return padding
    raise CnvError(f"bad padding {padding!r}")


def conv1d(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], kwargs: dict) -> torch.Tensor:
    """x is NCW, w is OIW."""
    unknown = set(kwargs) - set(CONV_DEFAULTS)
    if unknown:
        raise CnvError(f"conv1d: unknown argument(s) {sorted(unknown)}")
    opts = {**CONV_DEFAULTS, **kwargs}
    stride, dilation, groups = opts["stride"], opts["dilation"], opts["groups"]
    for key in ("stride", "dilation", "groups"):
        if not isinstance(opts[key], int) or opts[key] <= 0:
            raise CnvError(f"conv1d: {key} must be a positive integer")
    if opts["padding_mode"] not in PADDING_MODES:
        raise CnvError(f"conv1d: bad padding_mode {opts['padding_mode']!r}")
    in_channels, out_channels = x.shape[1], w.shape[0]
    if in_channels % groups or out_channels % groups or w.shape[1] * groups != in_channels:
        raise CnvError(f"conv1d: weight {tuple(w.shape)} (OIW) does not fit "
                       f"{in_channels} in-channels with groups={groups}")
    if b is not None and b.shape != (out_channels,):
        raise CnvError(f"conv1d: bias of length {b.shape[0]}, expected {out_channels}")
    left, right = padding_amounts(opts["padding"], x.shape[2], w.shape[2], stride, dilation)
    if left < 0 or right < 0:
        raise CnvError("conv1d: negative padding")
    mode = PADDING_MODES[opts["padding_mode"]]
    if left or right:
        x = pad_nonempty(x, left, right, mode)
    effective = dilation * (w.shape[2] - 1) + 1
    if x.shape[2] < effective:
        raise CnvError(f"conv1d: padded width {x.shape[2]} is shorter than the kernel ({effective})")
    return F.conv1d(x, w, b, stride=stride, padding=0, dilation=dilation, groups=groups)


def pad_nonempty(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    # torch refuses reflect/replicate/circular padding of an empty batch; pad one dummy
    # sample instead and drop it, so a batch of 0 still gets checked and shaped.
    if x.shape[0] == 0:
        dummy = torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype)
        return pad_nonempty(dummy, left, right, mode)[:0]
    # SPEC §1 limits only reflect (pad < width) and circular (pad ≤ width); replicate
    # may pad any amount, as F.pad allows.
    if (mode == "circular" and max(left, right) > x.shape[2]) or \
            (mode == "reflect" and max(left, right) >= x.shape[2]):
        raise CnvError(f"width {x.shape[2]} is too short for {mode} padding ({left}, {right})")
    return F.pad(x, (left, right), mode=mode)


def elementwise(op: str, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    allowed = {"leaky_relu": {"alpha"}}.get(op, set())
    if set(kwargs) - allowed:
        raise CnvError(f"{op}: unknown argument(s) {sorted(set(kwargs) - allowed)}")
    if op == "relu":
        return F.relu(x)
    if op == "relu6":
        return F.relu6(x)
    if op == "leaky_relu":
        return F.leaky_relu(x, negative_slope=float(kwargs.get("alpha", 0.01)))
    if op == "sigmoid":
        return torch.sigmoid(x)
    return torch.tanh(x)


ELEMENTWISE_OPS = ("relu", "relu6", "leaky_relu", "sigmoid", "tanh")


def evaluate_expr(expr: Expr, values: Dict[str, torch.Tensor], weights: Dict[str, torch.Tensor]):
    """Evaluates an activation-valued expression; `weights` holds the params (OIW, bias)."""
    if isinstance(expr, str):
        if expr in weights:
            raise CnvError(f"param {expr!r} used as an activation")
        return values[expr]
    where = f"{expr.line}:{expr.col}: {expr.op}"
    try:
        return apply_op(expr, values, weights)
    except (CnvError, RuntimeError) as e:
        raise CnvError(f"{where}: {e}") from e


def weight_arg(expr: Expr, weights: Dict[str, torch.Tensor], rank: int) -> torch.Tensor:
    if not isinstance(expr, str) or expr not in weights or weights[expr].dim() != rank:
        raise CnvError(f"expected a rank-{rank} param, got {expr!r}")
    return weights[expr]


def apply_op(call: Call, values, weights) -> torch.Tensor:
    args = call.args
    if call.op == "conv1d":
        if len(args) not in (2, 3):
            raise CnvError("takes (x, w) or (x, w, b)")
        x = evaluate_expr(args[0], values, weights)
        w = weight_arg(args[1], weights, 3)
        b = weight_arg(args[2], weights, 1) if len(args) == 3 else None
        return conv1d(x, w, b, call.kwargs)
    if call.op in ELEMENTWISE_OPS:
        if len(args) != 1:
            raise CnvError("takes one activation")
        return elementwise(call.op, evaluate_expr(args[0], values, weights), call.kwargs)
    if call.op == "add":
        operands = [evaluate_expr(a, values, weights) for a in args]
        if len(operands) != 2 or call.kwargs or operands[0].shape != operands[1].shape:
            raise CnvError(f"needs two activations of the same shape, got "
                           f"{[tuple(a.shape) for a in operands]}")
        return operands[0] + operands[1]
    raise CnvError("unknown op")


def to_ncw(array: np.ndarray, layout: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.permute(0, 2, 1).contiguous() if layout == "NWC" else t


def to_oiw(array: np.ndarray, layout: Optional[str]) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.permute(2, 1, 0).contiguous() if layout == "WIO" else t


def check_shapes(model: Model, inputs: dict, params: dict) -> None:
    """Checks the arrays against the declarations, binding symbolic dims consistently."""
    bindings: Dict[str, int] = {}
    for kind, decls, arrays in (("input", model.inputs, inputs), ("param", model.params, params)):
        for name, decl in decls.items():
            if name not in arrays:
                raise CnvError(f"missing {kind} {name!r}")
            shape = np.shape(arrays[name])
            if len(shape) != len(decl.dims):
                raise CnvError(f"{kind} {name!r}: rank {len(shape)}, expected {len(decl.dims)}")
            for dim, actual in zip(decl.dims, shape):
                expected = bindings.setdefault(dim, actual) if isinstance(dim, str) else dim
                if actual != expected:
                    raise CnvError(f"{kind} {name!r}: shape {shape} does not match {decl.dims} "
                                   f"(bound {bindings})")


def evaluate(model: Model, inputs: Dict[str, np.ndarray],
             params: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs `model` on arrays in their declared layouts; returns outputs in theirs."""
    check_shapes(model, inputs, params)
    values = {name: to_ncw(inputs[name], d.layout) for name, d in model.inputs.items()}
    weights = {name: to_oiw(params[name], d.layout) for name, d in model.params.items()}
    with torch.no_grad():
        for name, expr in model.statements:
            values[name] = evaluate_expr(expr, values, weights)
    results = {}
    for name, layout in model.outputs.items():
        if name in weights:
            raise CnvError(f"output {name!r} is a param")
        t = values[name]
        if layout == "NWC":
            t = t.permute(0, 2, 1)
        results[name] = np.ascontiguousarray(t.numpy(), dtype=np.float32)
    return results


# ---------------------------------------------------------------------------------------
# SPEC §4 comparison.

ATOL = 1e-4
RTOL = 1e-4


def allclose(actual: np.ndarray, expected: np.ndarray) -> bool:
    """SPEC §4: equal shapes and |a - e| <= 1e-4 + 1e-4*|e| elementwise (NaN never passes)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return False
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    return bool(np.all(np.abs(a - e) <= ATOL + RTOL * np.abs(e)))


def max_abs_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """The largest |a - e| (0 for empty arrays, inf for a shape mismatch or NaN)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return math.inf
    if actual.size == 0:
        return 0.0
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    return math.inf if np.isnan(err).any() else float(err.max())


# ---------------------------------------------------------------------------------------
# Writers.

def write_npy(path, array: np.ndarray) -> None:
    """A C-ordered little-endian float32 .npy, the only kind SPEC §3 accepts."""
    np.save(path, np.ascontiguousarray(array, dtype="<f4"), allow_pickle=False)


def write_safetensors(path, tensors: Dict[str, np.ndarray]) -> None:
    """Writes F32 tensors in the safetensors format by hand (no safetensors package):
    u64 LE header length, a JSON header padded with spaces to a multiple of 8, the data."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def exit_description(code: int) -> str:
    """How a subprocess ended, for failure messages ("exited 3", "was killed by SIGSEGV")."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited {code}"
