#!/usr/bin/env python3
"""Compares two runs' metrics.csv cell by cell, ignoring the timing columns (SPS and
every perf/* column): how a refactor shows that training is unchanged.

    python3 scripts/dev/compare_metrics.py runs/before/metrics.csv runs/after/metrics.csv
Exit 0 when every non-timing cell is equal, 1 otherwise (the first differences are printed).
"""
import csv
import sys

# SPS and every perf/* column measure time.
TIMING = {"charts/SPS"}


def main(a_path, b_path):
    a = list(csv.DictReader(open(a_path)))
    b = list(csv.DictReader(open(b_path)))
    learning = lambda rows: [c for c in rows[0] if c not in TIMING and not c.startswith("perf/")] if rows else []
    cols = learning(a)
    if not a or not b or cols != learning(b) or len(a) != len(b):
        print(f"different shapes: {len(a)} vs {len(b)} rows, non-timing columns {cols} vs {learning(b)}")
        return 1
    diff = 0
    for i, (x, y) in enumerate(zip(a, b)):
        for c in cols:
            if x[c] != y[c]:
                diff += 1
                if diff <= 5:
                    print(f"row {i} {c}: {x[c]} vs {y[c]}")
    print(f"{len(a)} rows x {len(cols)} non-timing columns; differing cells: {diff}")
    return 1 if diff else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
