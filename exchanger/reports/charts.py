"""The report's charts, drawn on the server as SVG (matplotlib), so the HTML and the PDF show the same pictures."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from exchanger.reports.figures import ReportFigures, Series

WIDTH, HEIGHT = 7.6, 2.9  # inches: the width of an A4 page's text
OUTCOME_COLOURS = {"accepted": "#2e7d32", "rejected": "#c62828", "duplicate": "#9e9e9e"}


@dataclass(frozen=True)
class Chart:
    """One drawn chart: an id for the page, its title, and the SVG markup."""

    name: str
    title: str
    svg: str

    @property
    def data_uri(self) -> str:
        """The chart as an image address, for layouts that take SVG as an image (the PDF)."""
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf-8")).decode("ascii")


def draw(figures: ReportFigures) -> list[Chart]:
    """Every chart of a report with traffic; none when there was none (the report says so instead)."""
    if figures.empty:
        return []
    unit = "day" if figures.period.is_month else "hour"
    charts = [
        Chart("outcomes", f"Messages per {unit} by outcome, with the acceptance rate", _outcomes(figures)),
        Chart("types", f"Messages per {unit} by message type", _stacked(figures.buckets, figures.by_type, "messages")),
    ]
    if figures.copies:
        charts.append(Chart("receivers", f"Copies delivered per {unit} by receiver (agencies, and enterprises for agencies' answers)",
                            _lines(figures.buckets, figures.by_receiver, "copies")))
        charts.append(Chart("routes", f"Copies delivered per {unit} by route",
                            _lines(figures.buckets, figures.by_route, "copies")))
    if figures.latency_delivered.count:
        charts.append(Chart("latency", f"End-to-end latency per {unit}: received to delivered (median and 95th percentile)",
                            _latency(figures)))
    if figures.reasons:
        charts.append(Chart("reasons", "Top rejection reasons (messages)", _reasons(figures)))
    if figures.senders:
        charts.append(Chart("senders", "Busiest senders (messages)", _senders(figures)))
    return [Chart(chart.name, chart.title, _own_ids(chart.svg, chart.name)) for chart in charts]


def _figure(height: float = HEIGHT) -> tuple[Figure, object]:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=7)
    axes.grid(axis="y", linewidth=0.4, alpha=0.5)
    axes.set_axisbelow(True)
    return figure, axes


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    # Text as text, not as glyph outlines: a third of the size, and five times faster to lay out in the PDF.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "exchanger"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline in the page: no XML declaration or doctype


def _own_ids(svg: str, prefix: str) -> str:
    """Give a chart's element ids a prefix of its own: the charts share one page, and an id must be unique in it."""
    return (svg.replace(' id="', f' id="{prefix}-').replace('href="#', f'href="#{prefix}-')
            .replace("url(#", f"url(#{prefix}-"))


def _thin_ticks(axes, labels: Sequence[str]) -> None:
    step = 1 if len(labels) <= 16 else 2
    positions = list(range(0, len(labels), step))
    axes.set_xticks(positions, [labels[n] for n in positions])
    axes.set_xlim(-0.6, len(labels) - 0.4)


def _legend(axes, count: int) -> None:
    axes.legend(fontsize=6.5, frameon=False, ncols=min(4, max(1, count)), loc="upper left", bbox_to_anchor=(0, -0.12))


def _outcomes(figures: ReportFigures) -> str:
    figure, axes = _figure()
    positions = range(len(figures.buckets))
    bottom = [0] * len(figures.buckets)
    for series in figures.outcomes:
        if series.total:
            axes.bar(positions, series.counts, bottom=bottom, label=series.name, color=OUTCOME_COLOURS.get(series.name),
                     width=0.8)
            bottom = [b + c for b, c in zip(bottom, series.counts)]
    axes.set_ylabel("messages", fontsize=7)
    rate = axes.twinx()
    rate.plot(positions, [r if r is not None else float("nan") for r in figures.acceptance_by_bucket], color="#1565c0",
              marker=".", linewidth=1, label="acceptance rate (%)")
    rate.set_ylim(0, 105)
    rate.set_ylabel("accepted %", fontsize=7)
    rate.tick_params(labelsize=7)
    rate.spines[["top"]].set_visible(False)
    _thin_ticks(axes, figures.buckets)
    handles, labels = axes.get_legend_handles_labels()
    more, more_labels = rate.get_legend_handles_labels()
    axes.legend(handles + more, labels + more_labels, fontsize=6.5, frameon=False, ncols=4, loc="upper left",
                bbox_to_anchor=(0, -0.12))
    return _svg(figure)


def _stacked(buckets: Sequence[str], series: Sequence[Series], unit: str) -> str:
    figure, axes = _figure()
    bottom = [0] * len(buckets)
    for one in series:
        axes.bar(range(len(buckets)), one.counts, bottom=bottom, label=one.name, width=0.8)
        bottom = [b + c for b, c in zip(bottom, one.counts)]
    axes.set_ylabel(unit, fontsize=7)
    _thin_ticks(axes, buckets)
    _legend(axes, len(series))
    return _svg(figure)


def _lines(buckets: Sequence[str], series: Sequence[Series], unit: str) -> str:
    figure, axes = _figure()
    for one in series:
        axes.plot(range(len(buckets)), one.counts, label=one.name, marker=".", linewidth=1, markersize=3)
    axes.set_ylabel(unit, fontsize=7)
    axes.set_ylim(bottom=0)
    _thin_ticks(axes, buckets)
    _legend(axes, len(series))
    return _svg(figure)


def _latency(figures: ReportFigures) -> str:
    figure, axes = _figure()
    positions = range(len(figures.buckets))
    for values, name, colour in ((figures.p50_by_bucket, "median", "#1565c0"), (figures.p95_by_bucket, "95th percentile", "#ef6c00")):
        axes.plot(positions, [1000 * v if v is not None else float("nan") for v in values], label=name, marker=".",
                  linewidth=1, markersize=3, color=colour)
    axes.set_ylabel("milliseconds (log scale)", fontsize=7)
    axes.set_yscale("log")  # a slow hour must not flatten every other hour's line
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    _thin_ticks(axes, figures.buckets)
    _legend(axes, 2)
    return _svg(figure)


def _horizontal(names: Sequence[str], stacks: Sequence[tuple[str, Sequence[int], str]]) -> str:
    figure, axes = _figure(height=0.5 + 0.28 * max(3, len(names)))
    axes.grid(axis="x", linewidth=0.4, alpha=0.5)
    axes.grid(axis="y", visible=False)
    positions = range(len(names))
    left = [0] * len(names)
    stacks = [stack for stack in stacks if any(stack[1])]  # no legend entry for what never happened
    for label, values, colour in stacks:
        axes.barh(positions, values, left=left, label=label, color=colour, height=0.7)
        left = [a + b for a, b in zip(left, values)]
    axes.set_yticks(list(positions), [name if len(name) <= 48 else name[:47] + "…" for name in names])
    axes.invert_yaxis()
    if len(stacks) > 1:
        _legend(axes, len(stacks))
    return _svg(figure)


def _reasons(figures: ReportFigures) -> str:
    names = [f"{r.stage}/{r.code}" for r in figures.reasons]
    return _horizontal(names, [("messages", [r.messages for r in figures.reasons], OUTCOME_COLOURS["rejected"])])


def _senders(figures: ReportFigures) -> str:
    senders = figures.senders
    return _horizontal(
        [s.sender for s in senders],
        [
            ("accepted", [s.accepted for s in senders], OUTCOME_COLOURS["accepted"]),
            ("rejected", [s.rejected for s in senders], OUTCOME_COLOURS["rejected"]),
            ("duplicate", [s.duplicates for s in senders], OUTCOME_COLOURS["duplicate"]),
        ],
    )
