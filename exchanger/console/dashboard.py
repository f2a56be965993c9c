"""The dashboard: the exchange's figures now (the same as /metrics) and per-minute charts polled as JSON."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from exchanger.console.figures import by_labels, histogram_buckets, percentiles, rate_series

bp = Blueprint("dashboard", __name__)


def _rows(values: dict, *columns: str) -> list[dict]:
    rows = [{**dict(zip(columns, key)), "count": int(count)} for key, count in values.items() if count]
    return sorted(rows, key=lambda row: (-row["count"], *(row[c] for c in columns)))


def _latency(history) -> dict:
    """Percentiles since the daemon started and over the readings kept (the last half hour at most)."""
    name = "exchanger_message_seconds"
    if not history:
        return {"overall": percentiles({}), "recent": percentiles({})}
    newest = histogram_buckets(history[-1].values, name)
    oldest = histogram_buckets(history[0].values, name)
    recent = {edge: count - oldest.get(edge, 0.0) for edge, count in newest.items()}
    as_ms = lambda figures: {k: None if v is None else round(v * 1000, 1) for k, v in figures.items()}  # noqa: E731
    return {"overall": as_ms(percentiles(newest)), "recent": as_ms(percentiles(recent)),
            "count": int(newest.get(float("inf"), 0))}


def figures() -> dict:
    """Everything the dashboard shows, as plain data (for the page and for its JSON)."""
    sampler = current_app.config["SAMPLER"]
    latest = sampler.latest()
    history = sampler.history()
    slow = sampler.slow()
    values = latest.values
    exchange = slow["exchange"]
    messages = by_labels(values, "exchanger_messages_total", "type", "outcome")
    connected = sum(v for (n, _), v in values.items() if n == "exchanger_broker_connected")
    return {
        "total_messages": int(sum(messages.values())),
        "messages": _rows(messages, "type", "outcome"),
        "rejections": _rows(by_labels(values, "exchanger_rejections_total", "stage", "code"), "stage", "reason"),
        "routes": _rows(by_labels(values, "exchanger_routed_total", "type", "route"), "type", "route"),
        "agencies": _rows(by_labels(values, "exchanger_deliveries_total", "destination", "kind"), "destination", "kind"),
        "latency": _latency(history),
        "workers": {"consuming": int(connected), "expected": slow["workers_expected"]},
        "queues": _queues(slow, exchange),
        "certificates": sorted(
            ({"participant": k[0], "serial": k[1], "days": round(v, 1)}
             for k, v in by_labels(exchange, "exchanger_certificate_expiry_days", "participant", "serial").items()),
            key=lambda row: row["days"],
        ),
        "readiness": [{"check": name, "ok": problem is None, "detail": problem or "ok"}
                      for name, problem in slow["readiness"].items()],
        "rates": rate_series(history, "exchanger_messages_total", "type", "outcome"),
        "rejection_rates": rate_series(history, "exchanger_rejections_total", "stage", "code"),
    }


def _queues(slow: dict, exchange: dict) -> list[dict]:
    rows = [{"queue": "inbound", "depth": slow["inbound"]}]
    dead = by_labels(exchange, "exchanger_dead_letters")
    rows.append({"queue": "dead letters (pending)", "depth": int(dead[()]) if () in dead else None})
    for (peer,), depth in sorted(by_labels(exchange, "exchanger_peer_waiting", "peer").items()):
        rows.append({"queue": f"mailbox of peer {peer}", "depth": int(depth)})
    return rows


@bp.get("/")
def index():
    """The dashboard page: tables that read without JavaScript, charts drawn by it."""
    return render_template("dashboard.html", figures=figures())


@bp.get("/dashboard.json")
def data():
    """The same figures, polled by the page every few seconds."""
    return jsonify(figures())
