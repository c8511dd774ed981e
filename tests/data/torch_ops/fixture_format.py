"""The torch fixture format, shared by every generate.py that checks tapegrad against PyTorch.

A fixture file is plain text, read by tests/autodiff/torch_fixture.hpp:

    # any line starting with '#' is a comment
    case <case name>
    <array name> <rows> <cols> <rows*cols values, row-major>
    <array name> <rows> <cols> ...
    case <next case name>
    ...

Every array is one line. Values are Python's repr of a float64 (17 significant digits at most,
which round-trips exactly through strtod), or nan/inf/-inf. Scalars and integer parameters
(class indices, an axis, a range) are 1x1 or 1xm arrays holding whole numbers.

Conventions the generators follow: activations are features x examples (a column is one
example), so a PyTorch (batch, features) tensor is written transposed; `seed` is the upstream
gradient fed to backward, `out` the op's value, `grad_<input>` the gradient of each input.
"""
import os


def _row(name, array):
    import numpy as np

    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{name}: fixtures hold 2-D arrays only, got shape {a.shape}")
    if " " in name or not name:
        raise ValueError(f"array name {name!r} must be one word")
    values = " ".join(repr(float(v)) for v in a.reshape(-1))
    return f"{name} {a.shape[0]} {a.shape[1]} {values}\n"


def write_cases(path, cases, header=""):
    """cases: list of (case name, {array name: array-like}); written in the order given."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for line in header.strip().splitlines():
            f.write(f"# {line}\n")
        for name, arrays in cases:
            if " " in name:
                raise ValueError(f"case name {name!r} must be one word")
            f.write(f"case {name}\n")
            for key, value in arrays.items():
                f.write(_row(key, value))
    os.replace(tmp, path)
