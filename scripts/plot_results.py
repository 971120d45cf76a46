#!/usr/bin/env python3
"""Plot one `qmoe bench` results file (bench/results/<device>-<date>.json).

Writes a PNG next to the JSON (or to --out) with two panels over token count T:
  left:  time / floor (1 = at the measured bandwidth/tensor floor; lower is better)
  right: speed-up over the bf16 cuBLAS baseline (higher is better)
Colour = shape, marker and line style = format. Needs matplotlib.
"""
import argparse
import json
import os
import sys

REQUIRED_TOP = ("device", "date", "commit", "copy_GBps", "bf16_TFLOPs", "rows")
REQUIRED_ROW = ("op", "shape", "tokens", "format", "kernel", "time_us", "floor_us",
                "baseline_us", "bytes", "flops")


def load_results(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"plot_results.py: cannot read {path}: {e}")
    missing = [k for k in REQUIRED_TOP if k not in data]
    if missing:
        sys.exit(f"plot_results.py: {path} is not a qmoe results file (missing {', '.join(missing)})")
    for i, row in enumerate(data["rows"]):
        missing = [k for k in REQUIRED_ROW if k not in row]
        if missing:
            sys.exit(f"plot_results.py: {path}: row {i} lacks {', '.join(missing)}")
    if not data["rows"]:
        sys.exit(f"plot_results.py: {path} has no rows to plot")
    return data


def series(rows):
    """(op, shape, format) -> rows sorted by tokens, in first-seen order."""
    out = {}
    for row in rows:
        out.setdefault((row["op"], row["shape"], row["format"]), []).append(row)
    for points in out.values():
        points.sort(key=lambda r: r["tokens"])
    return out


def plot(data, png_path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        sys.exit("plot_results.py: matplotlib is required: pip install matplotlib")

    groups = series(data["rows"])
    shapes = list(dict.fromkeys(shape for _, shape, _ in groups))
    formats = list(dict.fromkeys(fmt for _, _, fmt in groups))
    ops = list(dict.fromkeys(op for op, _, _ in groups))
    colors = plt.get_cmap("tab10")
    markers = "os^vDP*Xh<>p"
    styles = ["-", "--", "-.", ":"]

    def style(shape, fmt, op):
        i = formats.index(fmt)
        return dict(color=colors(shapes.index(shape) % 10), marker=markers[i % len(markers)],
                    linestyle=styles[(i + ops.index(op)) % len(styles)], markersize=4,
                    linewidth=1.2)

    fig, (ax_floor, ax_speed) = plt.subplots(1, 2, figsize=(14, 6))
    for (op, shape, fmt), points in groups.items():
        tokens = [r["tokens"] for r in points]
        ax_floor.plot(tokens, [r["time_us"] / r["floor_us"] for r in points], **style(shape, fmt, op))
        timed = [r for r in points if r["baseline_us"]]
        if timed:
            ax_speed.plot([r["tokens"] for r in timed],
                          [r["baseline_us"] / r["time_us"] for r in timed], **style(shape, fmt, op))

    for ax, ylabel, title in ((ax_floor, "time / floor", "time relative to the floor (lower is better)"),
                              (ax_speed, "speed-up vs bf16 cuBLAS",
                               "speed-up over the bf16 baseline (higher is better)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted({r["tokens"] for r in data["rows"]}))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("tokens T")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)

    shape_handles = [Line2D([], [], color=colors(i % 10), label=s) for i, s in enumerate(shapes)]
    format_handles = [Line2D([], [], color="gray", marker=markers[i % len(markers)],
                             linestyle=styles[i % len(styles)], label=f)
                      for i, f in enumerate(formats)]
    fig.legend(handles=shape_handles, loc="lower left", ncol=len(shape_handles), title="shape",
               fontsize=8, bbox_to_anchor=(0.05, 0.0))
    fig.legend(handles=format_handles, loc="lower right", ncol=len(format_handles), title="format",
               fontsize=8, bbox_to_anchor=(0.95, 0.0))
    read = f"read {data['read_GBps']:.0f} GB/s, " if "read_GBps" in data else ""
    fig.suptitle(f"qmoe {', '.join(ops)} on {data['device']} ({data['date']}, commit "
                 f"{data['commit']}): copy {data['copy_GBps']:.0f} GB/s, {read}"
                 f"bf16 {data['bf16_TFLOPs']:.0f} TFLOP/s", fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results JSON written by `qmoe bench`")
    parser.add_argument("--out", help="PNG path (default: the JSON path with .png)")
    args = parser.parse_args()
    data = load_results(args.results)
    png_path = args.out or os.path.splitext(args.results)[0] + ".png"
    plot(data, png_path)
    print(f"wrote {png_path}")


if __name__ == "__main__":
    main()
