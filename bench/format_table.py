#!/usr/bin/python3
"""bench/format_table.py: one markdown table from Google Benchmark JSON files and
numpy_step.py's JSON lines.

  format_table.py [--variants] [--min] FILE...   (.json: Google Benchmark; .jsonl: numpy_step.py)

--min tabulates the fastest repetition instead of the median (the least disturbed one on
a shared machine); `max cv` is the largest coefficient of variation in the row.

Rows: workload x dtype x threads. Columns: median wall time per step of each
implementation (µs), then each one's ratio to the hand-written step (`/hw`), and the
hand-written step's and the engine's ratio to the matmul floor (`/floor`).
Benchmark names are impl/workload/dtype/t<threads> (bench/harness.hpp).

The convolution workload (CNN, bench/cnn_harness.hpp) has no hand-written step: its rows go
to a table of their own, with every implementation's ratio to its GEMM floor and tapegrad's
time over each peer's (below 1: tapegrad is faster).
"""
import json
import sys

STAT = "median"  # or "min" with --min: the fastest repetition
ORDER = ["handwritten", "floor", "tapegrad", "libtorch", "libtorch_passive", "numpy", "pytorch"]
WORKLOAD_ORDER = {"S": 0, "M": 1, "L": 2, "CNN": 3}
DTYPE_ORDER = {"f64": 0, "f32": 1}


def read(paths):
    """{(workload, dtype, threads): {impl: (median_us, cv)}}"""
    rows = {}
    for path in paths:
        if path.endswith(".jsonl"):
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    r = json.loads(line)
                    key = (r["workload"], r["dtype"], int(r["threads"]))
                    rows.setdefault(key, {})[r["impl"]] = (r[STAT + "_us"], None)
            continue
        with open(path) as f:
            data = json.load(f)
        stats = {}
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "aggregate":
                continue
            parts = b["run_name"].split("/")
            if len(parts) < 4:
                continue
            impl, workload, dtype, t = parts[:4]
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
            stats.setdefault((impl, workload, dtype, int(t.lstrip("t"))), {})[b["aggregate_name"]] = \
                b["real_time"] * scale
        for (impl, workload, dtype, t), s in stats.items():
            if STAT in s:
                cv = s.get("stddev", 0.0) / s["mean"] if s.get("mean") else None
                rows.setdefault((workload, dtype, t), {})[impl] = (s[STAT], cv)
    return rows


def fmt_time(us):
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us:.3g} µs"


def table(rows, impls, ratio_to_floor):
    head = ["workload", "dtype", "threads"] + impls
    head += [f"{i}/hw" for i in impls if i != "handwritten"]
    if "floor" in impls:
        head += [f"{i}/floor" for i in ratio_to_floor if i in impls]
    head.append("max cv")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    key = lambda k: (WORKLOAD_ORDER.get(k[0], 9), k[0], DTYPE_ORDER.get(k[1], 9), k[2])
    for k in sorted(rows, key=key):
        r = rows[k]
        cells = [k[0], k[1], str(k[2])]
        cells += [fmt_time(r[i][0]) if i in r else "–" for i in impls]
        hw = r.get("handwritten", (None,))[0]
        for i in impls:
            if i == "handwritten":
                continue
            cells.append(f"{r[i][0] / hw:.2f}" if i in r and hw else "–")
        if "floor" in impls:
            fl = r.get("floor", (None,))[0]
            for i in ratio_to_floor:
                if i in impls:
                    cells.append(f"{r[i][0] / fl:.2f}" if i in r and fl else "–")
        cvs = [r[i][1] for i in impls if i in r and r[i][1] is not None]
        cells.append(f"{100 * max(cvs):.0f}%" if cvs else "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def cnn_table(rows):
    impls = [i for i in ["floor", "tapegrad", "libtorch", "libtorch_passive", "pytorch"] if any(i in r for r in rows.values())]
    peers = [i for i in impls if i not in ("floor", "tapegrad")]
    head = ["workload", "dtype", "threads"] + impls + [f"{i}/floor" for i in impls if i != "floor"]
    head += [f"tapegrad/{p}" for p in peers] + ["max cv"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in sorted(rows, key=lambda k: k[2]):
        r = rows[k]
        ratio = lambda a, b: f"{r[a][0] / r[b][0]:.2f}" if a in r and b in r else "–"  # noqa: E731
        cells = [k[0], k[1], str(k[2])] + [fmt_time(r[i][0]) if i in r else "–" for i in impls]
        cells += [ratio(i, "floor") for i in impls if i != "floor"] + [ratio("tapegrad", p) for p in peers]
        cvs = [r[i][1] for i in impls if i in r and r[i][1] is not None]
        cells.append(f"{100 * max(cvs):.0f}%" if cvs else "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    args = sys.argv[1:]
    variants = "--variants" in args
    global STAT
    if "--min" in args:
        STAT = "min"
    paths = [a for a in args if not a.startswith("--")]
    if not paths:
        sys.exit(__doc__)
    rows = read(paths)
    cnn_rows = {k: v for k, v in rows.items() if k[0] == "CNN"}
    rows = {k: v for k, v in rows.items() if k[0] != "CNN"}
    if cnn_rows:
        print(cnn_table(cnn_rows))
        if rows:
            print()
    if not rows:
        return
    present = {i for r in rows.values() for i in r}
    main_impls = [i for i in ORDER if i in present]
    main_impls += sorted(i for i in present if i not in ORDER and not i.startswith("variant_"))
    print(table(rows, main_impls, ["handwritten", "tapegrad"]))
    var = sorted(i for i in present if i.startswith("variant_"))
    if variants and var:
        print()
        vrows = {k: v for k, v in rows.items() if any(i in v for i in var)}
        print(table(vrows, ["handwritten", "floor"] + var, ["handwritten"] + var))


if __name__ == "__main__":
    main()
