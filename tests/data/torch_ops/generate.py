#!/usr/bin/python3
"""Regenerates the PyTorch fixtures of tapegrad's ops: run `/usr/bin/python3 generate.py`
(Debian's python3-torch, float64). Format: fixture_format.py; reader: tests/autodiff/torch_fixture.hpp.

Each case holds the op's inputs in tapegrad's layout (features x examples, a column is one
example), its parameters, the upstream gradient `seed`, PyTorch's value `out` and the
gradient of every differentiable input (`grad_<input>`). Where PyTorch wants (batch, features)
the tensor is transposed on the way in and out. Inputs include the kinks (0, the clamp
bounds, ties of maximum) so that the subgradients PyTorch picks are checked too.
File names are what tests/autodiff/torch_ops_test.cpp loads.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from fixture_format import write_cases

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [(1, 1), (1, 5), (4, 1), (3, 4)]
rng = np.random.default_rng(20261128)


def uniform(shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def with_kinks(x, kinks):
    """Puts each kink value at a few places of x (where it fits), so subgradients are exercised."""
    flat = x.reshape(-1)
    for i, k in enumerate(kinks):
        if i * 2 < flat.size:
            flat[(i * 2) % flat.size] = k
    return x


def run(fn, inputs, differentiable):
    """Calls fn on float64 tensors; returns out and grads of the named differentiable inputs."""
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=(k in differentiable)) for k, v in inputs.items()}
    out = fn(**tensors)
    seed = uniform(tuple(out.shape)) if out.dim() > 0 else np.array(rng.uniform(0.5, 1.5))
    out.backward(torch.tensor(seed, dtype=torch.float64))
    result = {"seed": seed, "out": out.detach().numpy()}
    for k in differentiable:
        g = tensors[k].grad
        result["grad_" + k] = g.numpy() if g is not None else np.zeros_like(inputs[k])
    return result


def case(name, fn, inputs, differentiable, params=None):
    arrays = dict(inputs)
    arrays.update(params or {})
    arrays.update(run(fn, inputs, differentiable))
    return (name, arrays)


def shape_name(s):
    return f"{s[0]}x{s[1]}"


# ---- scalars mixed with handles ------------------------------------------------------------
def scalar_cases():
    cases = []
    for s in SHAPES:
        x = uniform(s, 0.5, 2.0)  # away from 0: c / x
        c = np.array(-1.75)
        for op, fn in [("add", lambda x: x + c.item()), ("rsub", lambda x: c.item() - x),
                       ("mul", lambda x: x * c.item()), ("div", lambda x: x / c.item()),
                       ("rdiv", lambda x: c.item() / x), ("sub", lambda x: x - c.item())]:
            cases.append(case(f"{op}_{shape_name(s)}", fn, {"x": x}, ["x"], {"c": c}))
    return cases


# ---- elementwise functions of one input ----------------------------------------------------
UNARY = {
    # name: (torch function of x and params, (low, high), kinks, params)
    "square": (lambda x: torch.square(x), (-2, 2), [0.0], {}),
    "sqrt": (lambda x: torch.sqrt(x), (0.1, 3), [], {}),
    "abs": (lambda x: torch.abs(x), (-2, 2), [0.0], {}),
    "log1p": (lambda x: torch.log1p(x), (-0.9, 3), [0.0], {}),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.01), (-2, 2), [0.0], {"slope": 0.01}),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), (-2, 2), [0.0], {"slope": 0.2}),
    "elu": (lambda x: F.elu(x, 1.0), (-3, 2), [0.0], {"alpha": 1.0}),
    "elu_0.5": (lambda x: F.elu(x, 0.5), (-3, 2), [0.0], {"alpha": 0.5}),
    "gelu": (lambda x: F.gelu(x), (-4, 4), [0.0], {}),
    "softplus": (lambda x: F.softplus(x), (-30, 30), [0.0, 20.0, -20.0, 25.0], {}),
    "silu": (lambda x: F.silu(x), (-6, 6), [0.0], {}),
    "clamp": (lambda x: torch.clamp(x, -0.5, 1.0), (-2, 2), [-0.5, 1.0], {"lo": -0.5, "hi": 1.0}),
    "pow_3": (lambda x: torch.pow(x, 3.0), (-2, 2), [0.0], {"p": 3.0}),
    "pow_2": (lambda x: torch.pow(x, 2.0), (-2, 2), [0.0], {"p": 2.0}),
    "pow_0": (lambda x: torch.pow(x, 0.0), (-2, 2), [0.0], {"p": 0.0}),
    "pow_-1": (lambda x: torch.pow(x, -1.0), (0.3, 2), [], {"p": -1.0}),
    "pow_0.5": (lambda x: torch.pow(x, 0.5), (0.1, 3), [], {"p": 0.5}),
    "pow_1.7": (lambda x: torch.pow(x, 1.7), (0.0, 3), [0.0], {"p": 1.7}),
}


def unary_cases():
    cases = []
    for name, (fn, (low, high), kinks, params) in UNARY.items():
        for s in SHAPES:
            x = with_kinks(uniform(s, low, high), kinks)
            cases.append(case(f"{name}_{shape_name(s)}", lambda x: fn(x), {"x": x}, ["x"],
                              {k: np.array(v) for k, v in params.items()}))
    return cases


# ---- maximum, minimum and where, broadcasting like add -------------------------------------
def partners(s):
    return [s, (s[0], 1), (1, s[1]), (1, 1)]


def broadcast_cases():
    cases = []
    for s in SHAPES:
        for p in partners(s):
            for first, second in [(s, p), (p, s)]:
                a = np.round(uniform(first), 1)  # rounded: some ties
                b = np.round(uniform(second), 1)
                a.reshape(-1)[0] = b.reshape(-1)[0]  # at least one exact tie
                tag = f"{shape_name(first)}_{shape_name(second)}"
                cases.append(case(f"maximum_{tag}", lambda a, b: torch.maximum(a, b), {"a": a, "b": b}, ["a", "b"]))
                cases.append(case(f"minimum_{tag}", lambda a, b: torch.minimum(a, b), {"a": a, "b": b}, ["a", "b"]))
                mask = (uniform(p) > 0).astype(np.float64)
                cases.append(case(f"where_{tag}", lambda a, b, mask: torch.where(mask != 0, a, b),
                                  {"a": a, "b": b, "mask": mask}, ["a", "b"]))
    return cases


# ---- structure: concat, slice, gather, reshape, reductions along an axis -------------------
def structure_cases():
    cases = []
    for axis in (0, 1):
        for s in SHAPES:
            other = (s[0], 2) if axis == 1 else (3, s[1])
            parts = {"a": uniform(s), "b": uniform(other), "c": uniform(s), "d": uniform(other), "e": uniform(s)}
            for count in (2, 3, 5):
                names = list(parts)[:count]
                sub = {k: parts[k] for k in names}
                cases.append(case(f"concat{count}_axis{axis}_{shape_name(s)}",
                                  lambda **t: torch.cat([t[k] for k in names], dim=axis), sub, names,
                                  {"axis": np.array(axis)}))
        for s in [(1, 1), (1, 5), (4, 1), (5, 6)]:
            x = uniform(s)
            n = s[axis]
            for begin, end in sorted({(0, n), (0, 1), (n - 1, n), (n // 3, max(n // 3 + 1, 2 * n // 3))}):
                cases.append(case(f"slice_axis{axis}_{shape_name(s)}_{begin}_{end}",
                                  lambda x: x.narrow(axis, begin, end - begin), {"x": x}, ["x"],
                                  {"axis": np.array(axis), "begin": np.array(begin), "end": np.array(end)}))
            for op, fn in [("softmax", lambda x: torch.softmax(x, dim=axis)),
                           ("log_softmax", lambda x: torch.log_softmax(x, dim=axis)),
                           ("sum", lambda x: torch.sum(x, dim=axis, keepdim=True)),
                           ("mean", lambda x: torch.mean(x, dim=axis, keepdim=True)),
                           ("max", lambda x: torch.max(x, dim=axis, keepdim=True).values)]:
                cases.append(case(f"{op}_axis{axis}_{shape_name(s)}", fn, {"x": uniform(s, -3, 3)}, ["x"],
                                  {"axis": np.array(axis)}))
    # gather: an n x vocab table and ids give n x m (axis 1, the embedding); vocab x n gives m x n (axis 0)
    for n, vocab, ids in [(1, 1, [0]), (3, 5, [4, 0, 2]), (4, 6, [1, 1, 5, 1, 0, 5, 2]), (2, 3, [2])]:
        ids_t = torch.tensor(ids)
        cases.append(case(f"gather_axis1_{n}x{vocab}_{len(ids)}", lambda table: table.index_select(1, ids_t),
                          {"table": uniform((n, vocab))}, ["table"], {"ids": np.array(ids), "axis": np.array(1)}))
        cases.append(case(f"gather_axis0_{vocab}x{n}_{len(ids)}", lambda table: table.index_select(0, ids_t),
                          {"table": uniform((vocab, n))}, ["table"], {"ids": np.array(ids), "axis": np.array(0)}))
    for s, t in [((1, 1), (1, 1)), ((2, 6), (3, 4)), ((2, 6), (12, 1)), ((2, 6), (1, 12)), ((4, 1), (2, 2))]:
        cases.append(case(f"reshape_{shape_name(s)}_{shape_name(t)}", lambda x: x.reshape(t), {"x": uniform(s)}, ["x"],
                          {"shape": np.array(t)}))
    return cases


# ---- losses (each a mean, 1x1) -------------------------------------------------------------
def loss_cases():
    cases = []
    for s in SHAPES:
        classes, m = s
        z = uniform(s, -3, 3)
        labels = rng.integers(0, classes, size=m)
        y_soft = rng.uniform(0, 1, size=s)
        y_soft /= y_soft.sum(axis=0, keepdims=True)
        y01 = (uniform(s) > 0).astype(np.float64)
        t = uniform(s)
        tag = shape_name(s)
        big = with_kinks(uniform(s, -40, 40), [0.0, 35.0, -35.0])
        cases.append(case(f"bce_logits_{tag}", lambda z, y: F.binary_cross_entropy_with_logits(z, y),
                          {"z": big, "y": y01}, ["z", "y"]))
        cases.append(case(f"bce_logits_soft_{tag}", lambda z, y: F.binary_cross_entropy_with_logits(z, y),
                          {"z": z, "y": rng.uniform(0, 1, size=s)}, ["z", "y"]))
        logp = torch.log_softmax(torch.tensor(z), dim=0).numpy()
        lab_t = torch.tensor(labels)
        cases.append(case(f"nll_{tag}", lambda logp: F.nll_loss(logp.T, lab_t), {"logp": logp}, ["logp"],
                          {"labels": labels}))
        # huber: differences across the |d| = 1 boundary, and exactly on it
        p = t + with_kinks(uniform(s, -3, 3), [1.0, -1.0, 0.0])
        cases.append(case(f"huber_{tag}", lambda p, t: F.smooth_l1_loss(p, t, beta=1.0), {"p": p, "t": t}, ["p", "t"]))
        cases.append(case(f"mse_{tag}", lambda p, t: F.mse_loss(p, t), {"p": p, "t": t}, ["p", "t"]))
        for eps in (0.0, 0.1):
            cases.append(case(f"sce_labels_ls{eps}_{tag}", lambda z: F.cross_entropy(z.T, lab_t, label_smoothing=eps),
                              {"z": z}, ["z"], {"labels": labels, "smoothing": np.array(eps)}))
            cases.append(case(f"sce_probs_ls{eps}_{tag}", lambda z, y: F.cross_entropy(z.T, y.T, label_smoothing=eps),
                              {"z": z, "y": y_soft}, ["z", "y"], {"smoothing": np.array(eps)}))
    return cases


# ---- normalisation -------------------------------------------------------------------------
def norm_cases():
    cases = []
    for s in [(1, 1), (1, 5), (4, 1), (3, 4), (6, 7)]:
        n, m = s
        x = uniform(s, -3, 3) * 2 + 1
        gain, bias = uniform((n, 1), 0.5, 1.5), uniform((n, 1))
        tag = shape_name(s)
        cases.append(case(f"layer_norm_{tag}", lambda x: F.layer_norm(x.T, (n,), eps=1e-5).T, {"x": x}, ["x"]))
        cases.append(case(f"layer_norm_affine_{tag}",
                          lambda x, gain, bias: F.layer_norm(x.T, (n,), gain.reshape(-1), bias.reshape(-1), 1e-5).T,
                          {"x": x, "gain": gain, "bias": bias}, ["x", "gain", "bias"]))
        if m == 1:
            continue  # PyTorch (and tapegrad) refuse batch statistics of one example
        cases.append(case(f"batch_norm_{tag}", lambda x: F.batch_norm(x.T, None, None, training=True, eps=1e-5).T,
                          {"x": x}, ["x"]))
        cases.append(case(f"batch_norm_affine_{tag}",
                          lambda x, gain, bias: F.batch_norm(x.T, None, None, gain.reshape(-1), bias.reshape(-1),
                                                             training=True, eps=1e-5).T,
                          {"x": x, "gain": gain, "bias": bias}, ["x", "gain", "bias"]))
    return cases


FILES = {
    "scalars.txt": scalar_cases,
    "elementwise.txt": unary_cases,
    "broadcast.txt": broadcast_cases,
    "structure.txt": structure_cases,
    "losses.txt": loss_cases,
    "normalization.txt": norm_cases,
}

if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    for name, make in FILES.items():
        write_cases(os.path.join(HERE, name), make(),
                    header=f"PyTorch {torch.__version__} float64; written by generate.py, do not edit")
        print(name)
