"""Management reports: the ones rendered so far, render a period (a month or a day), download HTML or PDF."""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for

from exchanger.console import audit
from exchanger.reports import PeriodError, ReportError, build_report, parse_report_period
from exchanger.reports.certificates import config_certificates
from exchanger.transport.url import redact

bp = Blueprint("reports", __name__, url_prefix="/reports")

_PERIOD = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
FORMATS = {"html": "text/html", "pdf": "application/pdf"}


def _folder():
    return current_app.config["SERVICES"].reports_folder()


def rendered() -> list[dict]:
    """The periods rendered so far, newest first, with the formats each has."""
    folder = _folder()
    periods: dict[str, set[str]] = {}
    if folder.is_dir():
        for path in folder.glob("*/exchange-report-*"):
            if _PERIOD.match(path.parent.name) and path.suffix[1:] in FORMATS:
                periods.setdefault(path.parent.name, set()).add(path.suffix[1:])
    return [{"period": p, "formats": sorted(f)} for p, f in sorted(periods.items(), reverse=True)]


@bp.get("")
def listing():
    """The rendered reports and the form to render one."""
    return render_template("reports.html", reports=rendered())


@bp.post("")
def render():
    """Render a period's report from the message log (HTML and PDF) and show it."""
    period = request.form.get("period", "").strip()
    try:
        if not _PERIOD.match(period):
            raise ValueError("write a month as 2026-11 or a day as 2026-11-05")
        chosen = parse_report_period(period)
    except (ValueError, PeriodError) as exc:
        return render_template("reports.html", reports=rendered(), error=f"{period!r} is not a period: {exc}."), 400
    services = current_app.config["SERVICES"]
    store = services.store()
    try:
        files = build_report(store, chosen, _folder() / period, certificates=config_certificates(services.config),
                             source=redact(store.url))
    except ReportError as exc:
        audit.record(services, g.user.name, "report", outcome="failed", details={"period": period, "error": str(exc)})
        return render_template("reports.html", reports=rendered(), error=f"The report for {period} failed: {exc}."), 400
    audit.record(services, g.user.name, "report", details={"period": period, "pages": files.pages,
                                                          "seconds": round(files.seconds, 2)})
    pages = f", {files.pages} PDF page(s)" if getattr(files, "pages", None) else ""
    flash(f"Report for {period} rendered in {files.seconds:.1f} s{pages}.", "info")
    return redirect(url_for("reports.show", period=period))


@bp.get("/<period>")
def show(period: str):
    """One period's report: links to its HTML and PDF."""
    if not _PERIOD.match(period):
        abort(404, description=f"{period!r} is not a period such as 2026-11 or 2026-11-05.")
    formats = [f for f in FORMATS if (_folder() / period / f"exchange-report-{period}.{f}").is_file()]
    if not formats:
        abort(404, description=f"No report for {period} has been rendered yet: render it from the reports page.")
    return render_template("report.html", period=period, formats=formats)


@bp.get("/<period>/report.<fmt>")
def download(period: str, fmt: str):
    """The report file itself (HTML shown in the browser, PDF downloaded)."""
    path = _folder() / period / f"exchange-report-{period}.{fmt}"
    if not _PERIOD.match(period) or fmt not in FORMATS or not path.is_file():
        abort(404, description=f"No {fmt} report for {period}.")
    response = send_file(path, mimetype=FORMATS[fmt], as_attachment=fmt == "pdf",
                         download_name=f"exchange-report-{period}.{fmt}")
    if fmt == "html":
        # The report is a document of its own (its charts inline): it may use its own styles, nothing more.
        response.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return response
