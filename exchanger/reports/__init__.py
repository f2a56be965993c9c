"""The management report: figures from the message log, charts, and the report as HTML and PDF."""

from exchanger.reports.figures import ReportFigures, report_figures
from exchanger.reports.period import PeriodError, ReportPeriod, parse_report_period
from exchanger.reports.render import ReportError, ReportFiles, build_report

__all__ = [
    "PeriodError",
    "ReportError",
    "ReportFigures",
    "ReportFiles",
    "ReportPeriod",
    "build_report",
    "parse_report_period",
    "report_figures",
]
