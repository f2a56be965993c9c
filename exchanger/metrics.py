"""The exchange's Prometheus metrics, each defined once.

Worker processes write them; the daemon's main process serves them. With several workers the
values live in files under PROMETHEUS_MULTIPROC_DIR, which the daemon sets before it starts them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MESSAGES = Counter("exchanger_messages_total", "Messages processed, by message type and outcome.", ["type", "outcome"])
ROUTED = Counter("exchanger_routed_total", "Messages routed, by message type and routing rule.", ["type", "route"])
REJECTIONS = Counter("exchanger_rejections_total", "Rejection reasons, by stage and code.", ["stage", "code"])
DELIVERIES = Counter(
    "exchanger_deliveries_total", "Copies confirmed by the broker, by destination and kind.", ["destination", "kind"]
)
PUBLISH_RETRIES = Counter("exchanger_publish_retries_total", "Publications returned or nacked and retried.")
REQUEUES = Counter("exchanger_requeues_total", "Deliveries handed back to the broker (crash or retries exhausted).")
STAGE_SECONDS = Histogram(
    "exchanger_stage_seconds", "Time spent in each pipeline stage.", ["stage"], buckets=_LATENCY_BUCKETS
)
MESSAGE_SECONDS = Histogram(
    "exchanger_message_seconds",
    "End to end in the exchange: from delivery to the worker until every publication is confirmed.",
    buckets=_LATENCY_BUCKETS,
)
WAIT_SECONDS = Histogram(
    "exchanger_wait_seconds",
    "Time a delivery waits in the worker, prefetched, before its pipeline starts (a queue for the worker's CPU).",
    buckets=_LATENCY_BUCKETS,
)
RELOADS = Counter("exchanger_config_reloads_total", "Configuration reloads, by outcome.", ["outcome"])
CONFIG_VERSION = Gauge(
    "exchanger_config_info", "The configuration version a worker runs (value 1).", ["version"], multiprocess_mode="liveall"
)
LOG_FAILING = Gauge(
    "exchanger_message_log_failing", "Workers whose message log cannot be written right now.", multiprocess_mode="livesum"
)
BROKER_CONNECTED = Gauge(
    "exchanger_broker_connected", "Workers consuming from the broker right now.", multiprocess_mode="livesum"
)
