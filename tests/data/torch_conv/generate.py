#!/usr/bin/python3
"""Writes conv.txt and pool.txt: torch.nn.functional.conv2d / max_pool2d / avg_pool2d values
and gradients (float64, python3-torch) that tests/autodiff/convolution_torch_test.cpp compares
tapegrad with, at 1e-12 relative.

Layout as in tapegrad: a batch of m images of shape C x H x W is a (C*H*W) x m matrix, one image
per column, so PyTorch's (m, C, H, W) tensor is written as x.reshape(m, -1).T. The conv weight
is written as PyTorch's weight.reshape(C_out, -1) (C_out x C_in*kh*kw), the bias as C_out x 1.
Each case holds `geometry` = [C, H, W, kh, kw, stride, padding, C_out (conv only)], the inputs,
`seed` (the upstream gradient), `out` and `grad_<input>`.

Run with /usr/bin/python3 (Debian's python3-torch) from anywhere:
    /usr/bin/python3 tests/data/torch_conv/generate.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "torch_ops"))
from fixture_format import write_cases  # noqa: E402

HEADER = f"""written by tests/data/torch_conv/generate.py with torch {torch.__version__}, float64
geometry = C H W kh kw stride padding [C_out]; x is (C*H*W) x m, one image per column"""


def columns(t):
    """(m, C, H, W) tensor -> (C*H*W) x m array: tapegrad's layout."""
    return t.detach().reshape(t.shape[0], -1).T.numpy()


def image_batch(x_cols, C, H, W):
    """(C*H*W) x m array -> (m, C, H, W) leaf tensor."""
    m = x_cols.shape[1]
    return torch.tensor(np.ascontiguousarray(x_cols.T).reshape(m, C, H, W), dtype=torch.float64, requires_grad=True)


def conv_case(rng, C, H, W, kh, kw, stride, padding, C_out, m):
    x_cols = rng.uniform(-2, 2, (C * H * W, m))
    x = image_batch(x_cols, C, H, W)
    weight = torch.tensor(rng.uniform(-1, 1, (C_out, C, kh, kw)), requires_grad=True)
    bias = torch.tensor(rng.uniform(-1, 1, C_out), requires_grad=True)
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    seed = torch.tensor(rng.uniform(-1, 1, tuple(y.shape)))
    y.backward(seed)
    return {
        "geometry": [C, H, W, kh, kw, stride, padding, C_out],
        "x": x_cols,
        "W": weight.detach().reshape(C_out, -1).numpy(),
        "b": bias.detach().reshape(C_out, 1).numpy(),
        "seed": columns(seed),
        "out": columns(y),
        "grad_x": columns(x.grad),
        "grad_W": weight.grad.reshape(C_out, -1).numpy(),
        "grad_b": bias.grad.reshape(C_out, 1).numpy(),
    }


def pool_case(rng, pool, C, H, W, k, stride, padding, m, values="uniform"):
    if values == "ties":  # few distinct values: the first maximum of a window must win
        x_cols = rng.integers(0, 3, (C * H * W, m)).astype(np.float64)
    else:
        x_cols = rng.uniform(-2, 2, (C * H * W, m))
        if values == "nan":
            x_cols[1, 0] = np.nan
    x = image_batch(x_cols, C, H, W)
    if pool == "max":
        y = F.max_pool2d(x, (k[0], k[1]), stride=stride, padding=padding)
    else:
        y = F.avg_pool2d(x, (k[0], k[1]), stride=stride, padding=padding)  # count_include_pad=True
    seed = torch.tensor(rng.uniform(-1, 1, tuple(y.shape)))
    y.backward(seed)
    return {
        "geometry": [C, H, W, k[0], k[1], stride, padding],
        "x": x_cols,
        "seed": columns(seed),
        "out": columns(y),
        "grad_x": columns(x.grad),
    }


def main():
    rng = np.random.default_rng(2026)
    conv = [  # name: C, H, W, kh, kw, stride, padding, C_out, m
        ("conv_1x1_image", (2, 1, 1, 1, 1, 1, 0, 3, 1)),
        ("conv_1x1_image_padded", (1, 1, 1, 3, 3, 1, 1, 2, 4)),
        ("conv_3x3_same", (3, 7, 6, 3, 3, 1, 1, 4, 5)),
        ("conv_stride2_rect_kernel", (2, 9, 8, 3, 2, 2, 0, 3, 3)),
        ("conv_stride3_pad2", (1, 11, 7, 5, 5, 3, 2, 2, 2)),
        ("conv_kernel_is_image", (2, 4, 5, 4, 5, 1, 0, 3, 3)),
        ("conv_fashion_first_layer", (1, 28, 28, 3, 3, 1, 1, 4, 2)),
        ("conv_many_channels", (16, 6, 6, 3, 3, 1, 0, 5, 1)),
    ]
    write_cases(os.path.join(HERE, "conv.txt"), [(n, conv_case(rng, *g)) for n, g in conv], HEADER)
    pools = [  # name: pool, C, H, W, (kh, kw), stride, padding, m, values
        ("max_2x2", ("max", 3, 8, 6, (2, 2), 2, 0, 4, "uniform")),
        ("max_3x3_stride2_pad1", ("max", 2, 7, 9, (3, 3), 2, 1, 3, "uniform")),
        ("max_overlapping_rect", ("max", 1, 6, 5, (2, 3), 1, 1, 2, "uniform")),
        ("max_1x1_image", ("max", 2, 1, 1, (1, 1), 1, 0, 3, "uniform")),
        ("max_ties", ("max", 2, 6, 6, (3, 3), 1, 1, 5, "ties")),
        ("max_nan", ("max", 1, 4, 4, (2, 2), 2, 0, 2, "nan")),
        ("avg_2x2", ("avg", 3, 8, 6, (2, 2), 2, 0, 4, "uniform")),
        ("avg_3x3_stride2_pad1", ("avg", 2, 7, 9, (3, 3), 2, 1, 3, "uniform")),
        ("avg_overlapping_rect", ("avg", 1, 6, 5, (2, 3), 1, 1, 2, "uniform")),
        ("avg_1x1_image", ("avg", 2, 1, 1, (1, 1), 1, 0, 1, "uniform")),
    ]
    write_cases(os.path.join(HERE, "pool.txt"), [(n, pool_case(rng, *g)) for n, g in pools], HEADER)


if __name__ == "__main__":
    main()
