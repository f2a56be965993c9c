"""The targets of issues 5 and 13, and how far the results are from each."""

from __future__ import annotations

from bench.readings import measured, scale_changes

TARGET_RATE = 2000
TARGET_NAIVE = 5
TARGET_PEER = 1.0  # the exchange against the honest peer, same number of processes (issue 13)
TARGET_INPROCESS = 0.8  # end to end against the in-process rate for as many workers (issue 13)
TARGET_P99_MS = 50
TARGET_FLAT = 0.10
TARGET_RSS_GROWTH = 0.10


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    """Each target of issue 5: (target, met?, how far)."""
    w = results["workers"]
    headline = measured(results, "drains", f"2KB-rsa-w{w}")
    naive_w = measured(results, "naive", f"2KB-rsa-p{w}") or measured(results, "naive", "2KB-rsa-p1")
    latency = results.get("latency", {}).get(f"2KB-rsa-w{w}")
    out = []
    peer_w = measured(results, "peer", f"2KB-rsa-p{w}")
    if headline and peer_w:
        # Paired drains (the peer's just before the exchange's) give the ratio; else the two medians do.
        peer = results["peer"][f"2KB-rsa-p{w}"]
        ratio = peer.get("ratio") or headline / peer_w
        pairs = len(peer.get("pairs") or [])
        how = f"median of {pairs} paired drains; medians " if pairs else ""
        out.append((f"≥ {TARGET_PEER:.1f}× the honest peer ({w} processes)", ratio >= TARGET_PEER,
                    f"{ratio:.2f}× ({how}{headline:,.0f} vs {peer_w:,.0f} msg/s)"))
    in1 = results["inprocess"].get("2KB-rsa-w1")
    if headline and in1:
        ratio = headline / (in1["rate"] * w)
        out.append((f"end to end ≥ {TARGET_INPROCESS} × in-process ({w} workers)", ratio >= TARGET_INPROCESS,
                    f"{ratio:.2f} ({headline:,.0f} vs {w} × {in1['rate']:,.0f} msg/s)"))
    if headline is not None:
        out.append((f"≥ {TARGET_RATE:,} msg/s end to end (2 KB, RSA-2048, {w} workers)", headline >= TARGET_RATE,
                    f"{headline:,.0f} msg/s = {headline / TARGET_RATE:.0%} of the target"))
    if headline and naive_w:
        out.append((f"≥ {TARGET_NAIVE}× the naive peer", headline / naive_w >= TARGET_NAIVE,
                    f"{headline / naive_w:.1f}× ({headline:,.0f} vs {naive_w:,.1f} msg/s, same number of processes)"))
    if latency:
        p99 = latency["copies_ms"]["99"]
        detail = f"p99 {p99:.1f} ms at {latency['achieved_rate']:.0f} msg/s"
        light = results.get("latency", {}).get(f"2KB-rsa-w{w} light")
        if light:
            detail += f"; {light['copies_ms']['99']:.1f} ms at quarter load ({light['achieved_rate']:.0f} msg/s)"
        out.append((f"p99 < {TARGET_P99_MS} ms at half load", p99 < TARGET_P99_MS, detail))
    for name, (base, value, change) in scale_changes(results).items():
        out.append((f"cost per message flat with {name} (within {TARGET_FLAT:.0%})", abs(change) <= TARGET_FLAT,
                    f"{base:.2f} → {value:.2f} ms CPU per message (median paired change {change:+.1%})"))
    small = results["drains"].get(f"2KB-rsa-w{w}", {}).get("peak_rss_kb")
    big_drain = results["drains"].get(f"2KB-rsa-w{w} backlog", {})
    big = big_drain.get("peak_rss_kb")
    if small and big:
        growth = max(big) / max(small) - 1
        out.append((f"RSS per worker independent of the backlog (within {TARGET_RSS_GROWTH:.0%})",
                    growth <= TARGET_RSS_GROWTH,
                    f"{max(small) / 1024:.0f} MB after {results['drains'][f'2KB-rsa-w{w}']['messages']:,} messages, "
                    f"{max(big) / 1024:.0f} MB after a {big_drain['messages']:,}-message backlog ({growth:+.1%})"))
    return out

