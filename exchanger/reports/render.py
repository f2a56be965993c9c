"""The report as HTML (jinja2) and as PDF (WeasyPrint, from the same HTML), and ``build_report`` that writes both."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from exchanger.errors import ExchangerError
from exchanger.journal.store import Store
from exchanger.reports.charts import Chart, draw
from exchanger.reports.figures import ReportFigures, report_figures
from exchanger.reports.period import ReportPeriod, parse_report_period

FORMATS = ("html", "pdf")


class ReportError(ExchangerError):
    """A report that cannot be written: an unknown format, or an output folder that cannot be used."""


@dataclass(frozen=True)
class ReportFiles:
    """What ``build_report`` wrote: the HTML, the PDF (if asked for) and its page count, and how long it took."""

    html: Path | None
    pdf: Path | None
    pages: int | None
    seconds: float
    figures: ReportFigures | None = None


@dataclass(frozen=True)
class BucketRow:
    """One line of the day-by-day (or hour-by-hour) table."""

    label: str
    messages: int
    accepted: int
    rejected: int
    duplicates: int
    acceptance: float | None
    copies: int
    p50: float | None
    p95: float | None


_environment = Environment(
    loader=PackageLoader("exchanger.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _number(value) -> str:
    return "–" if value is None else f"{value:,}"


def _percent(value) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _duration(seconds) -> str:
    """Seconds as people read a latency: milliseconds below ten seconds, then seconds, minutes, hours."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds * 1000:,.0f} ms"
    if seconds < 600:
        return f"{seconds:,.1f} s"
    if seconds < 36000:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


_environment.filters.update(number=_number, percent=_percent, duration=_duration)


def bucket_rows(figures: ReportFigures) -> list[BucketRow]:
    """The breakdown table: one row per day of a month (or hour of a day)."""
    outcomes = {series.name: series.counts for series in figures.outcomes}
    copies = [sum(column) for column in zip(*(s.counts for s in figures.by_receiver))] or [0] * len(figures.buckets)
    rows = []
    for n, label in enumerate(figures.buckets):
        accepted, rejected, duplicates = outcomes["accepted"][n], outcomes["rejected"][n], outcomes["duplicate"][n]
        rows.append(BucketRow(
            label=label, messages=accepted + rejected + duplicates, accepted=accepted, rejected=rejected,
            duplicates=duplicates, acceptance=figures.acceptance_by_bucket[n], copies=copies[n],
            p50=figures.p50_by_bucket[n], p95=figures.p95_by_bucket[n],
        ))
    return rows


def render_html(figures: ReportFigures, *, source: str | None = None, charts: list[Chart] | None = None,
                charts_as_images: bool = False) -> str:
    """The report as one self-contained HTML page, its charts inline as SVG (or as SVG images, for the PDF)."""
    period = figures.period
    return _environment.get_template("report.html").render(
        figures=figures,
        period=period,
        unit="Day" if period.is_month else "Hour",
        rows=bucket_rows(figures),
        charts=draw(figures) if charts is None else charts,
        charts_as_images=charts_as_images,
        source=source,
        generated=f"{figures.generated_at:%Y-%m-%d %H:%M} UTC",
    )


def render_pdf(html: str, path: Path) -> int:
    """Write the PDF of the report's HTML (charts as SVG images); return its number of pages."""
    from weasyprint import HTML  # loaded on demand: it needs Pango, and only the PDF needs it

    document = HTML(string=html).render()
    document.write_pdf(path)
    return len(document.pages)


def build_report(store: Store, period: ReportPeriod | str, out_dir: Path | str, *, formats: Sequence[str] = FORMATS,
                 certificates: Sequence = (), as_of: datetime | None = None, source: str | None = None) -> ReportFiles:
    """Compute a period's figures from the message log and write ``exchange-report-PERIOD.html`` and/or ``.pdf``."""
    started = time.perf_counter()
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ReportError(f"unknown report format {', '.join(unknown) or '(none)'}: choose html, pdf or both")
    period = parse_report_period(period) if isinstance(period, str) else period
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"cannot create the report folder {out_dir}: a file of that name is in the way")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the report folder {out_dir}: {exc.strerror or exc}") from exc
    figures = report_figures(store, period, certificates=certificates, as_of=as_of)
    charts = draw(figures)
    stem = out_dir / f"exchange-report-{period.label}"
    html_path = pdf_path = pages = None
    try:
        if "html" in formats:
            html_path = stem.with_suffix(".html")
            html_path.write_text(render_html(figures, source=source, charts=charts), encoding="utf-8")
        if "pdf" in formats:
            pdf_path = stem.with_suffix(".pdf")
            # The same page with the charts as images: WeasyPrint draws those with its SVG renderer.
            pages = render_pdf(render_html(figures, source=source, charts=charts, charts_as_images=True), pdf_path)
    except OSError as exc:
        raise ReportError(f"cannot write the report into {out_dir}: {exc.strerror or exc}") from exc
    return ReportFiles(html_path, pdf_path, pages, time.perf_counter() - started, figures)
