#!/usr/bin/python3
"""bench/pytorch_fashion.py: PyTorch (Debian's python3-torch) training the bench's L network,
784 -> 256 -> 128 -> 10 with ReLU, float32, batch 128, on Fashion-MNIST.

Reports seconds per epoch (training only; data already in memory as tensors) and test
accuracy after --epochs epochs, for each thread count in --threads (torch.set_num_threads
and OpenBLAS's thread count both set to it). Optimizer: Adam lr 1e-3 (default) or
--optimizer sgd: SGD momentum 0.9, lr 0.05. The last line of each run is JSON.

Data: /usr/share/datasets/fashion-mnist/*.gz (gzip IDX files, parsed with numpy).
"""
import argparse
import ctypes
import gzip
import json
import os
import time

import numpy as np
import torch

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """A gzip IDX file as a numpy array (magic: 0, 0, dtype code 0x08 = ubyte, ndim)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def set_blas_threads(n):
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
        return True
    except (OSError, AttributeError):
        return False


def run(threads, args, train, test):
    torch.set_num_threads(threads)
    blas = set_blas_threads(threads)
    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    if args.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = train
    n = len(x)
    epoch_s = []
    for epoch in range(args.epochs):
        g = torch.Generator().manual_seed(args.seed + epoch)
        perm = torch.randperm(n, generator=g)
        model.train()
        t0 = time.perf_counter()
        total = 0.0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        epoch_s.append(time.perf_counter() - t0)
        print(f"threads={threads} epoch {epoch + 1}: {epoch_s[-1]:.3f} s, train loss {total / n:.4f}", flush=True)
    model.eval()
    with torch.no_grad():
        acc = (model(test[0]).argmax(1) == test[1]).float().mean().item()
    result = {"impl": "pytorch", "dataset": "fashion-mnist", "optimizer": args.optimizer,
              "threads": threads, "torch_threads": torch.get_num_threads(), "blas_threads_set": blas,
              "batch": args.batch, "epochs": args.epochs, "epoch_s": epoch_s,
              "median_epoch_s": float(np.median(epoch_s)), "test_accuracy": acc,
              "torch": torch.__version__}
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", default="1", help="thread count, or a comma-separated list run in turn")
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    train, test = load("train"), load("test")
    for threads in [int(t) for t in args.threads.split(",")]:
        run(threads, args, train, test)


if __name__ == "__main__":
    main()
