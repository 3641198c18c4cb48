#!/usr/bin/python3
"""Random .cnv pipelines through `cnvc run` and `cnv_reference_run`, against PyTorch.

    python3 test_random_pipelines.py --cnvc build/cnvc --source-dir . [--count N] [--seed S]
                                     [--case-seed S] [--keep DIR]

Generates random models over the whole of SPEC §1 — 1 to 4 conv1d layers with random
stride, dilation, groups (depthwise, channel multipliers), padding (valid, same,
same_lower, causal, P, (P, Q)), padding_mode (zeros, reflect, replicate, circular) and
optional bias; relu, relu6, leaky_relu(alpha=…), sigmoid and tanh; residual adds between
values of equal shape; nested calls; plain copies `y = x`; several outputs in mixed
layouts; NWC/NCW inputs, WIO/OIW weights; symbolic or integer batch and width dims; and
files holding several models picked with --model — with widths chosen so that every conv
is valid. Each model runs for one or two batch/width bindings (batch 0 sometimes) through
both `cnvc run` and the reference interpreter (build/tests/cnv_reference_run) on the same
.npy files, and both are compared with cnv_torch.evaluate within SPEC §4.

Negative cases: a symbolic width too short for the kernel, a reflect pad ≥ the width or a
circular pad > the width at run time (exit 1 with a `FILE:LINE:COL` diagnostic at the
failing conv), and inputs binding one symbol to two values (exit 1). Random models with a
symbolic width also get runs at a width where some layer is invalid.

Prints one line per model and finally `N passed, M failed`; exits non-zero on any
failure. A failure prints the model, its case seed (rerun just that file with
--case-seed S) and the exact command lines; its files are kept on disk.
"""
import argparse
import concurrent.futures
import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cnv_torch  # noqa: E402  (found through the path set just above)
import torch  # noqa: E402

DEFAULT_SEED = 20240611
# cnvc spends ~0.15-0.2 s of CPU per run of these models (JIT-compiling several kernels) and
# a model gets ~1.65 runs: about 40 s on 2 idle cores, ~90 s when they are shared.
DEFAULT_COUNT = 250
TIMEOUT_SECONDS = 60
WORKERS = 2
ACTIVATIONS = ("relu", "relu6", "leaky_relu", "sigmoid", "tanh")
ALPHAS = ("0.1", "0.2", ".05", "2e-1", "0.3", "1.5", "-0.1", "0", "1", "0.01")


# ---------------------------------------------------------------------------------------
# Shapes of the generated values.

@dataclass(frozen=True)
class Width:
    """floor((S + c) / d) for the symbol S, or the constant c when S is None (d = 1).
    Every padding rule of SPEC §1 maps this form to itself, so two widths are equal for
    every value of S exactly when their forms are equal."""
    sym: Optional[str]
    c: int
    d: int = 1

    def at(self, bindings: Dict[str, int]) -> int:
        return self.c if self.sym is None else (bindings[self.sym] + self.c) // self.d

    def after(self, a: int, s: int) -> "Width":
        """floor((W + a) / s)."""
        if self.sym is None:
            return Width(None, (self.c + a) // s)
        return Width(self.sym, self.c + a * self.d, self.d * s)


def conv_check(width: int, kernel: int, stride: int, dilation: int, padding, mode: str):
    """(output width, None) or (None, the reason the conv is invalid at this width)."""
    left, right = cnv_torch.padding_amounts(padding, width, kernel, stride, dilation)
    effective = dilation * (kernel - 1) + 1
    if width + left + right < effective:
        return None, "kernel"
    if mode == "reflect" and max(left, right) >= width:
        return None, "reflect"
    if mode == "circular" and max(left, right) > width:
        return None, "circular"
    # PyTorch pads replicate beyond the width, but cnv_torch refuses it: keep clear.
    if mode == "replicate" and max(left, right) > width:
        return None, "replicate"
    return (width + left + right - effective) // stride + 1, None


def conv_width(w: Width, kernel: int, stride: int, dilation: int, padding) -> Width:
    effective = dilation * (kernel - 1) + 1
    if padding in ("same", "same_lower", "causal"):
        return w.after(stride - 1, stride)
    left, right = (padding, padding) if isinstance(padding, int) else \
        (0, 0) if padding == "valid" else padding
    return w.after(left + right - effective + stride, stride)


# ---------------------------------------------------------------------------------------
# Generated models.

@dataclass
class Param:
    name: str
    dims: List[int]
    layout: Optional[str]  # None for a bias
    declared: bool = False


@dataclass
class Node:
    name: str
    op: str  # input, conv1d, an activation, add, copy
    args: List["Node"]
    channels: int
    width: Width
    layout: Optional[str] = None  # inputs only
    batch_dim: object = None       # inputs only: the batch dim as written
    weight: Optional[Param] = None
    bias: Optional[Param] = None
    conv: dict = field(default_factory=dict)  # kernel, stride, dilation, groups, padding, mode
    kwargs_text: str = ""
    uses: int = 0
    named: bool = True
    line: int = 0  # the line its call is written on (conv1d)

    def key(self):
        return (self.channels, self.width)


@dataclass
class GenModel:
    name: str
    batch_sym: Optional[str]
    batch_int: int
    inputs: List[Node]
    nodes: List[Node]
    outputs: List[Tuple[Node, Optional[str]]]  # (node, written layout or None)
    bindings: List[Dict[str, int]]   # symbol -> value, one per run
    batches: List[int]               # the batch of each run
    text: str = ""
    bad_bindings: List[Tuple[Dict[str, int], int, set]] = field(default_factory=list)


def padding_text(padding) -> str:
    if isinstance(padding, tuple):
        return f"({padding[0]}, {padding[1]})"
    return str(padding)


class Generator:
    def __init__(self, rng: random.Random, name: str):
        self.rng = rng
        self.name = name
        self.params: List[Param] = []
        self.nodes: List[Node] = []
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # -- the whole model --
    def model(self) -> GenModel:
        rng = self.rng
        batch_sym = rng.choice(["N", "N", "N", "B", "batch"]) if rng.random() < 0.85 else None
        batch_int = rng.randint(1, 3)
        width_sym = rng.choice(["L", "L", "L", "T", "len"]) if rng.random() < 0.7 else None
        runs = 2 if (batch_sym or width_sym) and rng.random() < 0.6 else 1
        bindings, batches = [], []
        for _ in range(runs):
            binding = {}
            if batch_sym:
                binding[batch_sym] = rng.choice([0, 1, 1, 2, 3, 5]) if rng.random() < 0.9 else 0
            if width_sym:
                binding[width_sym] = pick_width(rng)
            if binding not in bindings:
                bindings.append(binding)
                batches.append(binding.get(batch_sym, batch_int))
        self.bindings = bindings

        x = self.add_input("x", rng.randint(1, 6), Width(width_sym, 0) if width_sym else
                           Width(None, pick_width(rng)), batch_sym, batch_int)
        inputs = [x]
        if rng.random() < 0.3:
            if rng.random() < 0.6:  # same width: can meet x in an add
                channels = x.channels if rng.random() < 0.5 else rng.randint(1, 6)
                width = x.width
            else:  # another width, symbolic or not
                channels = rng.randint(1, 6)
                if width_sym and rng.random() < 0.6:
                    width = Width("M", 0)
                    for b in bindings:
                        b["M"] = pick_width(rng)
                else:
                    width = Width(None, pick_width(rng))
            inputs.append(self.add_input(rng.choice(["x2", "z", "skip"]), channels, width,
                                         batch_sym, batch_int))

        pool = list(inputs)
        convs = rng.randint(1, 4)
        made = 0
        while made < convs:
            choice = rng.random()
            last = self.nodes[-1]
            if choice < 0.55:
                src = last if rng.random() < 0.7 else rng.choice(pool)
                if rng.random() < 0.15:  # two branches of equal shape, added
                    a = self.conv(src)
                    made += 1
                    if made < convs and rng.random() < 0.5:
                        if rng.random() < 0.5:
                            a = self.activation(a)
                        a = self.conv(a)
                        made += 1
                    pool.append(a)
                    b = self.conv(src, target=a.key())
                    if b is not None:
                        made += 1
                        pool.append(b)
                        if rng.random() < 0.3:
                            b = self.activation(b)
                        pool.append(self.add(a, b) if rng.random() < 0.5 else self.add(b, a))
                    continue
                if rng.random() < 0.2:  # a residual block
                    h = self.conv(src, preserve=True)
                    if rng.random() < 0.5:
                        h = self.activation(h)
                    pool.append(h)
                    pool.append(self.add(h, src) if rng.random() < 0.5 else self.add(src, h))
                else:
                    pool.append(self.conv(src))
                made += 1
            elif choice < 0.8:
                pool.append(self.activation(last if rng.random() < 0.8 else rng.choice(pool)))
            elif choice < 0.92:
                pairs = [(a, b) for a in pool for b in pool if a.key() == b.key()]
                pairs_distinct = [(a, b) for a, b in pairs if a is not b]
                a, b = rng.choice(pairs_distinct if pairs_distinct and rng.random() < 0.9 else pairs)
                pool.append(self.add(a, b))
            else:
                pool.append(self.copy(rng.choice(pool)))
        if rng.random() < 0.4:
            pool.append(self.activation(self.nodes[-1]))

        # Every input used (but now and then one is left unused: that is allowed too).
        for inp in inputs:
            if inp.uses == 0 and rng.random() < 0.9:
                pool.append(self.conv(inp) if rng.random() < 0.7 else self.activation(inp))

        outputs = self.choose_outputs(inputs)
        model = GenModel(self.name, batch_sym, batch_int, inputs, self.nodes, outputs,
                         bindings, batches)
        self.choose_inlining(model)
        model.text = self.emit(model)
        model.bad_bindings = self.bad_bindings(model, width_sym)
        return model

    def add_input(self, name, channels, width, batch_sym, batch_int) -> Node:
        layout = self.rng.choice(["NWC", "NCW"])
        node = Node(name, "input", [], channels, width, layout=layout,
                    batch_dim=batch_sym or batch_int)
        self.nodes.append(node)
        return node

    def new_value(self, op, args, channels, width, **extra) -> Node:
        for a in args:
            a.uses += 1
        node = Node(self.fresh(self.rng.choice(["h", "y", "t", "out", "v"])), op, args,
                    channels, width, **extra)
        self.nodes.append(node)
        return node

    def widths_at(self, width: Width) -> List[int]:
        return [width.at(b) for b in self.bindings]

    # -- ops --
    def conv(self, src: Node, preserve: bool = False, target=None) -> Optional[Node]:
        """A conv valid at every binding. preserve: the output has the shape of `src`;
        target (channels, Width): the output has that shape, else None is returned."""
        rng = self.rng
        cin = src.channels
        if preserve:
            target = (cin, src.width)
        for _ in range(100 if target else 60):
            cout = target[0] if target else None
            divisors = [g for g in range(1, cin + 1) if cin % g == 0 and (cout or g) % g == 0]
            r = rng.random()
            groups = 1 if r < 0.45 else max(divisors) if r < 0.7 else rng.choice(divisors)
            if cout is None:
                cout = groups * rng.randint(1, max(1, 8 // groups))
            kernel = rng.choice([1, 2, 3, 3, 4, 5])
            dilation = 1 if rng.random() < 0.7 else rng.randint(2, 3)
            if preserve:
                stride = 1
            elif target and target[1].sym is not None:
                if target[1].sym != src.width.sym or target[1].d % src.width.d:
                    return None
                stride = target[1].d // src.width.d  # the only stride that can match
            else:
                stride = 1 if rng.random() < 0.65 else rng.randint(2, 4 if target else 3)
            padding = self.random_padding(kernel, dilation, bool(target) and rng.random() < 0.6)
            mode = rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
            out = conv_width(src.width, kernel, stride, dilation, padding)
            if target and out != target[1]:
                continue
            if all(conv_check(w, kernel, stride, dilation, padding, mode)[0] is not None
                   for w in self.widths_at(src.width)):
                break
        else:
            if target and not preserve:
                return None
            # always valid at any width >= 1, and keeps the shape
            groups, cout, kernel, dilation, stride, padding, mode = 1, cin, 1, 1, 1, "valid", "zeros"
            out = src.width
        weight = self.weight(cin // groups, cout, kernel)
        bias = self.bias(cout) if rng.random() < 0.6 else None
        spec = dict(kernel=kernel, stride=stride, dilation=dilation, groups=groups,
                    padding=padding, mode=mode)
        node = self.new_value("conv1d", [src], cout, out, weight=weight, bias=bias, conv=spec)
        node.kwargs_text = self.conv_kwargs(spec)
        return node

    def random_padding(self, kernel, dilation, preserve):
        rng = self.rng
        effective = dilation * (kernel - 1) + 1
        if preserve:  # output width = input width at stride 1
            options = ["same", "same_lower", "causal"]
            if effective % 2 == 1:
                options.append((effective - 1) // 2)
            p = rng.randint(0, effective - 1)
            options.append((p, effective - 1 - p))
            if effective == 1:
                options.append("valid")
            return rng.choice(options)
        r = rng.random()
        if r < 0.2:
            return "valid"
        if r < 0.4:
            return "same"
        if r < 0.5:
            return "same_lower"
        if r < 0.6:
            return "causal"
        if r < 0.8:
            return rng.randint(0, 3)
        return (rng.randint(0, 3), rng.randint(0, 3))

    def conv_kwargs(self, spec) -> str:
        rng = self.rng
        items = []
        for key, default in (("stride", 1), ("dilation", 1), ("groups", 1)):
            if spec[key] != default or rng.random() < 0.15:
                items.append(f"{key}={spec[key]}")
        if spec["padding"] != "valid" or rng.random() < 0.3:
            items.append(f"padding={padding_text(spec['padding'])}")
        if spec["mode"] != "zeros" or rng.random() < 0.15:
            items.append(f"padding_mode={spec['mode']}")
        rng.shuffle(items)
        return "".join(", " + item for item in items)

    def weight(self, cin_per_group, cout, kernel) -> Param:
        layout = self.rng.choice(["WIO", "OIW"])
        dims = [kernel, cin_per_group, cout] if layout == "WIO" else [cout, cin_per_group, kernel]
        shared = [p for p in self.params if p.layout == layout and p.dims == dims]
        if shared and self.rng.random() < 0.5:  # one weight in two convs
            return shared[0]
        param = Param(self.fresh(self.rng.choice(["w", "W", "weight", "k"])), dims, layout)
        self.params.append(param)
        return param

    def bias(self, cout) -> Param:
        shared = [p for p in self.params if p.layout is None and p.dims == [cout]]
        if shared and self.rng.random() < 0.3:
            return shared[0]
        param = Param(self.fresh(self.rng.choice(["b", "bias"])), [cout], None)
        self.params.append(param)
        return param

    def activation(self, src: Node) -> Node:
        op = self.rng.choice(ACTIVATIONS)
        node = self.new_value(op, [src], src.channels, src.width)
        if op == "leaky_relu" and self.rng.random() < 0.75:
            node.kwargs_text = f", alpha={self.rng.choice(ALPHAS)}"
        return node

    def add(self, a: Node, b: Node) -> Node:
        assert a.key() == b.key()
        return self.new_value("add", [a, b], a.channels, a.width)

    def copy(self, src: Node) -> Node:
        return self.new_value("copy", [src], src.channels, src.width)

    # -- outputs, inlining, text --
    def choose_outputs(self, inputs) -> List[Tuple[Node, Optional[str]]]:
        rng = self.rng
        values = [n for n in self.nodes if n.op != "input"]
        chosen = [values[-1]]
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            candidate = rng.choice(values)
            if candidate not in chosen:
                chosen.append(candidate)
        unused = [n for n in values if n.uses == 0 and n not in chosen]
        chosen += unused  # dead ends become outputs too
        if rng.random() < 0.05:
            chosen.append(inputs[0])  # an input straight to an output
        rng.shuffle(chosen)
        return [(n, rng.choice([None, "NWC", "NCW"])) for n in chosen]

    def choose_inlining(self, model: GenModel) -> None:
        outputs = {id(n) for n, _ in model.outputs}
        consumers: Dict[int, Node] = {}
        for n in model.nodes:
            for a in n.args:
                consumers[id(a)] = n
        inline_p = self.rng.choice([0.0, 0.5, 0.9])
        for n in model.nodes:
            consumer = consumers.get(id(n))
            n.named = (n.op in ("input", "copy") or id(n) in outputs or n.uses != 1
                       or consumer is None or consumer.op == "copy"
                       or self.rng.random() >= inline_p)

    def emit(self, model: GenModel) -> str:
        rng = self.rng
        lines = [f"model {model.name} {{"]
        semi = rng.random() < 0.3
        end = ";" if semi else ""
        for inp in model.inputs:
            w = inp.width.sym if inp.width.sym else str(inp.width.c)
            dims = {"N": str(inp.batch_dim), "W": w, "C": str(inp.channels)}
            lines.append(f"  input {inp.name} : f32[{', '.join(dims[a] for a in inp.layout)}] "
                         f"layout {inp.layout}{end}")
        upfront = rng.random() < 0.5
        if upfront:
            for p in self.params:
                lines.append("  " + param_decl(p) + end)
                p.declared = True
        deferred_outputs = []
        outputs = dict((id(n), layout) for n, layout in model.outputs)
        if rng.random() < 0.5:
            lines.append("  # the pipeline")

        def expr(n: Node, top: bool, line: int, used: List[Param]) -> str:
            if n.named and not top:
                return n.name
            if n.op == "conv1d":
                n.line = line
                args = [expr(n.args[0], False, line, used), n.weight.name]
                used.append(n.weight)
                if n.bias:
                    args.append(n.bias.name)
                    used.append(n.bias)
                return f"conv1d({', '.join(args)}{n.kwargs_text})"
            if n.op == "copy":
                return n.args[0].name
            args = ", ".join(expr(a, False, line, used) for a in n.args)
            return f"{n.op}({args}{n.kwargs_text})"

        for n in model.nodes:
            if n.op != "input" and n.named:
                used: List[Param] = []
                expr(n, True, 0, used)  # collects the params the statement uses
                for p in used:
                    if not p.declared:
                        p.declared = True
                        lines.append("  " + param_decl(p) + end)
                text = expr(n, True, len(lines) + 1, [])  # now with its line
                comment = "  // step" if rng.random() < 0.1 else ""
                lines.append(f"  {n.name} = {text}{end}{comment}")
            if id(n) in outputs and rng.random() < 0.25:
                lines.append(output_stmt(n, outputs.pop(id(n)), end))
            elif id(n) in outputs:
                deferred_outputs.append(n)
        for n in deferred_outputs:
            lines.append(output_stmt(n, outputs[id(n)], end))
        lines.append("}")
        return "\n".join(lines) + "\n"

    # -- widths where some layer is invalid, for the negative runs --
    def bad_bindings(self, model: GenModel, width_sym) -> List[Tuple[Dict[str, int], int, set]]:
        if width_sym is None or self.rng.random() > 0.12:
            return []
        candidates = list(range(1, 40))
        self.rng.shuffle(candidates)
        for value in candidates:
            binding = dict(model.bindings[0])
            binding[width_sym] = value
            bad = failing_convs(model, binding)
            if bad and all(reason in ("kernel", "reflect", "circular") for _, reason in bad):
                batch = model.batch_int if model.batch_sym is None else \
                    self.rng.choice([0, 1, 2, 3])
                if model.batch_sym:
                    binding[model.batch_sym] = batch
                return [(binding, batch, {n.line for n, _ in bad})]
        return []


def failing_convs(model: GenModel, binding: Dict[str, int]):
    """The convs that are invalid at `binding`: any of them may be the one reported. Past a
    reflect/circular failure widths still follow SPEC's formulas, so later convs count too;
    past a kernel failure they are undefined."""
    widths: Dict[int, Optional[int]] = {}
    bad = []
    for n in model.nodes:
        if n.op == "input":
            widths[id(n)] = n.width.at(binding)
            continue
        ins = [widths[id(a)] for a in n.args]
        if any(w is None for w in ins):
            widths[id(n)] = None
        elif n.op == "conv1d":
            c = n.conv
            out, reason = conv_check(ins[0], c["kernel"], c["stride"], c["dilation"],
                                     c["padding"], c["mode"])
            if reason in ("reflect", "circular", "replicate"):
                out = conv_check(ins[0], c["kernel"], c["stride"], c["dilation"],
                                 c["padding"], "zeros")[0]
            widths[id(n)] = out
            if reason:
                bad.append((n, reason))
        else:
            widths[id(n)] = ins[0]
    return bad


def param_decl(p: Param) -> str:
    dims = ", ".join(map(str, p.dims))
    return f"param {p.name} : f32[{dims}]" + (f" layout {p.layout}" if p.layout else "")


def output_stmt(n: Node, layout: Optional[str], end: str) -> str:
    return f"  output {n.name}" + (f" layout {layout}" if layout else "") + end


def pick_width(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.15:
        return rng.randint(1, 4)
    if r < 0.8:
        return rng.randint(5, 24)
    return rng.randint(25, 64)


# ---------------------------------------------------------------------------------------
# Cases: one .cnv file with 1-3 models, data and the commands to run.

@dataclass
class Run:
    label: str
    case_seed: int
    model_text: str
    cnvc_cmd: List[str]
    ref_cmd: Optional[List[str]]
    # positive runs
    pymodel: object = None
    inputs: Dict[str, np.ndarray] = None
    params: Dict[str, np.ndarray] = None
    cnvc_out: Dict[str, Path] = None
    ref_out: Dict[str, Path] = None
    # negative runs: the lines a diagnostic may point at (empty: any), the file
    expect_fail: bool = False
    lines: set = field(default_factory=set)
    path: Optional[Path] = None
    expected: Optional[dict] = None  # fixed cases computed here, not by cnv_torch
    futures: list = field(default_factory=list)


def make_case(index: int, case_seed: int, workdir: Path, cnvc: str, ref: str) -> Tuple[List[Run], int]:
    """The runs of one .cnv file, and how many models it holds; all from case_seed alone."""
    rng = random.Random(case_seed)
    data_rng = np.random.default_rng(case_seed)
    case_dir = workdir / f"case{index}"
    case_dir.mkdir()
    count = 1 if rng.random() < 0.75 else rng.randint(2, 3)
    models = [Generator(rng, f"m{j}" if count > 1 or rng.random() < 0.5
                        else rng.choice(["net", "pipeline", "relu_block"])).model()
              for j in range(count)]
    text = f"# random pipelines, case seed {case_seed}\n" if rng.random() < 0.5 else ""
    offsets = []  # lines before each model: diagnostics count lines in the whole file
    for j, m in enumerate(models):
        text += "\n" if j else ""
        offsets.append(text.count("\n"))
        text += m.text
    path = case_dir / "model.cnv"
    path.write_text(text)
    pymodels = cnv_torch.parse_file(path)
    runs = []
    for model, pymodel, offset in zip(models, pymodels, offsets):
        assert pymodel.name == model.name
        pick = ["--model", model.name] if count > 1 or rng.random() < 0.3 else []
        mdir = case_dir / model.name
        mdir.mkdir()
        params = {}
        for name, decl in pymodel.params.items():
            shape = tuple(decl.dims)
            if len(shape) == 3:
                fan_in = shape[1] * (shape[0] if decl.layout == "WIO" else shape[2])
                params[name] = (data_rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32)
            else:
                params[name] = (0.5 * data_rng.standard_normal(shape)).astype(np.float32)
        param_args = []
        for name, array in params.items():
            file = mdir / f"param_{name}.npy"
            cnv_torch.write_npy(file, array)
            param_args += ["--param", f"{name}={file}"]
        scale = data_rng.choice([1.0, 1.0, 4.0])
        for k, (binding, batch) in enumerate(zip(model.bindings, model.batches)):
            inputs = {}
            for inp in model.inputs:
                shape = {"N": batch, "W": inp.width.at(binding), "C": inp.channels}
                inputs[inp.name] = (scale * data_rng.standard_normal(
                    tuple(shape[a] for a in inp.layout))).astype(np.float32)
            run = positive_run(f"case{index} {model.name} run{k}", case_seed, model.text, path, mdir, k, pick,
                               pymodel, inputs, params, param_args, cnvc, ref)
            if rng.random() < 0.25:  # cnvc only: the reference is single-threaded
                run.cnvc_cmd += ["--threads", str(rng.randint(1, 3))]
            run.label += f" batch={batch}" + "".join(f" {s}={v}" for s, v in binding.items()
                                                     if s != model.batch_sym)
            runs.append(run)
        for k, (binding, batch, lines) in enumerate(model.bad_bindings):
            input_args = []
            for inp in model.inputs:
                shape = {"N": batch, "W": inp.width.at(binding), "C": inp.channels}
                file = mdir / f"bad{k}_input_{inp.name}.npy"
                cnv_torch.write_npy(file, data_rng.standard_normal(
                    tuple(shape[a] for a in inp.layout)).astype(np.float32))
                input_args += ["--input", f"{inp.name}={file}"]
            output_args = []
            for n, _ in model.outputs:
                output_args += ["--output", f"{n.name}={mdir / f'bad{k}_out_{n.name}.npy'}"]
            label = f"case{index} {model.name} too-short width" + "".join(
                f" {s}={v}" for s, v in binding.items())
            runs.append(Run(label, case_seed, model.text,
                            [cnvc, "run", str(path)] + pick + input_args + param_args + output_args,
                            None, expect_fail=True, lines={offset + line for line in lines},
                            path=path))
        # Two inputs sharing a symbol, given two different values for it.
        shared = [inp for inp in model.inputs[1:] if inp.width.sym and
                  inp.width.sym == model.inputs[0].width.sym]
        if shared and rng.random() < 0.5:
            binding = model.bindings[0]
            batch = model.batches[0]
            input_args = []
            for j, inp in enumerate(model.inputs):
                width = inp.width.at(binding) + (1 if inp is shared[0] else 0)
                shape = {"N": batch, "W": width, "C": inp.channels}
                file = mdir / f"conflict_input_{inp.name}.npy"
                cnv_torch.write_npy(file, np.zeros(tuple(shape[a] for a in inp.layout), np.float32))
                input_args += ["--input", f"{inp.name}={file}"]
            output_args = []
            for n, _ in model.outputs:
                output_args += ["--output", f"{n.name}={mdir / f'conflict_out_{n.name}.npy'}"]
            runs.append(Run(f"case{index} {model.name} {shared[0].width.sym} bound to two values", case_seed,
                            model.text,
                            [cnvc, "run", str(path)] + pick + input_args + param_args + output_args,
                            None, expect_fail=True, path=None))
    return runs, len(models)


def positive_run(label, case_seed, model_text, path, mdir, k, pick, pymodel, inputs, params,
                 param_args, cnvc, ref) -> Run:
    input_args = []
    for name, array in inputs.items():
        file = mdir / f"run{k}_input_{name}.npy"
        cnv_torch.write_npy(file, array)
        input_args += ["--input", f"{name}={file}"]
    cnvc_out = {name: mdir / f"run{k}_cnvc_{name}.npy" for name in pymodel.outputs}
    ref_out = {name: mdir / f"run{k}_ref_{name}.npy" for name in pymodel.outputs}
    common = [str(path)] + pick + input_args + param_args
    return Run(label, case_seed, model_text,
               [cnvc, "run"] + common + [a for n, f in cnvc_out.items() for a in ("--output", f"{n}={f}")],
               [ref] + common + [a for n, f in ref_out.items() for a in ("--output", f"{n}={f}")],
               pymodel=pymodel, inputs=inputs, params=params, cnvc_out=cnvc_out, ref_out=ref_out)


# ---------------------------------------------------------------------------------------
# Fixed cases.

SHORT_MODEL = """\
model short {
  input x : f32[N, L, 2] layout NWC
  param w : f32[5, 2, 3] layout WIO
  h = relu(x)
  y = conv1d(h, w, padding=valid)
  output y
}
"""
REFLECT_MODEL = """\
model reflect_pad {
  input x : f32[N, 3, L] layout NCW
  param w : f32[4, 3, 3] layout OIW
  param b : f32[4]
  y = tanh(conv1d(x, w, b, padding=2, padding_mode=reflect))
  output y layout NWC
}
"""
CIRCULAR_MODEL = """\
model circular_pad {
  input x : f32[N, L, 1] layout NWC
  param w : f32[1, 1, 1] layout WIO
  h = conv1d(x, w, padding=same)
  y = conv1d(h, w, padding=(0, 4), padding_mode=circular)
  output y
}
"""
CONFLICT_MODEL = """\
model conflict {
  input x : f32[N, L, 2] layout NWC
  input z : f32[N, 2, L] layout NCW
  y = add(x, z)
  output y
}
"""
REPLICATE_MODEL = """\
model replicate_wide {
  input x : f32[N, 2, L] layout NCW
  param w : f32[3, 2, 2] layout OIW
  y = conv1d(x, w, padding=(4, 3), padding_mode=replicate)
  output y
}
"""


def deep_model(depth: int) -> str:
    # Mostly cheap ops: 256 nested sigmoid/tanh take cnvc seconds to JIT-compile.
    ops = ["tanh(" if i % 64 == 0 else "sigmoid(" if i % 64 == 32 else
           ["relu(", "relu6(", "leaky_relu("][i % 3] for i in range(depth)]
    closers = [", alpha=0.5)" if op == "leaky_relu(" else ")" for op in reversed(ops)]
    inner = "conv1d(x, w, b, padding=same)"
    text = "".join(ops) + inner + "".join(closers)
    return f"""\
model deep {{
  input x : f32[N, L, 3] layout NWC
  param w : f32[3, 3, 3] layout WIO
  param b : f32[3]
  y = {text}
  output y
}}
"""


def fixed_runs(workdir: Path, cnvc: str, ref: str, seed: int) -> List[Run]:
    fixed = workdir / "fixed"
    fixed.mkdir()
    rng = np.random.default_rng(seed)
    runs = []

    def write(name, text):
        path = fixed / f"{name}.cnv"
        path.write_text(text)
        return path

    def arr(name, shape, scale=1.0):
        file = fixed / f"{name}.npy"
        cnv_torch.write_npy(file, (scale * rng.standard_normal(shape)).astype(np.float32))
        return str(file)

    def negative(label, path, text, args, line=None):
        """line: the conv a FILE:LINE:COL diagnostic must point at (None: no location)."""
        runs.append(Run(label, seed, text, [cnvc, "run", str(path)] + args, None, expect_fail=True,
                        lines={line} if line else set(), path=path if line else None))

    path = write("short", SHORT_MODEL)
    negative("fixed: valid conv K=5 on symbolic L=3", path, SHORT_MODEL,
             ["--input", f"x={arr('short_x', (2, 3, 2))}", "--param", f"w={arr('short_w', (5, 2, 3))}",
              "--output", f"y={fixed / 'short_y.npy'}"], line=5)
    path = write("reflect", REFLECT_MODEL)
    negative("fixed: reflect pad 2 on symbolic L=2", path, REFLECT_MODEL,
             ["--input", f"x={arr('reflect_x', (1, 3, 2))}", "--param", f"w={arr('reflect_w', (4, 3, 3))}",
              "--param", f"b={arr('reflect_b', (4,))}", "--output", f"y={fixed / 'reflect_y.npy'}"],
             line=5)
    path = write("circular", CIRCULAR_MODEL)
    negative("fixed: circular pad 4 on symbolic L=3", path, CIRCULAR_MODEL,
             ["--input", f"x={arr('circular_x', (2, 3, 1))}", "--param", f"w={arr('circular_w', (1, 1, 1))}",
              "--output", f"y={fixed / 'circular_y.npy'}"], line=5)
    path = write("conflict", CONFLICT_MODEL)
    negative("fixed: L bound to 7 and 8", path, CONFLICT_MODEL,
             ["--input", f"x={arr('conflict_x', (2, 7, 2))}", "--input", f"z={arr('conflict_z', (2, 2, 8))}",
              "--output", f"y={fixed / 'conflict_y.npy'}"])
    negative("fixed: N bound to 2 and 3", path, CONFLICT_MODEL,
             ["--input", f"x={arr('conflict_x2', (2, 7, 2))}", "--input", f"z={arr('conflict_z2', (3, 2, 7))}",
              "--output", f"y={fixed / 'conflict_y2.npy'}"])

    # Positive fixed cases, run and compared like the random ones.
    def positive(label, name, text, inputs, params, expected=None):
        path = write(name, text)
        (pymodel,) = cnv_torch.parse_file(path)
        mdir = fixed / name
        mdir.mkdir()
        param_args = []
        for pname, array in params.items():
            file = mdir / f"param_{pname}.npy"
            cnv_torch.write_npy(file, array)
            param_args += ["--param", f"{pname}={file}"]
        run = positive_run(f"fixed: {label}", seed, text, path, mdir, 0, [], pymodel, inputs,
                           params, param_args, cnvc, ref)
        run.expected = expected
        runs.append(run)

    f32 = np.float32
    positive("256 nested calls", "deep", deep_model(256),
             {"x": rng.standard_normal((2, 9, 3)).astype(f32)},
             {"w": (rng.standard_normal((3, 3, 3)) / 3).astype(f32), "b": rng.standard_normal(3).astype(f32)})
    # Replicate pads beyond the width as PyTorch's F.pad does (cnv_torch refuses that, so
    # the expected values are computed here).
    x = rng.standard_normal((2, 2, 2)).astype(f32)
    w = rng.standard_normal((3, 2, 2)).astype(f32)
    with torch.no_grad():
        padded = torch.nn.functional.pad(torch.from_numpy(x), (4, 3), mode="replicate")
        y = torch.nn.functional.conv1d(padded, torch.from_numpy(w)).numpy()
    positive("replicate pad (4, 3) on width 2", "replicate", REPLICATE_MODEL, {"x": x}, {"w": w},
             expected={"y": y})
    return runs


# ---------------------------------------------------------------------------------------
# Running and checking.

def run_command(cmd: List[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, -999, "", f"hung for {TIMEOUT_SECONDS} s")


def exit_text(code: int) -> str:
    if code == -999:
        return "hung"
    return f"was killed by signal {-code}" if code < 0 else f"exited {code}"


def load_outputs(files: Dict[str, Path]) -> Dict[str, np.ndarray]:
    return {name: np.load(file, allow_pickle=False) for name, file in files.items()}


def max_errors(actual, expected) -> float:
    return max((cnv_torch.max_abs_error(actual[n], expected[n]) for n in expected), default=0.0)


def check_positive(run: Run, expected, cnvc_result, ref_result) -> Tuple[bool, str]:
    problems, details = [], []
    actual = {}
    for side, result, files in (("cnvc", cnvc_result, run.cnvc_out), ("reference", ref_result, run.ref_out)):
        if result.returncode != 0:
            problems.append(f"{side} {exit_text(result.returncode)}: {result.stderr.strip()[-1500:]}")
            continue
        try:
            actual[side] = load_outputs(files)
        except Exception as e:  # noqa: BLE001  (a malformed output file is a failure)
            problems.append(f"{side} wrote an unreadable output: {e}")
    if isinstance(expected, Exception):
        problems.append(f"cnv_torch.evaluate refused the model: {expected}")
        expected = None
    if expected is not None:
        for side, outs in actual.items():
            ok = all(cnv_torch.allclose(outs[n], expected[n]) for n in expected)
            err = max_errors(outs, expected)
            details.append(f"{side} {err:.1e}")
            if not ok:
                bad = [n for n in expected if not cnv_torch.allclose(outs[n], expected[n])]
                shapes = ", ".join(f"{n}: {list(outs[n].shape)} vs torch {list(expected[n].shape)}"
                                   for n in bad)
                problems.append(f"{side} disagrees with torch on {bad} ({shapes}), max|err| {err:.2e}")
    if len(actual) == 2:
        err = max_errors(actual["cnvc"], actual["reference"])
        details.append(f"cnvc-vs-reference {err:.1e}")
    if problems:  # the max errors of every pair tell which side is off
        return False, "; ".join(problems + ([", ".join(details)] if details else []))
    return True, ", ".join(details)




def check_negative(run: Run, result) -> Tuple[bool, str]:
    message = result.stderr.strip()
    first = message.splitlines()[0] if message else ""
    if result.returncode != 1:
        return False, f"cnvc {exit_text(result.returncode)} (expected exit 1): {message[-800:]!r}"
    if not message:
        return False, "exit 1 but no message"
    if run.path is not None:
        found = list(re.finditer(re.escape(str(run.path)) + r":(?P<line>\d+):(?P<col>\d+)\b", message))
        if not found:
            return False, f"no {run.path}:LINE:COL in the message {message!r}"
        lines = {int(m.group("line")) for m in found}
        if run.lines and not lines & run.lines:
            return False, (f"diagnostic at line(s) {sorted(lines)}, expected one of {sorted(run.lines)}: "
                           f"{first!r}")
    return True, f"exit 1, {first!r}"


def evaluate_torch(run: Run):
    if run.expected is not None:
        return run.expected
    try:
        return cnv_torch.evaluate(run.pymodel, run.inputs, run.params)
    except cnv_torch.CnvError as e:
        return e


def report_failure(run: Run, detail: str, seed: int, script: str, args) -> None:
    print(f"FAIL  {run.label} (case seed {run.case_seed}): {detail}")
    print("      model:")
    for line in run.model_text.splitlines():
        print("        " + line)
    print("      reproduce:")
    print("        " + shlex.join(run.cnvc_cmd))
    if run.ref_cmd:
        print("        " + shlex.join(run.ref_cmd))
    print(f"        /usr/bin/python3 {shlex.quote(script)} --cnvc {shlex.quote(str(args.cnvc))} "
          f"--source-dir {shlex.quote(str(args.source_dir))} --case-seed {run.case_seed}"
          f"    # this case only (run seed {seed})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnvc", type=Path, required=True)
    parser.add_argument("--source-dir", type=Path, required=True)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="random models to test")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--case-seed", type=int, help="generate and test only this case (one file)")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--verbose", action="store_true", help="print a line for every passing run")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress survives a timeout or a kill

    cnvc = str(args.cnvc.resolve())
    ref = os.path.join(os.path.dirname(cnvc), "tests", "cnv_reference_run")
    for tool in (cnvc, ref):
        if not os.access(tool, os.X_OK):
            print(f"FAIL  {tool} is not an executable")
            print("0 passed, 1 failed")
            return 1
    torch.set_num_threads(1)
    script = str(Path(__file__).resolve())
    print(f"seed {args.seed}" + (f", case seed {args.case_seed}" if args.case_seed is not None
                                 else f", {args.count} random models"))
    start = time.monotonic()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="cnv_random_", dir=args.keep))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="cnv_random_"))

    runs: List[Run] = []
    models = 0
    if args.case_seed is not None:
        runs, models = make_case(0, args.case_seed, workdir, cnvc, ref)
    else:
        runs += fixed_runs(workdir, cnvc, ref, args.seed)
        index = 0
        while models < args.count:
            index += 1
            case_runs, case_models = make_case(index, args.seed * 1_000_003 + index, workdir, cnvc, ref)
            models += case_models
            runs += case_runs

    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for run in runs:
            run.futures = [pool.submit(run_command, run.cnvc_cmd)]
            if run.ref_cmd:
                run.futures.append(pool.submit(run_command, run.ref_cmd))
        for run in runs:
            expected = None if run.expect_fail else evaluate_torch(run)
            results = [f.result() for f in run.futures]
            if run.expect_fail:
                ok, detail = check_negative(run, results[0])
            else:
                ok, detail = check_positive(run, expected, *results)
            if ok:
                passed += 1
                if args.verbose or run.expect_fail or run.label.startswith("fixed"):
                    print(f"ok    {run.label}  {detail}")
            else:
                failed += 1
                report_failure(run, detail, args.seed, script, args)
    elapsed = time.monotonic() - start
    print(f"{models} random models, {len(runs)} runs in {elapsed:.1f} s")
    if failed:
        print(f"files kept in {workdir}")
    elif not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
