#!/usr/bin/env python3
"""Compares lockstep commbench tables with nccl-tests tables (same layout) from one run of
commbench_vs_nccl_tests.sh: busbw ratio per size (64 MB - 4 GB) and the median time per call
over repeated runs (1 KB - 1 MB).
usage: compare_tables.py OUT_DIR"""
import re
import sys
from pathlib import Path

LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\w+)\s+(\w+)\s+(-?\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")


def table(path):
    rows = {}
    for line in Path(path).read_text().splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            g = m.groups()
            rows[int(g[0])] = {"time": float(g[5]), "busbw": float(g[7]), "wrong": g[8],
                               "time_ip": float(g[9]), "busbw_ip": float(g[11]), "wrong_ip": g[12]}
    return rows


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main(out):
    out = Path(out)
    for op in ("all_reduce", "all_gather", "sendrecv"):
        nt, ls = table(out / f"nccl_tests_{op}_big.txt"), table(out / f"commbench_{op}_big.txt")
        sizes = sorted(set(nt) & set(ls))
        print(f"\n## {op}: bus bandwidth, out-of-place (in-place)")
        print(f"{'size(B)':>12} {'nccl-tests':>18} {'commbench':>18} {'ratio':>6} {'wrong':>6}")
        ratios = []
        for s in sizes:
            a, b = nt[s], ls[s]
            r = b["busbw"] / a["busbw"]
            ratios.append(r)
            print(f"{s:>12} {a['busbw']:>8.2f} ({a['busbw_ip']:>7.2f}) {b['busbw']:>8.2f} ({b['busbw_ip']:>7.2f})"
                  f" {r:>6.3f} {b['wrong']:>3}/{b['wrong_ip']}")
        if ratios:
            print(f"busbw ratio 64MB-4GB: min {min(ratios):.3f} mean {sum(ratios)/len(ratios):.3f}")
        reps = sorted(out.glob(f"nccl_tests_{op}_small_*.txt"))
        nts = [table(p) for p in reps]
        lss = [table(out / p.name.replace("nccl_tests", "commbench")) for p in reps]
        sizes = sorted(set.intersection(*(set(t) for t in nts + lss))) if reps else []
        print(f"\n## {op}: time per call (us), out-of-place, median of {len(reps)} runs")
        print(f"{'size(B)':>12} {'nccl-tests':>11} {'commbench':>10} {'ratio':>6}")
        tr = []
        for s in sizes:
            a = median([t[s]["time"] for t in nts])
            b = median([t[s]["time"] for t in lss])
            tr.append(b / a)
            print(f"{s:>12} {a:>11.2f} {b:>10.2f} {b / a:>6.3f}")
        if tr:
            print(f"time ratio 1KB-1MB (commbench/nccl-tests, lower is better): max {max(tr):.3f} "
                  f"mean {sum(tr)/len(tr):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
