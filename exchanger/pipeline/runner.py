"""The one loop that runs the stages, and the disposition it turns their outcome into."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Protocol

import structlog
from lxml import etree

from exchanger import logging as exchange_logging
from exchanger import metrics
from exchanger.catalogue import FieldError
from exchanger.config import Config
from exchanger.dsig.signer import Signer
from exchanger.envelope import Envelope, Inbound
from exchanger.faults import crash_point, poison_point
from exchanger.outcome import Reason, Rejected
from exchanger.pipeline.disposition import ACCEPTED, REJECTED, Disposition, Publication
from exchanger.pipeline.stages.authenticate import Authenticate, connection_identity
from exchanger.pipeline.stages.deduplicate import AcceptedReceipts, Deduplicate, Duplicate, duplicate_disposition
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.peer_receipt import PeerReceipt, PeerReceipts, peer_receipt_disposition
from exchanger.pipeline.stages.route import Route
from exchanger.pipeline.stages.sign import Sign
from exchanger.pipeline.stages.validate import Validate
from exchanger.pipeline.stages.verify import Verify
from exchanger.pipeline.stages.unwrap import Unwrap, sniff_carrier
from exchanger.platform_documents import derived_id
from exchanger.receipts import ReceiptFacts, receipt_format
from exchanger.transport.dead_letters import BROKER_DEATH_HEADERS, DEAD_LETTER_ID, REPLAYS, storable_headers
from exchanger.transport.names import DEAD_EXCHANGE, MAILBOX_EXCHANGE

log = structlog.get_logger("exchanger.pipeline")

HEADER = "x-exchanger-"


# AMQP headers travel in one frame (128 KiB by default): keep what the exchange adds well inside it.
MAX_REASONS_HEADER = 16_000
MAX_REASON_TEXT = 500
MAX_ID_HEADER = 256


def reasons_header(reasons) -> str:
    """Every reason as JSON, each shortened, dropping the last ones until the whole fits in a header."""
    items = [dict(r.as_dict(), message=r.message[:MAX_REASON_TEXT]) for r in reasons]
    while items:
        text = json.dumps(items, ensure_ascii=False)
        if len(text.encode()) <= MAX_REASONS_HEADER:
            return text
        items.pop()
    return "[]"


class Stage(Protocol):
    """A pipeline stage: learns something about the envelope, or raises Rejected."""

    name: str

    def __call__(self, envelope: Envelope) -> None: ...


class Pipeline:
    """Runs every stage in order; a Rejected from any stage ends the run with a rejection."""

    def __init__(self, config: Config, stages: list[Stage], signer: Signer):
        self.config = config
        self.signer = signer
        # Bind each stage's histogram once: a label lookup per stage per message adds up.
        self.stages = [(stage, metrics.STAGE_SECONDS.labels(stage.name)) for stage in stages]

    def process(self, inbound: Inbound) -> Disposition:
        """Turn one inbound message into the publications that settle it: copies and receipt, or dead letter and receipt."""
        envelope = Envelope(inbound)
        started = time.perf_counter()
        # The per-stage event's fields are built only when debug output is on, not for every message.
        debug = exchange_logging.enabled(log, logging.DEBUG)
        try:
            for stage, seconds in self.stages:
                began = time.perf_counter()
                try:
                    poison_point(stage.name, inbound.body)
                    stage(envelope)
                finally:
                    seconds.observe(time.perf_counter() - began)
                crash_point(f"after-{stage.name}")
                if debug:
                    log.debug("stage.passed", stage=stage.name, **envelope.log_context())
        except Duplicate as duplicate:
            disposition = duplicate_disposition(envelope, duplicate, self.config.version)
            self._count(envelope, disposition)
            log.info(
                "message.duplicate",
                original_receipt=duplicate.receipt_id,
                ms=round((time.perf_counter() - started) * 1000, 2),
                **envelope.log_context(),
            )
            return disposition
        except PeerReceipt as receipt:
            disposition = peer_receipt_disposition(envelope, receipt, self.config.version)
            self._count(envelope, disposition)
            log.info("receipt.relayed", peer=receipt.peer.id, to=receipt.addressee.id, answers=receipt.answered,
                     ms=round((time.perf_counter() - started) * 1000, 2), digest=envelope.digest[:16])
            return disposition
        except Rejected as rejected:
            disposition = self._rejected(envelope, rejected.reasons)
            self._count(envelope, disposition)
            log.warning(
                "message.rejected",
                stage=rejected.stage,
                reasons=[r.describe() for r in rejected.reasons[:5]],
                ms=round((time.perf_counter() - started) * 1000, 2),
                **envelope.log_context(),
            )
            return disposition
        disposition = self._accepted(envelope)
        self._count(envelope, disposition)
        # The disposition's context is the envelope's log context, already built once.
        log.info("message.accepted", ms=round((time.perf_counter() - started) * 1000, 2), **disposition.context)
        return disposition

    @staticmethod
    def _count(envelope: Envelope, disposition: Disposition) -> None:
        type_name = envelope.message_type.name if envelope.message_type else "unknown"
        metrics.MESSAGES.labels(type_name, disposition.outcome).inc()
        for reason in disposition.reasons[:1]:
            metrics.REJECTIONS.labels(reason.stage, reason.code).inc()
        if envelope.decision is not None and disposition.outcome == ACCEPTED:
            for route in envelope.decision.route_ids:
                metrics.ROUTED.labels(type_name, route).inc()

    def _receipt(
        self,
        envelope: Envelope,
        receiver: str,
        status: str,
        reasons: tuple[Reason, ...],
        format_name: str | None = None,
        via: str | None = None,
    ) -> Publication:
        """The signed receipt for receiver (in format_name, else the envelope's own), in its mailbox, or in that
        of the peer e-port (via) that relayed its message."""
        deliveries = envelope.decision.deliveries if envelope.decision and status == ACCEPTED else ()
        kind = "receipt" if format_name is None else "format-receipt"
        receipt_id = derived_id(kind, receiver, envelope.message_id or "", envelope.digest, status)
        facts = ReceiptFacts(
            receipt_id=receipt_id,
            platform_id=self.config.platform.id,
            node_id=self.config.platform.node_id,
            receiver=receiver,
            status=status,
            digest=envelope.digest,
            received_at=envelope.inbound.received_at,
            config_version=self.config.version,
            orig_message_id=envelope.message_id,
            orig_message_type=envelope.message_type.name if envelope.message_type else None,
            deliveries=deliveries,
            reasons=reasons,
            carrier=envelope.carrier,
            orig_root=etree.QName(envelope.message_type.root).localname if envelope.message_type else None,
        )
        answer = receipt_format(format_name or answering_format(envelope, receiver))
        # The receipt was built just now for this message alone, so it is signed without a copy.
        document = self.signer.sign(answer.build(facts), in_place=True)
        body = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
        headers = {
            f"{HEADER}kind": kind,
            f"{HEADER}status": status,
            f"{HEADER}orig-digest": envelope.digest,
            f"{HEADER}config-version": self.config.version,
        }
        if envelope.message_id:
            headers[f"{HEADER}orig-message-id"] = envelope.message_id[:MAX_ID_HEADER]
        if via is not None:
            headers[f"{HEADER}relayed-for"] = receiver
        return Publication(
            MAILBOX_EXCHANGE,
            via or receiver,
            body,
            message_id=receipt_id,
            correlation_id=(envelope.message_id or envelope.inbound.message_id or "")[:MAX_ID_HEADER] or None,
            type=answer.name,
            headers=headers,
        )

    def _accepted(self, envelope: Envelope) -> Disposition:
        base_headers = {
            f"{HEADER}kind": "forward",
            f"{HEADER}message-type": envelope.message_type.name,
            f"{HEADER}sender": envelope.sender.id,
            f"{HEADER}orig-message-id": envelope.message_id[:MAX_ID_HEADER],
            f"{HEADER}orig-digest": envelope.digest,
            f"{HEADER}config-version": self.config.version,
        }
        if envelope.answers:
            base_headers[f"{HEADER}answers"] = envelope.answers[:MAX_ID_HEADER]
        publications = []
        # The transport's shape of each copy the stages decided: an AMQP publication to the receiver's mailbox.
        for copy in envelope.copies:
            headers = dict(base_headers, **{f"{HEADER}route": copy.route, f"{HEADER}envelope": copy.envelope})
            if copy.addressee is not None:
                headers[f"{HEADER}addressee"] = copy.addressee  # the receiver the peer e-port hosts
            if copy.approval is not None:
                headers[f"{HEADER}approved-by"] = copy.approval.by
                headers[f"{HEADER}approval-ref"] = copy.approval.ref
            publications.append(
                Publication(
                    MAILBOX_EXCHANGE,
                    copy.to,
                    copy.body,
                    message_id=copy.document_id,
                    correlation_id=envelope.message_id[:MAX_ID_HEADER],
                    type=envelope.message_type.name,
                    headers=headers,
                )
            )
        publications.append(self._receipt(envelope, envelope.sender.id, ACCEPTED, (), via=envelope.sender.relayed_by))
        return Disposition(ACCEPTED, tuple(publications), context=envelope.log_context())

    def failed(self, inbound: Inbound, error: Exception, deliveries: int) -> Disposition:
        """Settle a message the pipeline failed on at every delivery: a dead letter and a rejection receipt."""
        envelope = Envelope(inbound)
        # Best effort, only to name the message id in the receipt: the failure may lie in these stages too.
        with contextlib.suppress(Exception):
            for stage, _ in self.stages:
                if stage.name not in ("parse", "peer-receipt", "unwrap", "identify"):
                    break
                stage(envelope)
        reason = Reason(
            "exchange",
            "processing-failed",
            f"the exchange failed to process this message at each of its {deliveries} deliveries "
            f"({type(error).__name__}); it is kept in the dead-letter queue, where the operators can "
            "replay it once the fault is corrected",
        )
        disposition = self._rejected(envelope, [reason])
        self._count(envelope, disposition)
        log.error("message.failed", deliveries=deliveries, error=repr(error)[:500], **envelope.log_context())
        return disposition

    def _rejected(self, envelope: Envelope, reasons: list[Reason]) -> Disposition:
        reasons = tuple(reasons)
        inbound = envelope.inbound
        if envelope.carrier is None and envelope.tree is None:
            # Refused unparsed: a message in an envelope is still answered in that envelope's receipt format.
            envelope.carrier = sniff_carrier(self.config.envelopes, inbound.body)
        if envelope.message_id is None and envelope.message_type is not None:
            # Read from the unverified document only so the sender can match the receipt to what it sent;
            # nothing is decided on it.
            with contextlib.suppress(FieldError):
                envelope.message_id = envelope.message_type.message_id(envelope.tree.getroot())
        # The exchange's names and the broker's dead-lettering record are theirs alone: `exchanger dead` tells
        # a letter the pipeline wrote from one the broker dead-lettered by the absence of the latter.
        headers = storable_headers(
            {k: v for k, v in (inbound.headers or {}).items() if not str(k).startswith((HEADER, *BROKER_DEATH_HEADERS))}
        )
        # The receipt goes to whoever the broker authenticated, never to a sender the document merely claims.
        connected = envelope.connected_as or connection_identity(inbound, self.config.registry, self.config.broker.daemon_user)
        replays = (inbound.headers or {}).get(REPLAYS)
        if inbound.user_id == self.config.broker.daemon_user and isinstance(replays, int):
            # Only the daemon's own replays may carry a count; a participant's header saying so is dropped.
            headers[REPLAYS] = replays
        headers.update(
            {
                f"{HEADER}stage": reasons[0].stage,
                f"{HEADER}reason": reasons[0].describe()[:1000],
                f"{HEADER}reasons": reasons_header(reasons),
                f"{HEADER}digest": envelope.digest,
                DEAD_LETTER_ID: derived_id("dead-letter", envelope.digest, repr(inbound.received_at))[:12],
                f"{HEADER}received-at": int(inbound.received_at * 1000),
                f"{HEADER}config-version": self.config.version,
            }
        )
        if connected is not None or inbound.user_id:
            headers[f"{HEADER}user-id"] = connected.amqp_user if connected is not None else inbound.user_id
        if envelope.message_id:
            headers[f"{HEADER}orig-message-id"] = envelope.message_id[:MAX_ID_HEADER]
        publications = [
            Publication(
                DEAD_EXCHANGE,
                "",
                inbound.body,
                message_id=inbound.message_id,
                type=envelope.message_type.name if envelope.message_type else None,
                headers=headers,
                content_type="application/octet-stream",
            )
        ]
        if connected is not None and not envelope.unanswered:
            receiver, via = relayed_receiver(envelope, connected, self.config.registry)
            publications.append(self._receipt(envelope, receiver, REJECTED, reasons, via=via))
            format_name = format_receipt(envelope, receiver, reasons)
            if format_name is not None:
                publications.append(self._receipt(envelope, receiver, REJECTED, reasons, format_name, via=via))
        return Disposition(REJECTED, tuple(publications), reasons, context=envelope.log_context())


def relayed_receiver(envelope: Envelope, connected, registry) -> tuple[str, str | None]:
    """Whom a rejection answers: the connection, or, for a message a peer relayed, the sender the peer's signed
    envelope names, through the peer's mailbox (the peer's signature vouches for the name, not for the message)."""
    carrier = envelope.carrier
    signer = carrier.signer if carrier is not None else None
    if connected.external and signer is not None and signer.id == connected.id and carrier.sender:
        if carrier.sender != connected.id and carrier.sender not in registry:
            return carrier.sender, connected.id
    return connected.id, None


DXP_PARTY_ID = 16  # a DxpRep names whom it answers in at most 16 characters


def answering_format(envelope: Envelope, receiver: str) -> str:
    """The receipt format that answers this message: its envelope's, else the exchange's own.

    A receiver DXP cannot name (over 16 characters) gets the exchange's own receipt rather than none.
    """
    carrier = envelope.carrier
    if carrier is None:
        return "PlatformReceipt"
    if carrier.format.receipt == "DxpRep" and len(receiver) > DXP_PARTY_ID:
        return "PlatformReceipt"
    return carrier.format.receipt


def format_receipt(envelope: Envelope, receiver: str, reasons: tuple[Reason, ...]) -> str | None:
    """The format receipt owed besides the envelope's own, or None.

    Owed when the message violates its type's schema, its type names one (``format_receipt`` in the
    catalogue) and it came in an envelope: the format receipt travels back in a DxpMsg, which names
    its receiver in at most 16 characters.
    """
    message_type = envelope.message_type
    if message_type is None or message_type.format_receipt is None:
        return None
    if envelope.carrier is None or envelope.carrier.format.shape != "dxp":
        return None
    if not reasons or reasons[0].stage != "validate" or len(receiver) > DXP_PARTY_ID:
        return None
    return message_type.format_receipt


def checking_stages(config: Config) -> list[Stage]:
    """The stages that establish what a message is and who sent it, as the daemon and `routes explain` run them."""
    parse = Parse(config.limits.max_message_bytes, config.limits)
    verify = Verify.for_config(config)
    return [
        parse,
        Unwrap(config.envelopes, verify, parse),
        Identify(config.catalogue),
        Validate(),
        verify,
        Authenticate.for_config(config),
    ]


def build_pipeline(config: Config, signer: Signer | None = None, receipts: AcceptedReceipts | None = None) -> Pipeline:
    """Assemble the stages for one configuration version; everything expensive is built here, once."""
    signer = signer or Signer(config.platform.key_path, config.platform.certificate_path, config.signatures)
    checking = checking_stages(config)
    # Only an exchange with peer e-ports takes receipts from one: the others' pipelines are unchanged.
    peers = any(participant.external for participant in config.registry)
    verify = next(stage for stage in checking if stage.name == "verify")
    receipts_from_peers = (
        [PeerReceipts.for_config(config, verify)] if peers else []
    )
    stages: list[Stage] = [
        checking[0],
        *receipts_from_peers,
        *checking[1:],
        *([Deduplicate(receipts)] if receipts is not None else []),
        Route(config.table, config.registry, config.platform.id),
        Sign(signer, config.version, config.envelopes, config.registry, config.platform.id),
    ]
    return Pipeline(config, stages, signer)
