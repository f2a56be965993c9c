"""Records in words: the lines of ``exchanger trace`` and ``exchanger log search``."""

from __future__ import annotations

from exchanger.journal.records import (
    ANSWERED,
    DEAD_LETTERED,
    DELIVERED,
    DUPLICATE,
    HANDED_BACK,
    OPERATOR_ACTION,
    PRUNED,
    RECEIPT,
    RECEIVED,
    REJECTED,
    ROUTED,
    Record,
    canonical_json,
)

# What ``log search --status`` calls each outcome record.
STATUS_OF = {ROUTED: "accepted", REJECTED: "rejected", DUPLICATE: "duplicate"}
KIND_OF_STATUS = {status: kind for kind, status in STATUS_OF.items()}


def when(record: Record) -> str:
    """The record's time as people read it: UTC to the millisecond."""
    return record.at[:23].replace("T", " ")


def _reason(reason: dict) -> str:
    where = [f"line {reason['line']}"] if reason.get("line") else []
    if reason.get("path"):
        where.append(reason["path"])
    located = f" ({', '.join(where)})" if where else ""
    return f"[{reason.get('stage')}/{reason.get('code')}]{located} {reason.get('message')}"


def _delivery(delivery: dict) -> str:
    text = f"-> {delivery.get('to')} by {delivery.get('route')}"
    if delivery.get("addressee"):
        # The hop across e-ports: the copy is for a receiver the peer hosts, carried by the peer's link.
        text = f"-> {delivery['addressee']} at the peer e-port {delivery.get('to')} by {delivery.get('route')}"
    if delivery.get("approved_by"):
        text += f" (shared under {delivery['approved_by']}: {delivery.get('approval_ref')})"
    if delivery.get("addressee"):
        text += f", over the link {delivery.get('link')}"
    return text


def event_lines(record: Record) -> list[str]:
    """What happened, in one line and, where there is more to say, indented lines after it."""
    details = record.details
    kind = record.kind
    if kind == RECEIVED:
        user = details.get("user_id") or "(no broker user)"
        line = f"{details.get('size')} bytes, sha256 {(record.digest or '')[:16]}…, broker user {user}"
        if details.get("redelivered"):
            line += ", redelivered by the broker"
        extra = [f"replayed from the dead letters: {details['replay']}"] if details.get("replay") else []
        return [line, *extra]
    if kind == ROUTED:
        passed = ", ".join(details.get("passed") or ())
        hop = ""
        if details.get("relayed_by"):
            hop = f"; relayed by the peer e-port {details['relayed_by']}, judged in its trust domain"
        answers = [f"answers message {details['answers']}"] if details.get("answers") else []
        return [f"passed {passed}{hop}", *(_delivery(d) for d in details.get("deliveries") or ()), *answers]
    if kind == ANSWERED:
        to = record.receivers.strip(",") if record.receivers else "?"
        return [
            f"answered by {details.get('by_type')} {details.get('by_message_id')} from {details.get('by_sender')} -> {to}"
        ]
    if kind == REJECTED:
        passed = details.get("passed") or []
        after = f", after passing {', '.join(passed)}" if passed else ""
        sent = details.get("format_receipt")
        also = [f"format receipt {sent.get('format')} {sent.get('receipt_id')} names each violation"] if sent else []
        return [f"at {details.get('stage')}{after}", *(_reason(r) for r in details.get("reasons") or ()), *also]
    if kind == DUPLICATE:
        return [f"duplicate of an accepted message: its receipt {details.get('receipt_id')} is sent again, nothing forwarded"]
    if kind == DELIVERED:
        return [f"to {record.receivers.strip(',') if record.receivers else '?'} (forward {details.get('forward_id')})"]
    if kind == DEAD_LETTERED:
        named = f" as dead letter {details['dead_letter_id']}" if details.get("dead_letter_id") else ""
        return [f"original kept in {details.get('queue', 'the dead-letter queue')}{named}"]
    if kind == RECEIPT:
        again = ", the original sent again" if details.get("original_receipt_again") else ""
        to = record.receivers.strip(",") if record.receivers else "?"
        named = f"{details['format']} " if details.get("format") else ""
        return [f"{details.get('status')} -> {to} ({named}receipt {details.get('receipt_id')}{again})"]
    if kind == HANDED_BACK:
        return [f"handed back to the broker: {details.get('why')}"]
    if kind == PRUNED:
        return [f"records up to seq {details.get('through_seq')} older than {details.get('cutoff')} pruned"]
    if kind == OPERATOR_ACTION:
        return [operator_line(details), *_action_details(details)]
    return [record.data]


def operator_line(details: dict) -> str:
    """Who did what through which door, and how it ended: ``dead-letter-replay by alice via cli: done``."""
    return f"{details.get('action')} by {details.get('operator')} via {details.get('via')}: {details.get('outcome')}"


def _action_details(details: dict) -> list[str]:
    # The bulky parts (a route change's diff, a refusal's problems) show as indented lines of their own.
    lines = []
    for key in sorted(details):
        if key in ("action", "operator", "via", "outcome"):
            continue
        value = details[key]
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            lines.append(f"{key}:")
            lines.extend(f"  {item}" for item in value)
        else:
            lines.append(f"{key}: {value if isinstance(value, str) else canonical_json(value)}")
    return lines


def timeline(records: list[Record]) -> list[str]:
    """A readable timeline: a heading per message (sender and id), then one entry per record."""
    lines, heading = [], None
    for record in records:
        this = (record.message_type, record.message_id, record.sender)
        if this != heading:
            heading = this
            if record.kind == ANSWERED:
                lines.append(f"answers to {record.message_id}")
            else:
                lines.append(
                    f"{record.message_type or 'unidentified message'} {record.message_id or '(no message id)'} "
                    f"from {record.sender or 'unknown sender'}"
                )
        first, *more = event_lines(record)
        lines.append(f"  {when(record)}  {record.kind:<13} {first}  [seq {record.seq}, config {record.config_version}]")
        lines.extend(f"  {'':<23}  {'':<13}   {line}" for line in more)
    return lines


def search_line(record: Record) -> str:
    """One outcome record as one line: when, status, type, id, sender, and where it went or why not."""
    details = record.details
    status = STATUS_OF.get(record.kind, record.kind)
    if record.kind == OPERATOR_ACTION:
        about = f"  {record.message_type or '-'}  {record.message_id}  {record.sender or '-'}" if record.message_id else ""
        return f"{when(record)}  operator   {operator_line(details)}{about}"
    if record.kind == ROUTED:
        what = "-> " + ", ".join(record.receivers.strip(",").split(",")) if record.receivers else ""
    elif record.kind == REJECTED:
        reasons = details.get("reasons") or []
        what = _reason(reasons[0]) if reasons else ""
        if len(reasons) > 1:
            what += f" (+{len(reasons) - 1} more)"
    elif record.kind == DUPLICATE:
        what = f"receipt {details.get('receipt_id')} sent again"
    else:
        what = event_lines(record)[0]
    return (
        f"{when(record)}  {status:<9}  {record.message_type or '-'}  {record.message_id or '-'}  "
        f"{record.sender or '-'}  {what}"
    )
