#!/usr/bin/python3
"""cnv as an installed library (SPEC §5), tried as a program outside the repository would.

    python3 test_install.py --build-dir build --source-dir . [--keep]

Installs the build into a temporary prefix with `cmake --install`, then checks
  layout       bin/cnvc, the public headers (and nothing else of the source tree),
               libcnv.so with a versioned SONAME, libcnv-runtime.so, cnvConfig.cmake,
               cnvConfigVersion.cmake, cnv.pc and cnv-runtime.pc;
  headers      cnv/cnv_c.h compiles as C99 (-pedantic -Werror) and as C++;
  host_cpp     examples/host_cpp builds with find_package(cnv) and its output .npy
               equals `cnvc run`'s;
  host_c       examples/host_c builds with pkg-config (C API) and prints what `cnvc run`
               computes on the same input;
  aot          examples/aot builds an object with `cnvc compile --emit=obj --header`,
               links it with the runtime library alone (ldd shows no libLLVM) and prints
               bit for bit what the JIT (host_c) prints, at two sizes;
  python       the installed cnv package imports (PYTHONPATH at lib/python3/dist-packages)
               and computes what `cnvc run` computes;
  subdirectory a project that add_subdirectory()s cnv configures without Catch2 or the
               test suite.
Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PUBLIC_HEADERS = {"cnv.h", "cnv_c.h", "cnv_runtime.h", "Io.h", "Error.h", "Tensor.h", "AlignedVector.h", "Export.h"}


def sh(args, **kwargs):
    kwargs.setdefault("timeout", 600)
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def must(args, **kwargs):
    result = sh(args, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype="<f4"))


def save_safetensors(path, tensors):
    header, data, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)


def pattern(shape):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((i * 37) % 17 - 8).astype(np.float32) / np.float32(8)).reshape(shape)


def printed_outputs(text):
    """The `NAME [a, b, c]` + one value per line listing of the C examples."""
    outputs, lines = {}, text.split("\n")
    i = 0
    while i < len(lines) and lines[i]:
        match = re.fullmatch(r"(\w+) \[(\d+), (\d+), (\d+)\]", lines[i])
        assert match, f"unexpected line {lines[i]!r}"
        shape = tuple(int(g) for g in match.groups()[1:])
        count = int(np.prod(shape))
        values = np.array([float(v) for v in lines[i + 1:i + 1 + count]], dtype=np.float32)
        outputs[match.group(1)] = values.reshape(shape)
        i += 1 + count
    return outputs


class Suite:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, function):
        try:
            function()
            print(f"PASS {name}")
            self.passed += 1
        except Exception as error:  # noqa: BLE001 (every failure is reported, then counted)
            print(f"FAIL {name}: {error}")
            self.failed += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True, type=Path)
    parser.add_argument("--source-dir", required=True, type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    source = args.source_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="cnv-install-test-"))
    prefix = work / "prefix"
    env = dict(os.environ)
    env["CMAKE_PREFIX_PATH"] = str(prefix)
    env["PATH"] = f"{prefix / 'bin'}:{env['PATH']}"
    suite = Suite()
    try:
        must(["cmake", "--install", str(args.build_dir), "--prefix", str(prefix)])
        libdir = next(p.parent for p in prefix.glob("lib*/libcnv.so"))
        env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
        cnvc = prefix / "bin" / "cnvc"

        def layout():
            assert cnvc.is_file(), "no bin/cnvc"
            headers = {p.name for p in (prefix / "include" / "cnv").iterdir()}
            assert headers == PUBLIC_HEADERS, f"installed headers {sorted(headers)}"
            others = [p for p in (prefix / "include").iterdir() if p.name != "cnv"]
            assert not others, f"more than cnv/ under include: {others}"
            soname = must(["readelf", "-d", str(libdir / "libcnv.so")]).stdout
            assert re.search(r"SONAME.*\[libcnv\.so\.\d+\]", soname), soname
            assert (libdir / "libcnv-runtime.so").exists()
            for f in ("cmake/cnv/cnvConfig.cmake", "cmake/cnv/cnvConfigVersion.cmake",
                      "pkgconfig/cnv.pc", "pkgconfig/cnv-runtime.pc"):
                assert (libdir / f).is_file(), f"no {f}"
            assert not list(libdir.glob("*.a")), "static archives installed"

        def headers():
            probe = work / "probe.c"
            probe.write_text('#include <cnv/cnv_c.h>\nint main(void) { return cnv_version()[0] == 0; }\n')
            cflags = must(["pkg-config", "--cflags", "cnv"], env=env).stdout.split()
            must(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                  *cflags, str(probe)], env=env)
            must(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++",
                  *cflags, str(probe)], env=env)

        model = source / "examples" / "block.cnv"
        rng = np.random.default_rng(5)
        weights = {"w1": rng.standard_normal((3, 8, 16)), "b1": rng.standard_normal(16),
                   "w2": rng.standard_normal((16, 16, 5)) * 0.2}
        save_safetensors(work / "weights.safetensors", weights)

        def cnvc_run(batch, width):
            x = work / f"x_{batch}_{width}.npy"
            y = work / f"y_{batch}_{width}.npy"
            save_npy(x, pattern((batch, width, 8)))
            must([str(cnvc), "run", str(model), "--input", f"x={x}", "--weights",
                  str(work / "weights.safetensors"), "--output", f"y={y}"], env=env)
            return x, np.load(y)

        def host_cpp():
            build = work / "host_cpp"
            must(["cmake", "-S", str(source / "examples" / "host_cpp"), "-B", str(build)], env=env)
            must(["cmake", "--build", str(build)], env=env)
            x, expected = cnvc_run(3, 40)
            out = work / "host_cpp_y.npy"
            must([str(build / "host_cpp"), str(model), str(work / "weights.safetensors"), str(x),
                  str(out)], env=env)
            got = np.load(out)
            assert got.shape == expected.shape and np.array_equal(got, expected), \
                f"host_cpp differs from cnvc run: max |d| {np.abs(got - expected).max()}"

        runs = {}

        def host_c():
            build = work / "host_c"
            shutil.copytree(source / "examples", work / "examples")
            must(["make", "-C", str(work / "examples" / "host_c")], env=env)
            for batch, width in ((2, 16), (1, 333)):
                printed = must([str(work / "examples" / "host_c" / "host_c"), str(model),
                                str(work / "weights.safetensors"), str(batch), str(width)],
                               env=env).stdout
                runs[("jit", batch, width)] = printed
                got = printed_outputs(printed)["y"]
                _, expected = cnvc_run(batch, width)
                assert got.shape == expected.shape, f"{got.shape} != {expected.shape}"
                assert np.array_equal(got, expected), \
                    f"host_c differs from cnvc run at N={batch} L={width}"
            del build

        def aot():
            build = work / "aot"
            must(["cmake", "-S", str(source / "examples" / "aot"), "-B", str(build)], env=env)
            must(["cmake", "--build", str(build)], env=env)
            program = build / "aot"
            libraries = must(["ldd", str(program)]).stdout
            assert "libLLVM" not in libraries and "libcnv.so" not in libraries, libraries
            assert "libcnv-runtime" in libraries, libraries
            for batch, width in ((2, 16), (1, 333)):
                printed = must([str(program), str(work / "weights.safetensors"), str(batch),
                                str(width)], env=env).stdout
                assert ("jit", batch, width) in runs, "host_c did not run"
                assert printed == runs[("jit", batch, width)], \
                    f"the AOT object and the JIT differ at N={batch} L={width}"
            # The header documents the signature and declares the entry point.
            header = (build / "block.h").read_text()
            assert "cnv_status cnv_block_create(cnv_model** model);" in header, header
            assert "input   x : f32[N, L, 8] layout NWC" in header, header

        def subdirectory():
            parent = work / "parent"
            parent.mkdir()
            (parent / "main.cpp").write_text(
                "#include <cnv/cnv.h>\nint main() { return cnv::Model::fromSource(\"\").name().empty(); }\n")
            (parent / "CMakeLists.txt").write_text(
                "cmake_minimum_required(VERSION 3.21)\nproject(parent CXX)\n"
                f"add_subdirectory({source} cnv)\n"
                "add_executable(app main.cpp)\ntarget_link_libraries(app PRIVATE cnv::cnv)\n")
            configured = must(["cmake", "-S", str(parent), "-B", str(parent / "build")], env=env)
            cache = (parent / "build" / "CMakeCache.txt").read_text()
            assert "CNV_BUILD_TESTS:BOOL=OFF" in cache, "tests configured inside a parent"
            assert "Catch2_DIR" not in cache, "Catch2 looked for inside a parent"
            del configured

        def python():
            packages = libdir / "python3" / "dist-packages"
            assert (packages / "cnv" / "__init__.py").is_file(), "no installed cnv package"
            script = (
                "import sys, numpy as np, cnv\n"
                f"m = cnv.compile({str(model)!r})\n"
                f"m.load_weights({str(work / 'weights.safetensors')!r})\n"
                f"np.save({str(work / 'py_y.npy')!r}, m(x=np.load({str(work / 'x_2_9.npy')!r})))\n")
            cnvc_run(2, 9)
            env_python = dict(env, PYTHONPATH=str(packages))
            must(["/usr/bin/python3", "-c", script], env=env_python, cwd=str(work))
            _, expected = cnvc_run(2, 9)
            assert np.array_equal(np.load(work / "py_y.npy"), expected), "Python differs from cnvc run"

        suite.check("layout", layout)
        suite.check("headers", headers)
        suite.check("host_cpp", host_cpp)
        suite.check("host_c", host_c)
        suite.check("aot", aot)
        suite.check("python", python)
        suite.check("subdirectory", subdirectory)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 1 if suite.failed else 0


if __name__ == "__main__":
    sys.exit(main())
