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


# ---- the notebook's code (generalised only in dtype) ---------------------------------
def relu(z):
    return np.maximum(0, z)


def softmax(Z):
    z_exp = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return z_exp / np.sum(z_exp, axis=0, keepdims=True)


def relu_derivative(Z):
    return Z > 0


def forward_prop(X, parameters):
    W1, b1, W2, b2, W3, b3 = parameters
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = softmax(Z3)
    return A3, (Z1, A1, Z2, A2, Z3, A3)


def backward_prop(X, Y, parameters, forwardpass_activations):
    m = X.shape[1]
    W1, b1, W2, b2, W3, b3 = parameters
    Z1, A1, Z2, A2, Z3, A3 = forwardpass_activations
    dL_dZ3 = A3 - Y
    dL_dW3 = (1 / m) * np.dot(dL_dZ3, A2.T)
    dL_db3 = (1 / m) * np.sum(dL_dZ3, axis=1, keepdims=True)
    dL_dA2 = np.dot(W3.T, dL_dZ3)
    dL_dZ2 = dL_dA2 * relu_derivative(Z2)
    dL_dW2 = (1 / m) * np.dot(dL_dZ2, A1.T)
    dL_db2 = (1 / m) * np.sum(dL_dZ2, axis=1, keepdims=True)
    dL_dA1 = np.dot(W2.T, dL_dZ2)
    dL_dZ1 = dL_dA1 * relu_derivative(Z1)
    dL_dW1 = (1 / m) * np.dot(dL_dZ1, X.T)
    dL_db1 = (1 / m) * np.sum(dL_dZ1, axis=1, keepdims=True)
    return (dL_dW1, dL_db1, dL_dW2, dL_db2, dL_dW3, dL_db3)


def update_parameters(parameters, pass_gradients, learning_rate):
    W1, b1, W2, b2, W3, b3 = parameters
    dL_dW1, dL_db1, dL_dW2, dL_db2, dL_dW3, dL_db3 = pass_gradients
    return (W1 - learning_rate * dL_dW1, b1 - learning_rate * dL_db1,
            W2 - learning_rate * dL_dW2, b2 - learning_rate * dL_db2,
            W3 - learning_rate * dL_dW3, b3 - learning_rate * dL_db3)
# ---------------------------------------------------------------------------------------


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
