"""The chart of the sweeps (bench/sweeps.png): workers, sizes, routes and participants, algorithms, latency and
memory."""

from __future__ import annotations

from pathlib import Path

from bench.readings import ALGORITHM_LABELS, measured
from bench.targets import TARGET_FLAT, TARGET_P99_MS, TARGET_RATE


def draw(results: dict, path: Path) -> None:
    """Draw the six panels of the sweeps into a PNG at path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = results["workers"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    fig.suptitle(f"exchanger benchmark — {results['machine']['cores']} cores {results['machine']['cpu']}, "
                 f"RabbitMQ {results['machine']['rabbitmq']}, profile {results['profile']}", fontsize=12)
    colours = {"exchanger": "#1f77b4", "ceiling": "#7f7f7f", "in-process": "#2ca02c", "naive": "#d62728"}

    # (a) workers
    ax = axes[0][0]
    labels, series = [], {"exchanger": [], "in-process": [], "ceiling": []}
    for key, label, ceil_key, inproc_factor in (("2KB-rsa-w1", "1 worker", "2KB-w1", 1),
                                                (f"2KB-rsa-w{w}", f"{w} workers", f"2KB-w{w}", w),
                                                ("2KB-rsa-2daemons", "2 daemons×1", f"2KB-w{w}", 2)):
        if key not in results["drains"]:
            continue
        labels.append(label)
        series["exchanger"].append(results["drains"][key]["rate"])
        in1 = measured(results, "inprocess", "2KB-rsa-w1") or 0
        series["in-process"].append(in1 * inproc_factor)
        series["ceiling"].append(measured(results, "ceiling", ceil_key) or 0)
    _bars(ax, labels, series, colours)
    naive_rate = measured(results, "naive", f"2KB-rsa-p{w}")
    if naive_rate:
        ax.axhline(naive_rate, color=colours["naive"], linestyle="--", label=f"naive peer ({w} proc.)")
    ax.axhline(TARGET_RATE, color="black", linestyle=":", label="target 2,000")
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 8)
    ax.set_ylabel("messages/s (log)")
    ax.set_title("Workers (2 KB, RSA-2048); in-process = 1 worker × n")
    ax.legend(fontsize=7, ncol=3, loc="upper center")

    # (b) sizes
    ax = axes[0][1]
    xs, ex, ce, ip = [], [], [], []
    for label in ("2KB", "20KB", "200KB", "5MB"):
        d = results["drains"].get(f"{label}-rsa-w{w}")
        if not d:
            continue
        xs.append(d["document_bytes"])
        ex.append(d["rate"])
        ce.append(measured(results, "ceiling", f"{label}-w{w}"))
        inproc = results["inprocess"].get(f"{label}-rsa-w1")
        ip.append(inproc["rate"] * w if inproc else None)
    ax.plot(xs, ex, "o-", color=colours["exchanger"], label=f"exchanger ({w} workers)")
    ax.plot(xs, ce, "s--", color=colours["ceiling"], label="ceiling")
    ax.plot(xs, ip, "^:", color=colours["in-process"], label=f"in-process × {w}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("document size (bytes, log)")
    ax.set_ylabel("messages/s (log)")
    ax.set_title("Message size")
    ax.legend(fontsize=8)

    # (c) routes and participants
    ax = axes[0][2]
    paired = results.get("scale", {}).get("paired") or {}
    ratios = paired.get("ratios") or {}
    if ratios:
        names = list(ratios)
        ax.boxplot([[100 * (r - 1) for r in ratios[n]] for n in names], showfliers=False)
        ax.axhline(100 * TARGET_FLAT, color="black", linestyle=":", label="±10%")
        ax.axhline(-100 * TARGET_FLAT, color="black", linestyle=":")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xticks(range(1, len(names) + 1), [f"{n}\n{paired['cpu_ms'][n]:.2f} ms" for n in names], fontsize=8)
        ax.legend(fontsize=8)
    base = next(iter(paired.get("cpu_ms", {})), "")
    ax.set_ylabel(f"CPU per message vs {base} (%, per block)")
    ax.set_title("Routes and participants (in-process, in turns)")

    # (d) algorithms
    ax = axes[1][0]
    labels, series = [], {"exchanger": [], "in-process": []}
    for algorithm, label in ALGORITHM_LABELS:
        d = results["drains"].get(f"2KB-{algorithm}-w{w}")
        inproc = results["inprocess"].get(f"2KB-{algorithm}-w1")
        if not d and not inproc:
            continue
        labels.append(label)
        series["exchanger"].append(d["rate"] if d else 0)
        series["in-process"].append(inproc["rate"] if inproc else 0)
    _bars(ax, labels, {"exchanger": series["exchanger"], "in-process": series["in-process"]}, colours,
          names={"exchanger": f"exchanger ({w} workers)", "in-process": "in-process (1 worker)"})
    ax.set_ylabel("messages/s")
    ax.set_title("Signature algorithm (platform and senders)")
    ax.legend(fontsize=8)

    # (e) latency
    ax = axes[1][1]
    latency = results.get("latency", {}).get(f"2KB-rsa-w{w}")
    light = results.get("latency", {}).get(f"2KB-rsa-w{w} light")
    if latency and latency.get("samples_ms"):
        for run, load, colour in ((latency, "50%", colours["exchanger"]), (light, "25%", colours["in-process"])):
            if not run or not run.get("samples_ms"):
                continue
            samples = sorted(run["samples_ms"])
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.plot(samples, ys, color=colour, label=f"{load} load ({run['achieved_rate']:.0f} msg/s): "
                                                    f"p99 {run['copies_ms']['99']:.1f} ms")
        for q, style in (("50", ":"), ("95", "--")):
            ax.axvline(latency["copies_ms"][q], color="grey", linestyle=style, label=f"p{q} at 50%: {latency['copies_ms'][q]:.1f} ms")
        ax.axvline(TARGET_P99_MS, color="black", linestyle=":", label="target p99 50 ms")
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
        ax.set_title("Latency at a fixed rate, publish → destination")
    ax.set_xlabel("ms (log)")
    ax.set_ylabel("fraction of messages")

    # (f) memory
    ax = axes[1][2]
    labels, values = [], []
    for key, label in ((f"2KB-rsa-w{w}", "2 KB"), (f"2KB-rsa-w{w} backlog", "2 KB, big backlog"),
                       (f"200KB-rsa-w{w}", "200 KB"), (f"5MB-rsa-w{w}", "5 MB")):
        d = results["drains"].get(key)
        if d and d["peak_rss_kb"]:
            labels.append(f"{label}\n{d['messages']:,} msgs")
            values.append(max(d["peak_rss_kb"]) / 1024)
    ax.bar(range(len(values)), values, color=colours["exchanger"])
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("peak RSS of the largest worker (MB)")
    ax.set_title("Memory per worker (VmHWM)")

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, labels, series, colours, names=None) -> None:
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(positions, values, width, color=colours.get(name), label=(names or {}).get(name, name))
        for x, value in zip(positions, values):
            if value:
                ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels)
