#!/usr/bin/python3
"""Pictures of microrec-load results (needs Debian's python3-matplotlib).

  bench/plot_load.py --sweep bench/results/load-sweep.jsonl \
      --hgrm "batch 1=bench/results/load-b1-peak.hgrm" ... \
      --slo-us 1=1000 --slo-us 64=5000 --out-dir bench/results

--sweep: a JSON lines file, one `microrec-load --json` summary per line
(keys offered_rate, batch, p50_us .. max_us, achieved_rate); draws the
latency percentiles against the offered load, one panel per batch size
-> load-percentiles.png.
--hgrm: HdrHistogram .hgrm files (LABEL=FILE, or FILE); draws the latency
distribution against the percentile on HdrHistogram's log axis, as its own
plotter does -> load-distribution.png.
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: E402

PERCENTILES = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"),
               ("p999_us", "p99.9"), ("max_us", "max")]


def read_sweep(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                sys.exit("plot_load: %s:%d: not JSON: %s" % (path, n, e))
            if r.get("mode") != "open" or "offered_rate" not in r:
                continue  # closed-loop runs have no offered load to plot
            rows.append(r)
    return rows


def read_hgrm(path):
    """(latency us, 1/(1-percentile)) pairs of an .hgrm file; the 100% row
    (1/(1-p) infinite) is kept at twice the last finite x."""
    xs, ys, last = [], [], None
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or line.startswith("#") or parts[0] == "Value":
                continue
            if len(parts) == 4:
                ys.append(float(parts[0]))
                xs.append(float(parts[3]))
            elif len(parts) == 3:
                last = float(parts[0])
    if last is not None and xs:
        xs.append(xs[-1] * 2)
        ys.append(last)
    return xs, ys


def plot_sweep(rows, slo, out):
    batches = sorted({r.get("batch", 1) for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(6.4 * len(batches), 4.8),
                             squeeze=False)
    for ax, b in zip(axes[0], batches):
        rs = sorted((r for r in rows if r.get("batch", 1) == b),
                    key=lambda r: r["offered_rate"])
        x = [r["offered_rate"] for r in rs]
        for key, name in PERCENTILES:
            ax.plot(x, [max(r[key], 1e-3) for r in rs], marker="o",
                    markersize=3, label=name)
        bad = [r for r in rs if not r.get("schedule_kept", True)]
        if bad:
            ax.scatter([r["offered_rate"] for r in bad],
                       [max(r["max_us"], 1e-3) for r in bad], marker="x",
                       color="black", zorder=5,
                       label="generator fell behind")
        err = [r for r in rs if r.get("errors", 0)]
        if err:
            ax.scatter([r["offered_rate"] for r in err],
                       [max(r["max_us"], 1e-3) for r in err], marker="s",
                       facecolors="none", edgecolors="red", zorder=5,
                       label="errors")
        if slo.get(b, slo.get(None)):
            ax.axhline(slo.get(b, slo.get(None)), color="gray",
                       linestyle="--", linewidth=1,
                       label="SLO p99 %g us" % slo.get(b, slo.get(None)))
        ax.set_yscale("log")
        ax.set_xlabel("offered load (requests/s, %d sample%s each)"
                      % (b, "" if b == 1 else "s"))
        ax.set_ylabel("latency from the scheduled send (us)")
        ax.set_title("batch %d" % b)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("microrecd latency against offered load (open loop)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_hgrms(series, slo, out):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    top = 10.0
    for label, path in series:
        xs, ys = read_hgrm(path)
        if not xs:
            print("plot_load: %s has no rows, skipped" % path, file=sys.stderr)
            continue
        ax.plot(xs, ys, label=label)
        top = max(top, xs[-1])
    ax.set_xscale("log")
    ticks = [10 ** k for k in range(0, int(math.ceil(math.log10(top))) + 1)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: "%g%%" % round(100 * (1 - 1 / v), 6)))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    for b, v in sorted(slo.items(), key=lambda kv: kv[1]):
        ax.axhline(v, color="gray", linestyle="--", linewidth=1,
                   label="SLO p99 %g us%s" % (v, "" if b is None else
                                               " (batch %d)" % b))
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (us)")
    ax.set_title("latency distribution (HdrHistogram percentiles)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", help="JSON lines of microrec-load --json runs")
    ap.add_argument("--hgrm", action="append", default=[],
                    help="LABEL=FILE.hgrm (repeatable)")
    ap.add_argument("--slo-us", action="append", default=[],
                    help="draw this p99 bound: US, or BATCH=US for one "
                         "batch size (repeatable)")
    ap.add_argument("--out-dir", default="bench/results",
                    help="where the PNGs go (default %(default)s)")
    a = ap.parse_args()
    if not a.sweep and not a.hgrm:
        ap.error("give --sweep and/or --hgrm")
    slo = {}
    for spec in a.slo_us:
        b, sep, v = spec.partition("=")
        try:
            slo[int(b) if sep else None] = float(v if sep else b)
        except ValueError:
            ap.error("--slo-us %r: expected US or BATCH=US" % spec)
    os.makedirs(a.out_dir, exist_ok=True)
    if a.sweep:
        rows = read_sweep(a.sweep)
        if not rows:
            sys.exit("plot_load: no open-loop runs in %s" % a.sweep)
        out = os.path.join(a.out_dir, "load-percentiles.png")
        plot_sweep(rows, slo, out)
        print(out)
    if a.hgrm:
        series = []
        for spec in a.hgrm:
            label, sep, path = spec.partition("=")
            series.append((label, path) if sep else
                          (os.path.basename(spec), spec))
        out = os.path.join(a.out_dir, "load-distribution.png")
        plot_hgrms(series, slo, out)
        print(out)


if __name__ == "__main__":
    main()
