#!/usr/bin/python3
"""Writes cases.txt: float64 arrays with the exact repr() and str() NumPy prints for them,
for tests/nn/numpy_format_test.cpp, which checks nn::array_repr / array_str / tuple_repr.

Run with a NumPy 1.24 (default print options) from any directory:
    /usr/bin/python3 tests/data/numpy_format/generate.py

Format (ASCII; lengths are byte counts, so expected text may hold any character):
    case <array|tuple> <name>
    arrays <k>                        k = 1 for "array"
    shape <d0> [<d1>]                 } k times
    values <float.hex() ...>          } row-major; may be empty
    repr <n>\n<n bytes>\n             repr(a), or str(tuple) for "tuple"
    str <n>\n<n bytes>\n              only for "array"
    end
"""
import os
import sys

import numpy as np

assert np.__version__.startswith("1.24"), np.__version__
np.set_printoptions()  # defaults: precision 8, linewidth 75, threshold 1000, edgeitems 3

HERE = os.path.dirname(os.path.abspath(__file__))
# Optional: generate.py [N_RANDOM [OUT]] for a larger one-off check outside the repo.
N_RANDOM = int(sys.argv[1]) if len(sys.argv) > 1 else 400
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "cases.txt")
cases = []  # (kind, name, [arrays])


def add(name, a):
    a = np.asarray(a, dtype=np.float64)
    assert a.ndim in (1, 2), name
    cases.append(("array", name, [a]))


def add_tuple(name, arrays):
    cases.append(("tuple", name, [np.asarray(a, dtype=np.float64) for a in arrays]))


# --- The notebook the demo ports (init_parameters, forward_prop, printed in cell 33). ---
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notebook"))
from notebook import execution, forward_prop  # noqa: E402


def notebook():
    X, _, params = execution()
    A3, _ = forward_prop(X, params)
    add_tuple("notebook parameters", params)
    for name, a in zip(["W1", "b1", "W2", "b2", "W3", "b3"], params):
        add("notebook " + name, a)
    add("notebook X", X)
    add("notebook A3", A3)


notebook()

# --- Hand-picked values, one or more per formatting branch. ---
add("one", [[1.0]])
add("zero", [[0.0]])
add("negative zero", [[-0.0]])
add("zero and negative zero", [[0.0, -0.0], [1.0, 2.0]])
add("all zeros 3x4", np.zeros((3, 4)))
add("integers", [[1.0, 2.0], [3.0, 4.0]])
add("integers negative", [[-1.0, 20.0], [300.0, -4000.0]])
add("half and int", [[1.5, -2.0]])
add("b1 right padding", [[0.0030017], [-0.0035225], [-0.01142518]])
add("mixed digit counts", [[0.5, 0.25, 0.125], [0.1, 0.123456789, 3.0]])
add("rounds at precision", [[0.123456789123, 0.999999999, 9.9999999996]])
add("round up to integer", [[0.999999999, 1.5]])
add("tie to even down", [[0.001953125, 0.5]])  # 2**-9: 9 decimals, last is a 5
add("tie to even up", [[0.005859375, 0.5]])  # 3 * 2**-9
add("large positional", [[99999999.99, 1e7 / 1e5 * 1e5]])
add("1e7 positional", [[1e7, 12345678.0]])
add("just below 1e-4 threshold", [[1e-4, 1.0e-1]])
add("min below 1e-4", [[9.99e-5, 0.5]])
add("small forces scientific", [[1e-5, 2.5e-5], [-3e-6, 1.0]])
add("ratio above 1e3", [[1.0, 1001.0]])
add("ratio exactly 1e3", [[1.0, 1000.0]])
add("max 1e8", [[1e8, 1.0]])
add("max just below 1e8", [[99999999.0, 99999.0]])
add("three-digit exponent", [[1e-100, 1.0]])
add("big exponent", [[1e200, -1e-200]])
add("subnormal", [[5e-324, 1.0]])
add("max double", [[np.finfo(float).max, np.finfo(float).tiny]])
add("scientific rounding", [[1.23456789012e-5, 9.999999999e-5, 1.0]])
add("scientific zero", [[0.0, 1e-9], [-0.0, 1e9]])
add("scientific integers", [[1e10, 2e10, 3e10]])
add("scientific tie to even", [[0.001953125 * 1e-3, 1e-12]])
add("nan", [[np.nan]])
add("inf", [[np.inf]])
add("negative inf", [[-np.inf]])
add("nan inf only", [[np.nan, np.inf, -np.inf]])
add("nan with values", [[np.nan, 1.0], [0.5, -0.25]])
add("inf with short values", [[np.inf, 1.0]])
add("negative inf with short values", [[-np.inf, 1.0]])
add("negative inf with scientific", [[-np.inf, 1e-5]])
add("nan with scientific", [[np.nan, 1.5e-7, -2e10]])
add("nan with long values", [[np.nan, 0.12345678]])
add("1-D simple", [1.0, 2.5, -3.0])
add("1-D single", [0.1])
add("1-D negative zero", [-0.0])

# --- Shapes that wrap lines, in both repr (width 74, indent 7) and str (75, indent 1). ---
rng = np.random.RandomState(12345)
add("10x10 normal*0.01", rng.randn(10, 10) * 0.01)
add("4x10 normal*0.01", rng.randn(4, 10) * 0.01)
add("1x20 normal*0.01", rng.randn(1, 20) * 0.01)
add("20x1 normal*0.01", rng.randn(20, 1) * 0.01)
add("1x20 integers", np.arange(20.0).reshape(1, 20))
add("1x40 integers", np.arange(40.0).reshape(1, 40))
add("3x30 scientific", rng.randn(3, 30) * 1e-6)
add("2x13 positive", rng.rand(2, 13))
add("1-D 20", rng.randn(20))
add("1-D 100", rng.randn(100))
add("1-D 100 integers", np.arange(100.0))
# Row widths right around the wrap limits: k elements of width w.
for w_digits in range(1, 9):
    for k in range(4, 13):
        v = np.full((2, k), float("0." + "1" * w_digits))
        add(f"width {w_digits} digits x{k}", v)
        add(f"1-D width {w_digits} digits x{k}", v[0])

# --- Summarisation (more than 1000 elements): edge items 3, "...". ---
add("40x40 summarised", rng.randn(40, 40))
add("1001x1 summarised", rng.randn(1001, 1))
add("1x1001 summarised", rng.randn(1, 1001))
add("7x200 summarised", rng.randn(7, 200) * 0.01)
add("3x400 summarised columns only", rng.randn(3, 400))
add("400x3 summarised rows only", rng.randn(400, 3))
hidden = rng.rand(50, 50)
hidden[25, 25] = 1e-9  # hidden by the summary: must not force scientific
add("summary hides small value", hidden)
add("1-D 2000 summarised", rng.randn(2000))
add("1-D 1000 not summarised", rng.rand(1000))
add("1-D 1001 summarised", np.arange(1001.0))
wide = rng.randn(2, 600) * 1e-7
add("2x600 summarised scientific", wide)
nanny = rng.randn(40, 40)
nanny[0, 0] = np.nan
nanny[-1, -1] = -np.inf
add("summarised with nan inf", nanny)

# --- Empty arrays. ---
add("empty 0x3", np.zeros((0, 3)))
add("empty 3x0", np.zeros((3, 0)))
add("empty 1-D", np.zeros(0))

# --- Tuples. ---
add_tuple("tuple of one", [[[1.0, 2.0]]])
add_tuple("tuple of two", [[[1.0]], np.arange(6.0).reshape(2, 3) / 7])
add_tuple("empty tuple", [])

# --- Random cases from seeded generators at varying scales and shapes. ---
gen = np.random.default_rng(20240601)
for i in range(N_RANDOM):
    rows = int(gen.integers(1, 13))
    cols = int(gen.integers(1, 13))
    scale = 10.0 ** gen.uniform(-12, 12)
    kind = i % 10
    if kind == 0:
        a = gen.standard_normal((rows, cols)) * scale
    elif kind == 1:
        a = gen.uniform(-1, 1, (rows, cols)) * scale
    elif kind == 2:  # integer-valued
        a = np.floor(gen.uniform(-1, 1, (rows, cols)) * 10.0 ** gen.integers(0, 10))
    elif kind == 3:  # few decimals: short unique digits
        a = np.round(gen.standard_normal((rows, cols)) * 10.0 ** gen.integers(-3, 4),
                     int(gen.integers(0, 6)))
    elif kind == 4:  # like the notebook's weights
        a = gen.standard_normal((rows, cols)) * 0.01
    elif kind == 5:  # positive, near the scientific thresholds
        a = gen.uniform(0.5, 1.5, (rows, cols)) * 10.0 ** gen.uniform(-5, -3)
    elif kind == 6:  # wide dynamic range
        a = gen.standard_normal((rows, cols)) * 10.0 ** gen.uniform(-6, 6, (rows, cols))
    elif kind == 8:  # positional near-ties at the 9th decimal: rounding must be exact
        n = gen.integers(-10**9, 10**9, (rows, cols)) * 10 + 5
        a = n / 1e10 * 10.0 ** int(gen.integers(0, 2))
    elif kind == 9:  # scientific near-ties at the 9th mantissa decimal
        n = gen.integers(10**8, 10**9, (rows, cols)) * 10 + 5
        a = n / 1e9 * 10.0 ** gen.integers(-9, -5, (rows, cols)) * gen.choice([-1, 1])
    else:  # sprinkled zeros, negative zeros, nan, inf
        a = gen.standard_normal((rows, cols)) * scale
        specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf])
        mask = gen.uniform(size=(rows, cols)) < 0.2
        a[mask] = gen.choice(specials, size=int(mask.sum()))
    if i % 10 == 9:
        a = a.ravel()  # some 1-D
    add(f"random {i}", a)


def block(tag, text):
    data = text.encode("ascii")
    return f"{tag} {len(data)}\n".encode() + data + b"\n"


out = bytearray(b"# Generated by generate.py with NumPy " + np.__version__.encode() +
                b"; do not edit.\n")
for kind, name, arrays in cases:
    out += f"case {kind} {name}\narrays {len(arrays)}\n".encode()
    for a in arrays:
        out += ("shape " + " ".join(str(d) for d in a.shape) + "\n").encode()
        out += ("values " + " ".join(float(x).hex() for x in a.ravel()) + "\n").encode()
    if kind == "array":
        out += block("repr", repr(arrays[0])) + block("str", str(arrays[0]))
    else:
        out += block("repr", str(tuple(arrays)))
    out += b"end\n"

with open(OUT, "wb") as f:
    f.write(out)
print(f"wrote {len(cases)} cases to {OUT}")
