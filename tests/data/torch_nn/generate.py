"""PyTorch (float64) fixtures for nn's layers and optimizers: run with /usr/bin/python3 generate.py.

layers.txt: per case the layer's parameters, its input x (features x examples; images are
columns in C x H x W order), the upstream gradient `seed`, and PyTorch's `out`,
`grad_x` and `grad_<parameter>`; batch norm also the running statistics after the step.
optimizers.txt: a parameter, three gradients g0..g2 and PyTorch's parameter after each step.
recurrent.txt: LSTMCell steps and LSTMs over short sequences (see recurrent_cases).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ops"))
from fixture_format import write_cases  # noqa: E402

torch.manual_seed(12)
HERE = os.path.dirname(os.path.abspath(__file__))


def columns(t):
    """(batch, ...) -> features x batch, features in C x H x W order."""
    return t.reshape(t.shape[0], -1).T.detach()


def run_layer(name, layer, x, extra=None):
    """x: (batch, ...) tensor. Returns a fixture case with out, grads and parameters."""
    x = x.clone().requires_grad_(True)
    out = layer(x)
    seed = torch.randn_like(out)
    out.backward(seed)
    arrays = {"x": columns(x), "seed": columns(seed), "out": columns(out), "grad_x": columns(x.grad)}
    for pname, p in layer.named_parameters():
        # clone(): a later case's backward or zero_grad() writes into these tensors in place
        arrays[pname] = p.detach().clone().reshape(p.shape[0], -1) if p.dim() > 1 else p.detach().clone().reshape(-1, 1)
        arrays["grad_" + pname] = p.grad.clone().reshape(p.shape[0], -1) if p.dim() > 1 else p.grad.clone().reshape(-1, 1)
    for bname, b in layer.named_buffers():
        if b.dim() > 0:
            arrays[bname] = b.detach().clone().reshape(-1, 1)
    arrays.update(extra or {})
    return (name, arrays)


def layer_cases():
    d = torch.float64
    cases = []
    for n_in, n_out, m in [(1, 1, 1), (4, 3, 5), (1, 6, 3), (5, 1, 2)]:
        lin = torch.nn.Linear(n_in, n_out, dtype=d)
        cases.append(run_layer(f"linear_{n_in}_{n_out}_{m}", lin, torch.randn(m, n_in, dtype=d)))
    for n, m in [(3, 5), (1, 4), (6, 2)]:
        bn = torch.nn.BatchNorm1d(n, dtype=d)
        with torch.no_grad():
            bn.weight.copy_(torch.randn(n, dtype=d))
            bn.bias.copy_(torch.randn(n, dtype=d))
            bn.running_mean.copy_(torch.randn(n, dtype=d))
            bn.running_var.copy_(torch.rand(n, dtype=d) + 0.5)
        before = {"running_mean_before": bn.running_mean.clone().reshape(-1, 1),
                  "running_var_before": bn.running_var.clone().reshape(-1, 1)}
        bn.train()
        cases.append(run_layer(f"batchnorm_train_{n}_{m}", bn, torch.randn(m, n, dtype=d) * 2 + 1, before))
        bn.eval()
        bn.zero_grad()
        after = {"running_mean_before": bn.running_mean.clone().reshape(-1, 1),
                 "running_var_before": bn.running_var.clone().reshape(-1, 1)}
        cases.append(run_layer(f"batchnorm_eval_{n}_{m}", bn, torch.randn(m, n, dtype=d), after))
    for n, m in [(4, 3), (1, 2), (7, 1)]:
        ln = torch.nn.LayerNorm(n, dtype=d)
        with torch.no_grad():
            ln.weight.copy_(torch.randn(n, dtype=d))
            ln.bias.copy_(torch.randn(n, dtype=d))
        cases.append(run_layer(f"layernorm_{n}_{m}", ln, torch.randn(m, n, dtype=d)))
    for vocab, dim, m in [(5, 3, 4), (1, 2, 3)]:
        emb = torch.nn.Embedding(vocab, dim, dtype=d)
        ids = torch.randint(0, vocab, (m,))
        weight = emb.weight  # vocab x dim in PyTorch; tapegrad's table is dim x vocab
        out = emb(ids)
        seed = torch.randn_like(out)
        out.backward(seed)
        cases.append((f"embedding_{vocab}_{dim}_{m}", {"ids": ids.double().reshape(1, -1), "table": weight.detach().T,
                                                       "seed": seed.T, "out": out.detach().T,
                                                       "grad_table": weight.grad.T}))
    for c_in, c_out, hw, k, pad, m in [(1, 2, 5, 3, 1, 2), (2, 3, 4, 3, 0, 3), (1, 1, 3, 1, 0, 1), (3, 2, 6, 5, 2, 2)]:
        conv = torch.nn.Conv2d(c_in, c_out, k, padding=pad, dtype=d)
        cases.append(run_layer(f"conv2d_{c_in}_{c_out}_{hw}_{k}_{pad}_{m}", conv,
                               torch.randn(m, c_in, hw, hw, dtype=d)))
    for c, hw, k, m in [(1, 4, 2, 2), (2, 6, 3, 3), (3, 5, 2, 1)]:
        x = torch.randn(m, c, hw, hw, dtype=d)
        cases.append(run_layer(f"maxpool_{c}_{hw}_{k}_{m}", torch.nn.MaxPool2d(k), x))
        cases.append(run_layer(f"avgpool_{c}_{hw}_{k}_{m}", torch.nn.AvgPool2d(k), x))
    return cases


def optimizer_cases():
    d = torch.float64
    w0 = torch.randn(3, 2, dtype=d)
    grads = [torch.randn(3, 2, dtype=d) for _ in range(3)]
    configs = [
        ("sgd_wd", lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
        ("momentum_wd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05)),
        ("adam_wd", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.05)),
        ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05)),
        ("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
    ]
    cases = []
    for name, make in configs:
        p = torch.nn.Parameter(w0.clone())
        opt = make([p])
        arrays = {"w0": w0}
        for t, g in enumerate(grads):
            arrays[f"g{t}"] = g
            p.grad = g.clone()
            opt.step()
            arrays[f"w{t + 1}"] = p.detach().clone()
        cases.append((name, arrays))
    # clip_grad_norm_ over two parameters
    a = torch.nn.Parameter(torch.zeros(2, 2, dtype=d))
    b = torch.nn.Parameter(torch.zeros(3, 1, dtype=d))
    a.grad = torch.randn(2, 2, dtype=d) * 3
    b.grad = torch.randn(3, 1, dtype=d) * 3
    ga, gb = a.grad.clone(), b.grad.clone()
    norm = torch.nn.utils.clip_grad_norm_([a, b], 1.5)
    cases.append(("clip_grad_norm", {"ga": ga, "gb": gb, "max_norm": torch.tensor(1.5, dtype=d), "norm": norm.detach(),
                                     "clipped_a": a.grad, "clipped_b": b.grad}))
    return cases


def recurrent_cases():
    """lstmcell_<n_in>_<hidden>_<m>: one step from a random state (h0, c0), with seeds for h and
    c. lstm_<n_in>_<hidden>_<layers>_<m>_<steps>: a sequence x0, x1, ... from random states
    h0_<l>, c0_<l>; `seed<t>` is the upstream gradient of the top layer's h at step t, and
    h_<l>, c_<l> the state after the last step. Parameters as PyTorch names them, per layer
    for the LSTM (weight_ih_l0, ...)."""
    torch.manual_seed(13)  # of its own: the other files stay as they were
    d = torch.float64
    cases = []
    for n_in, hidden, m in [(1, 1, 1), (3, 2, 4), (1, 5, 2), (4, 1, 3)]:
        cell = torch.nn.LSTMCell(n_in, hidden, dtype=d)
        x = torch.randn(m, n_in, dtype=d, requires_grad=True)
        h0 = torch.randn(m, hidden, dtype=d, requires_grad=True)
        c0 = torch.randn(m, hidden, dtype=d, requires_grad=True)
        h, c = cell(x, (h0, c0))
        seed_h, seed_c = torch.randn_like(h), torch.randn_like(c)
        ((h * seed_h).sum() + (c * seed_c).sum()).backward()
        arrays = {"x": columns(x), "h0": columns(h0), "c0": columns(c0), "seed_h": columns(seed_h),
                  "seed_c": columns(seed_c), "h": columns(h), "c": columns(c), "grad_x": columns(x.grad),
                  "grad_h0": columns(h0.grad), "grad_c0": columns(c0.grad)}
        for pname, p in cell.named_parameters():
            arrays[pname] = p.detach().clone().reshape(p.shape[0], -1)
            arrays["grad_" + pname] = p.grad.clone().reshape(p.shape[0], -1)
        cases.append((f"lstmcell_{n_in}_{hidden}_{m}", arrays))
    for n_in, hidden, layers, m, steps in [(2, 3, 2, 2, 4), (1, 2, 1, 1, 3), (3, 2, 3, 3, 2)]:
        lstm = torch.nn.LSTM(n_in, hidden, layers, dtype=d)
        x = torch.randn(steps, m, n_in, dtype=d, requires_grad=True)
        h0 = torch.randn(layers, m, hidden, dtype=d, requires_grad=True)
        c0 = torch.randn(layers, m, hidden, dtype=d, requires_grad=True)
        out, (h, c) = lstm(x, (h0, c0))
        seed = torch.randn_like(out)
        (out * seed).sum().backward()
        arrays = {}
        for t in range(steps):
            arrays[f"x{t}"] = columns(x[t])
            arrays[f"seed{t}"] = columns(seed[t])
            arrays[f"out{t}"] = columns(out[t])
            arrays[f"grad_x{t}"] = columns(x.grad[t])
        for l in range(layers):
            arrays[f"h0_{l}"], arrays[f"c0_{l}"] = columns(h0[l]), columns(c0[l])
            arrays[f"h_{l}"], arrays[f"c_{l}"] = columns(h[l]), columns(c[l])
            arrays[f"grad_h0_{l}"], arrays[f"grad_c0_{l}"] = columns(h0.grad[l]), columns(c0.grad[l])
        for pname, p in lstm.named_parameters():
            arrays[pname] = p.detach().clone().reshape(p.shape[0], -1)
            arrays["grad_" + pname] = p.grad.clone().reshape(p.shape[0], -1)
        cases.append((f"lstm_{n_in}_{hidden}_{layers}_{m}_{steps}", arrays))
    return cases


header = "generated by tests/data/torch_nn/generate.py, torch " + torch.__version__
write_cases(os.path.join(HERE, "layers.txt"), layer_cases(), header)
write_cases(os.path.join(HERE, "optimizers.txt"), optimizer_cases(), header)
write_cases(os.path.join(HERE, "recurrent.txt"), recurrent_cases(), header)
