#!/usr/bin/env python3
"""Compares lockstep commbench tables with nccl-tests tables (same layout) from one run of
commbench_vs_nccl_tests.sh: busbw ratio per size (64 MB - 4 GB) and time ratio (1 KB - 1 MB).
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


def main(out):
    out = Path(out)
    for op in ("all_reduce", "all_gather", "sendrecv"):
        nt, ls = table(out / f"nccl_tests_{op}.txt"), table(out / f"commbench_{op}.txt")
        sizes = sorted(set(nt) & set(ls))
        print(f"\n## {op}: {len(sizes)} common sizes")
        print(f"{'size(B)':>12} {'nccl-tests busbw':>17} {'commbench busbw':>16} {'ratio':>6}"
              f" {'nccl-tests us':>14} {'commbench us':>13} {'time ratio':>10} {'wrong':>6}")
        big, small = [], []
        for s in sizes:
            a, b = nt[s], ls[s]
            r = b["busbw"] / a["busbw"] if a["busbw"] > 0 else float("nan")
            tr = b["time"] / a["time"] if a["time"] > 0 else float("nan")
            print(f"{s:>12} {a['busbw']:>17.2f} {b['busbw']:>16.2f} {r:>6.3f} {a['time']:>14.2f} {b['time']:>13.2f}"
                  f" {tr:>10.3f} {b['wrong']:>3}/{b['wrong_ip']}")
            if 64 << 20 <= s <= 4 << 30:
                big.append(r)
            if 1 << 10 <= s <= 1 << 20:
                small.append(tr)
        if big:
            print(f"busbw ratio 64MB-4GB: min {min(big):.3f} mean {sum(big)/len(big):.3f}")
        if small:
            print(f"time ratio 1KB-1MB (commbench/nccl-tests, lower is better): max {max(small):.3f} "
                  f"mean {sum(small)/len(small):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
