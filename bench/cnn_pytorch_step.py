#!/usr/bin/python3
"""bench/cnn_pytorch_step.py: the CNN workload (bench/cnn_harness.hpp) in PyTorch (Debian's
python3-torch), as its users write it: conv 3x3 -> 32 (padding 1), relu, max pool 2,
conv 3x3 -> 64 (padding 1), relu, max pool 2, linear 3136 -> 10, cross_entropy, backward,
SGD (lr 0.01) under no_grad, grads zeroed. float32, batch 128, 28x28x1, NCHW.

Same shapes and initialisation as the C++ implementations (He-normal weights, N(0, 0.01)
biases, inputs uniform [0, 1)), drawn with numpy: the numbers differ, the work does not.
Prints one JSON object per thread count, as bench/numpy_step.py does:
  {"impl": "pytorch", "workload": "CNN", "dtype": "f32", "threads": 1, "median_us": ..., ...}
"""
import argparse
import ctypes
import json
import statistics
import timeit

import numpy as np
import torch
import torch.nn.functional as F


def set_threads(n):
    torch.set_num_threads(n)
    try:  # the OpenBLAS numpy links, if any, as numpy_step.py does
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass


def make_step(m=128, seed=1, lr=0.01):
    rng = np.random.default_rng(seed)
    f32 = lambda a: torch.tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    X = f32(rng.random((m, 1, 28, 28)))
    labels = torch.tensor(rng.integers(0, 10, m), dtype=torch.int64)

    def init(shape, fan_in):
        w = f32(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).requires_grad_(True)
        b = f32(rng.standard_normal(shape[0]) * 0.01).requires_grad_(True)
        return [w, b]

    params = init((32, 1, 3, 3), 9) + init((64, 32, 3, 3), 288) + init((10, 3136), 3136)
    W1, b1, W2, b2, W3, b3 = params
    state = {"loss": 0.0}

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(X, W1, b1, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, W2, b2, padding=1)), 2)
        loss = F.cross_entropy(F.linear(h.flatten(1), W3, b3), labels)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-lr)
                p.grad.zero_()
        state["loss"] = loss.item()

    return step, state


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats; the median is reported")
    ap.add_argument("--target", type=float, default=0.2, help="seconds per repeat")
    args = ap.parse_args()
    for threads in [int(t) for t in args.threads.split(",")]:
        set_threads(threads)
        step, state = make_step()
        for _ in range(3):
            step()
        number = max(1, round(args.target / (timeit.timeit(step, number=1) or 1e-9)))
        times = [t / number for t in timeit.repeat(step, number=number, repeat=args.repeats)]
        print(json.dumps({"impl": "pytorch", "workload": "CNN", "dtype": "f32", "threads": threads,
                          "median_us": statistics.median(times) * 1e6, "min_us": min(times) * 1e6,
                          "repeats": args.repeats, "steps_per_repeat": number, "loss": state["loss"],
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
