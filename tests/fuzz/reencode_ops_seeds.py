#!/usr/bin/env python3
"""Re-encode the `ops` fuzz seeds after ops were appended to fuzz_ops.cpp's list.

fuzz_ops reads an op as (byte mod op_count): appending ops changes what every op byte
means, so a seed (a regression input above all) would decode to another program. This
walks each seed with the grammar of fuzz_ops.cpp's parse() as libFuzzer's
FuzzedDataProvider reads it (integers from the end of the input, one byte per value of a
range below 256) and rewrites each op byte to the op's index, which means the same op
under any count above it.

    tests/fuzz/reencode_ops_seeds.py --old-count 38 tests/fuzz/corpus/ops/*

Keep the grammar below in step with parse(): the ops that read more bytes are named by
their index.
"""
import argparse
import sys

SCE_MATRIX, SCE_LABELS = 16, 17   # op_sce_matrix, op_sce_labels
FIRST_WITH_KNOBS = 38             # op_pow: every op from here on reads six knob bytes
GATHER, NLL = 43, 45              # op_gather, op_nll: a list of ids, as op_sce_labels


class Reader:
    """FuzzedDataProvider's integer reads: bytes taken from the end of the input."""

    def __init__(self, data):
        self.data = data
        self.end = len(data)

    def byte(self, lo, hi):
        """ConsumeIntegralInRange(lo, hi) for hi - lo < 256: (position read, value)."""
        if self.end == 0:
            return None, lo
        self.end -= 1
        b = self.data[self.end]
        span = hi - lo
        return self.end, lo + (b if span == 255 else b % (span + 1))


def op_positions(data, op_count):
    r = Reader(data)
    r.byte(0, 255)  # flags
    _, leaves = r.byte(1, 4)
    for _ in range(leaves):
        _, rows = r.byte(1, 4)
        _, cols = r.byte(1, 4)
        for _ in range(rows * cols):
            r.byte(0, 255)
    _, steps = r.byte(1, 12)
    positions = []
    for _ in range(steps):
        if r.end == 0:
            break
        pos, op = r.byte(0, op_count - 1)
        positions.append((pos, op))
        for _ in range(5):  # a, b, c, axis, factor
            r.byte(0, 255)
        if op == SCE_MATRIX:
            _, rows = r.byte(1, 4)
            _, cols = r.byte(1, 4)
            for _ in range(rows * cols):
                r.byte(0, 255)
        if op >= FIRST_WITH_KNOBS:
            for _ in range(6):
                r.byte(0, 255)
        if op in (SCE_LABELS, GATHER, NLL):
            _, n = r.byte(0, 5)
            for _ in range(n):
                r.byte(0, 4)
    return positions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-count", type=int, required=True, help="op_count the seeds were written for")
    parser.add_argument("seeds", nargs="+")
    args = parser.parse_args()
    for path in args.seeds:
        data = bytearray(open(path, "rb").read())
        ops = op_positions(bytes(data), args.old_count)
        for pos, op in ops:
            if pos is not None:
                data[pos] = op
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: ops {[op for _, op in ops]}", file=sys.stderr)


if __name__ == "__main__":
    main()
