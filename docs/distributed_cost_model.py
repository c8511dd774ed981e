#!/usr/bin/env python3
"""The alpha-beta cost model of ring allreduce for tapegrad's models (docs/distributed.md).

    python3 docs/distributed_cost_model.py [--compute-ms MS] [--first-layer-share S]

Ring allreduce of n bytes over p nodes: a reduce-scatter then an allgather, 2(p-1) steps
each sending n/p bytes to the next node:   T(p) = 2(p-1) alpha + 2 (p-1)/p n beta
(the additions, (p-1)/p n / memory bandwidth, are left out: under 10% of the beta term at
10 Gbit/s). With k buckets the latency term is paid k times. The model is tapegrad's MLP
and the style guide's CNN sketch, float32 gradients.
"""
import argparse

LINKS = {  # name: (alpha seconds per message, beta seconds per byte)
    "10 Gbit/s Ethernet, TCP (alpha 25 us)": (25e-6, 8 / 10e9),
    "100 Gbit/s RDMA (alpha 2 us)": (2e-6, 8 / 100e9),
}


def mlp_parameters(sizes):
    return sum(o * i + o for i, o in zip(sizes, sizes[1:]))


def ring_seconds(n_bytes, p, alpha, beta, buckets=1):
    if p == 1:
        return 0.0
    return buckets * 2 * (p - 1) * alpha + 2 * (p - 1) / p * n_bytes * beta


def efficiency(compute, exposed):
    """Weak scaling: each node keeps its batch; the step grows by the exposed communication."""
    return compute / (compute + exposed)


def strong_efficiency(compute, p, exposed):
    """Strong scaling: the global batch stays 128, each node computes 128/p examples (compute
    taken as proportional to the batch, which flatters small batches), communication unchanged."""
    return compute / (p * (compute / p + exposed))


def first_below(threshold, fn, limit=4096):
    return next((p for p in range(2, limit + 1) if fn(p) < threshold), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compute-ms", type=float, default=2.3,
                    help="one step's forward+backward+update on one node, batch 128 (measured: bench/distributed)")
    ap.add_argument("--first-layer-share", type=float, default=None,
                    help="fraction of the bytes that can never overlap (default: the first layer's)")
    args = ap.parse_args()
    compute = args.compute_ms * 1e-3
    sizes = [784, 256, 128, 10]
    n = 4 * mlp_parameters(sizes)
    first = 4 * (sizes[0] * sizes[1] + sizes[1])
    share = args.first_layer_share if args.first_layer_share is not None else first / n
    print(f"MLP 784-256-128-10: {n / 4:.0f} parameters, {n / 1e6:.3f} MB of float32 gradients; "
          f"first layer {share:.0%} of it (it finishes last, so never overlaps)")
    print(f"compute per step (batch 128 per node): {args.compute_ms} ms\n")
    print("| link | p | allreduce, 1 bucket | weak scaling, no overlap | weak, ideal overlap "
          "| strong scaling (global batch 128), no overlap |")
    print("|---|---|---|---|---|---|")
    for name, (alpha, beta) in LINKS.items():
        for p in (2, 8, 64):
            t = ring_seconds(n, p, alpha, beta)
            # Ideal overlap: everything but the first layer hides behind the first layer's backward.
            hidden_floor = ring_seconds(share * n, p, alpha, beta)
            print(f"| {name} | {p} | {t * 1e3:.3f} ms | {efficiency(compute, t):.0%} | "
                  f"{efficiency(compute, hidden_floor):.0%} | {strong_efficiency(compute, p, t):.0%} |")
    print()
    for name, (alpha, beta) in LINKS.items():
        no = first_below(0.9, lambda p: efficiency(compute, ring_seconds(n, p, alpha, beta)))
        ideal = first_below(0.9, lambda p: efficiency(compute, ring_seconds(share * n, p, alpha, beta)))
        strong = first_below(0.9, lambda p: strong_efficiency(compute, p, ring_seconds(n, p, alpha, beta)))
        print(f"{name}: weak-scaling efficiency below 90% from p = {no} (no overlap), p = {ideal} (ideal "
              f"overlap); strong scaling from p = {strong}")
    print()
    # The bandwidth term tends to 2 n beta as p grows: what no number of nodes changes.
    for name, (alpha, beta) in LINKS.items():
        print(f"{name}: bandwidth floor 2 n beta = {2 * n * beta * 1e3:.3f} ms; "
              f"latency per bucket at p = 64: {2 * 63 * alpha * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
