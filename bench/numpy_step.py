#!/usr/bin/python3
"""bench/numpy_step.py: the notebook's NumPy training step, timed on the bench workloads.

The step is the notebook's forward_prop / backward_prop / update_parameters (three layers,
ReLU, stable softmax, dZ3 = A3 - Y with the 1/m on the gradients), plus the mean
cross-entropy loss, which every other implementation computes too.

Prints one JSON object per line:
  {"impl": "numpy", "workload": "S", "dtype": "f64", "threads": 1, "median_us": ..., ...}
Run with /usr/bin/python3 (Debian's numpy, linked to the system OpenBLAS).
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import statistics
import sys
import timeit

import numpy as np

WORKLOADS = [  # name, sizes, m, dtypes (same as bench/harness.hpp)
    ("S", (5, 10, 10, 4), 10, ("f64",)),
    ("M", (5, 10, 10, 4), 1000, ("f64",)),
    ("L", (784, 256, 128, 10), 128, ("f64", "f32")),
]
DTYPES = {"f64": np.float64, "f32": np.float32}


def openblas():
    """The OpenBLAS that numpy uses (Debian: libblas.so.3 -> openblas-pthread), or None."""
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_set_num_threads  # noqa: B018 (probe the symbol)
            return lib
        except (OSError, AttributeError):
            pass
    return None


# The notebook's code, from the project's one copy of it (tests/data/notebook/notebook.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "notebook"))
from notebook import backward_prop, forward_prop, update_parameters  # noqa: E402


def make_problem(sizes, m, dtype, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.rand(sizes[0], m).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.choice(sizes[-1], m)].T.copy()
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.randn(n_out, n_in) * np.sqrt(2.0 / n_in)).astype(dtype))
        params.append((rng.randn(n_out, 1) * 0.01).astype(dtype))
    return X, Y, tuple(params)


def time_step(sizes, m, dtype, repeats, target_s):
    X, Y, params = make_problem(sizes, m, dtype)
    lr = dtype(0.01)
    state = {"params": params, "loss": 0.0}

    def step():
        A3, acts = forward_prop(X, state["params"])
        state["loss"] = float(-np.sum(Y * np.log(A3)) / m)
        grads = backward_prop(X, Y, state["params"], acts)
        state["params"] = update_parameters(state["params"], grads, lr)

    for _ in range(3):
        step()
    # calibrate: `number` steps per repeat take about target_s
    number = 1
    while True:
        t = timeit.timeit(step, number=number)
        if t >= target_s / 4 or number >= 1 << 20:
            break
        number *= 2
    number = max(1, int(number * target_s / max(t, 1e-9)))
    times = [t / number for t in timeit.repeat(step, number=number, repeat=repeats)]
    return statistics.median(times), min(times), number, state["loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated OpenBLAS thread counts")
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats; the median is reported")
    ap.add_argument("--target", type=float, default=0.05, help="seconds per repeat")
    ap.add_argument("--workloads", default="S,M,L")
    args = ap.parse_args()
    lib = openblas()
    if lib is None:
        print("numpy_step.py: OpenBLAS not found via ctypes: threads not controlled", file=sys.stderr)
    wanted = args.workloads.split(",")
    for threads in [int(t) for t in args.threads.split(",")]:
        if lib is not None:
            lib.openblas_set_num_threads(threads)
        for name, sizes, m, dtypes in WORKLOADS:
            if name not in wanted:
                continue
            for dt in dtypes:
                med, best, number, loss = time_step(sizes, m, DTYPES[dt], args.repeats, args.target)
                print(json.dumps({"impl": "numpy", "workload": name, "dtype": dt, "threads": threads,
                                  "median_us": med * 1e6, "min_us": best * 1e6, "repeats": args.repeats,
                                  "steps_per_repeat": number, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
