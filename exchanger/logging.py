"""Structured logs: JSON lines when not on a terminal, readable console output on one."""

from __future__ import annotations

import logging
import sys

import structlog

from exchanger.stderr_guard import GuardedStream

LEVELS = ("debug", "info", "warning", "error")


def configure(level: str = "info", *, json: bool | None = None, stream=None) -> None:
    """Configure structlog (and the standard logging that pika uses) for this process."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    # SM2 verification silences descriptor 2 for a moment; lines written meanwhile must wait, not vanish.
    stream = GuardedStream(stream)
    numeric = getattr(logging, level.upper(), logging.INFO)
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info if json else structlog.dev.set_exc_info,
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=stream.isatty()),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line: worker processes share the stream, and a line written in two parts can
        # interleave with another worker's line, leaving neither readable as JSON.
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # pika logs through the standard library; only its warnings are worth an operator's attention.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream, format="%(levelname)s %(name)s: %(message)s")
    # A failed connection attempt is reported by the exchange itself (a command's error line, the daemon's
    # broker.* events); pika's own account of it is six lines and a traceback.
    for name in ("pika.adapters.utils.connection_workflow", "pika.adapters.utils.io_services_utils",
                 "pika.adapters.blocking_connection"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def enabled(logger, level: int) -> bool:
    """Whether events at ``level`` reach the output: callers skip building the fields of those that do not."""
    is_enabled_for = getattr(logger, "is_enabled_for", None)
    return is_enabled_for(level) if is_enabled_for is not None else True
