#!/usr/bin/python3
"""bench/lstm_pytorch.py: the recurrent workload of issue 15 (bench/lstm_problem.hpp) in PyTorch,
float64, one thread, written as a user would (elementwise ops on 14-vectors). Same data as the
C++ side (the same LCG), so the losses printed must match lstm_bench's. Prints one JSON object
per line: {"layers", "steps", "pytorch_grad_s", "pytorch_loss_s", "pytorch_loss"}; times are
medians of this thread's CPU time (the machine is shared).

    lstm_pytorch.py [--reps N]
"""
import argparse
import json
import statistics
import time

import torch

MASK = (1 << 64) - 1
N_GATES = 8  # Wf bf Wi bi Wo bo Wc bc


class Lcg:
    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 11

    def uniform(self, lo, hi):
        return lo + (hi - lo) * float(self.next()) * 2.0 ** -53


def make_problem(layers, steps, n=14):
    rng = Lcg(20261128)
    vec = lambda: [rng.uniform(-0.5, 0.5) for _ in range(n)]
    layer_params = [vec() for _ in range(layers * N_GATES)]
    w_out, b_out = vec(), vec()
    chars = [rng.next() % n for _ in range(steps + 1)]
    return layer_params, w_out, b_out, chars


def lstm_loss(params, layers, chars, one_hot, steps):
    n = one_hot.shape[1]
    h = [torch.zeros(n, dtype=torch.float64) for _ in range(layers)]
    c = [torch.zeros(n, dtype=torch.float64) for _ in range(layers)]
    w_out, b_out = params[-2], params[-1]
    total = 0
    for t in range(steps):
        x = one_hot[chars[t]]
        for l in range(layers):
            Wf, bf, Wi, bi, Wo, bo, Wc, bc = params[l * N_GATES:(l + 1) * N_GATES]
            f = torch.sigmoid(x * Wf + bf)
            i = torch.sigmoid(h[l] * Wi + bi)
            o = torch.sigmoid(x * Wo + bo)
            g = torch.tanh(h[l] * Wc + bc)
            c[l] = c[l] * f + i * g
            h[l] = o * torch.tanh(c[l])
            x = h[l]
        yhat = x * w_out + b_out
        total = total - (yhat[chars[t + 1]] - torch.logsumexp(yhat, 0))
    return total / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for layers, steps in [(2, 32), (2, 128), (2, 1024), (2, 4096), (4, 1024), (4, 4096)]:
        layer_params, w_out, b_out, chars = make_problem(layers, steps)
        params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in layer_params + [w_out, b_out]]
        one_hot = torch.eye(14, dtype=torch.float64)
        grad_times, loss_times = [], []
        for _ in range(args.reps):
            t0 = time.thread_time()
            for p in params:
                p.grad = None
            loss = lstm_loss(params, layers, chars, one_hot, steps)
            loss.backward()
            grad_times.append(time.thread_time() - t0)
            t0 = time.thread_time()
            with torch.no_grad():
                value = lstm_loss(params, layers, chars, one_hot, steps).item()
            loss_times.append(time.thread_time() - t0)
        grad_l1 = sum(float(p.grad.abs().sum()) for p in params)
        print(json.dumps({"layers": layers, "steps": steps, "pytorch_grad_s": statistics.median(grad_times),
                          "pytorch_loss_s": statistics.median(loss_times), "pytorch_loss": value,
                          "pytorch_gradient_l1": grad_l1}), flush=True)


if __name__ == "__main__":
    main()
