#!/usr/bin/env python3
"""Render `atelier bench ops --json` outputs side by side as a Markdown table for README.md.

usage: tools/bench-table.py RUN.json [RUN.json ...]   (one column per run, named by its device)
"""
import json
import sys


def key(rec):
    dims = [f"{k}={v}" for k, v in rec.items()
            if k not in ("op", "dtype", "wtype", "gflops", "gbps", "us", "ms", "vs_anchor")]
    return (rec["op"], rec.get("dtype", ""), rec.get("wtype", ""), " ".join(dims))


def figure(rec):
    for unit, label in (("gflops", "GFLOP/s"), ("gbps", "GB/s"), ("us", "µs")):
        if unit in rec:
            text = f"{rec[unit]:.1f} {label}" if rec[unit] < 100 else f"{rec[unit]:.0f} {label}"
            if "vs_anchor" in rec:
                text += f" ({rec['vs_anchor']:.2f}×)"
            return text
    return ""


runs = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        recs = json.load(f)
    device = next(r["device"] for r in recs if "device" in r)
    anchors = {r["anchor"]: r for r in recs if "anchor" in r}
    cases = {key(r): r for r in recs if "op" in r}
    runs.append((device, anchors, cases))

order = []
for _, _, cases in runs:
    for k in cases:
        if k not in order:
            order.append(k)

print("| case | " + " | ".join(d for d, _, _ in runs) + " |")
print("| --- | " + " | ".join("---" for _ in runs) + " |")
for k in order:
    op, dtype, wtype, dims = k
    name = f"{op} {dtype}".strip() + (f", {wtype} weights" if wtype else "") + f" ({dims})"
    print(f"| {name} | " + " | ".join(figure(c[k]) if k in c else "" for _, _, c in runs) + " |")
for anchor in ("stream_read", "openblas_sgemm"):
    cells = []
    for _, anchors, _ in runs:
        a = anchors.get(anchor)
        cells.append("" if a is None else
                     f"{a['gbps']:.1f} GB/s ({a['threads']} threads)" if anchor == "stream_read"
                     else f"{a['gflops']:.0f} GFLOP/s")
    label = ("anchor: CPU streaming read" if anchor == "stream_read"
             else "anchor: OpenBLAS sgemm 2048³ (CPU)")
    print(f"| {label} | " + " | ".join(cells) + " |")
