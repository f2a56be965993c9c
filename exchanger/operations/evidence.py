"""Evidence for one message: its documents, its records, the chain path to a signed checkpoint, the certificates."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from exchanger.errors import ExchangerError
from exchanger.journal.chain import content_digest
from exchanger.journal.checkpoint import Checkpoint, Checkpointer, fingerprint
from exchanger.journal.period import stamp
from exchanger.journal.records import DELIVERED, RECEIPT, RECEIVED, Record
from exchanger.journal.store import Store
from exchanger.keys.x509_signing import issued_by
from exchanger.operations import evidence_format as fmt
from exchanger.operations.actor import Operator, record_action
from exchanger.operations.evidence_verify import BundleVerdict, Check, verify_bundle
from exchanger.operations.messages import trace

__all__ = ["BundleVerdict", "Check", "EvidenceError", "export_bundle", "verify_bundle"]


class EvidenceError(ExchangerError):
    """No bundle can be made for the message as asked: unknown, ambiguous, or not yet under a signed checkpoint."""


def export_bundle(store: Store, config, message_id: str, sender: str | None, operator: Operator, *,
                  sign_checkpoint: bool = False) -> bytes:
    """The evidence bundle (zip bytes) of one message; the export is recorded as the operator's action.

    Only records a signed checkpoint covers go in; later ones are named in the manifest as left
    out. With none covered, ``sign_checkpoint`` signs one at the log's head now (as ``log prune``
    does) instead of refusing.
    """
    records = _records(store, message_id, sender)
    sender = records[0].sender or sender
    checkpoints = store.checkpoints()
    if not _covered(records, checkpoints) and sign_checkpoint:
        checkpoints.append(_sign_now(store, config))
    covered = _covered(records, checkpoints)
    if not covered:
        every = f"every {config.journal.checkpoint_records} records or {config.journal.checkpoint_seconds} s"
        raise EvidenceError(
            f"no signed checkpoint covers message {message_id} yet (its records end at seq {records[-1].seq}); "
            f"the daemon signs one {every}: export again then, or sign one now with --sign-checkpoint"
        )
    notes = [f"left out: seq {r.seq} ({r.kind}), written after the last signed checkpoint"
             for r in records if r.seq not in covered]
    included = [r for r in records if r.seq in covered]
    used = sorted({covered[r.seq].seq for r in included})
    chain = _chain_path(store, included, {c.seq: c for c in checkpoints if c.seq in used}, covered)
    documents, missing = _documents(store, included, config.journal.keep_originals)
    certificates = _certificates(config, sender)
    manifest = {
        "format": fmt.FORMAT,
        # A message refused before its id was read is known by the SHA-256 of its bytes.
        "message_id": records[0].message_id,
        "digest": records[0].digest,
        "sender": sender,
        "platform": config.platform.id,
        "exported_at": stamp(),
        "exported_by": {"operator": operator.name, "via": operator.via},
        "records": [r.seq for r in included],
        "checkpoints": used,
        "documents": [{"file": name, "seq": seq, "sha256": hashlib.sha256(body).hexdigest()}
                      for name, seq, body in documents],
        "certificates": sorted(certificates),
        "notes": notes + missing,
    }
    payload = _zip(manifest, included, chain, [c for c in checkpoints if c.seq in used], documents, certificates)
    record_action(
        store, operator, "evidence-export", message_id=message_id, sender=sender, message_type=records[0].message_type,
        details={"bundle_sha256": hashlib.sha256(payload).hexdigest(), "records": len(included), "checkpoints": used},
    )
    return payload


def _records(store: Store, message_id: str, sender: str | None) -> list[Record]:
    found = trace(store, message_id, sender).records
    if not found:
        raise EvidenceError(f"no message {message_id!r}{f' from {sender}' if sender else ''} in the message log")
    senders = sorted({r.sender for r in found if r.sender})
    if len(senders) > 1:
        raise EvidenceError(f"several participants sent a message {message_id!r} ({', '.join(senders)}): "
                            "name one with --sender")
    return found


def _covered(records: list[Record], checkpoints: list[Checkpoint]) -> dict[int, Checkpoint]:
    """For each record, the first signed checkpoint at or after it (records past the last one have none)."""
    ordered = sorted(checkpoints, key=lambda c: c.seq)
    covered = {}
    for record in records:
        checkpoint = next((c for c in ordered if c.seq >= record.seq), None)
        if checkpoint is not None:
            covered[record.seq] = checkpoint
    return covered


def _sign_now(store: Store, config) -> Checkpoint:
    from exchanger.dsig.signer import Signer

    signer = Signer(config.platform.key_path, config.platform.certificate_path, config.signatures)
    checkpoint = Checkpointer(signer, config.platform.id).sign(*store.head())
    store.add_checkpoint(checkpoint)
    return checkpoint


def _chain_path(store: Store, records: list[Record], checkpoints: dict[int, Checkpoint],
                covered: dict[int, Checkpoint]) -> list[dict]:
    """Per checkpoint: from the first of the message's records it covers up to it, the others' content digests.

    A content digest is the SHA-256 of a record's canonical body: it links the chain and reveals
    nothing of the record (another message's sender, id or details stay out of the bundle).
    """
    own = {r.seq for r in records}
    segments = []
    for seq, checkpoint in sorted(checkpoints.items()):
        start = min(r.seq for r in records if covered[r.seq].seq == seq)
        contents = {}
        for other in store.records(after_seq=start - 1):
            if other.seq > seq:
                break
            if other.seq not in own:
                contents[str(other.seq)] = content_digest(other).hex()
        segments.append({"checkpoint": seq, "from": start, "contents": contents})
    return segments


def _documents(store: Store, records: list[Record], keep_originals: str) -> tuple[list[tuple[str, int, bytes]], list[str]]:
    """The kept bytes of the message's original, copies and receipts; and a note for each one not kept."""
    documents, missing = [], []
    for record in records:
        details = record.details
        who = (record.receivers or "").strip(",").replace(",", "+") or "unknown"
        if record.kind == RECEIVED:
            name, named = "original.xml", record.digest
        elif record.kind == DELIVERED:
            name, named = f"copy-{record.seq}-{who}.xml", details.get("copy_sha256")
        elif record.kind == RECEIPT:
            name, named = f"receipt-{record.seq}-{who}.xml", details.get("receipt_sha256")
        else:
            continue
        body = store.original(record.seq)
        if body is None and record.kind == RECEIPT and named and record.sender and record.message_id:
            body = store.accepted_receipt(record.sender, record.message_id)
        if body is not None and hashlib.sha256(body).hexdigest() == named:
            documents.append((fmt.DOCUMENTS + name, record.seq, body))
            continue
        what = {RECEIVED: "the original", DELIVERED: "this copy", RECEIPT: "this receipt"}[record.kind]
        digest = f"; its SHA-256 {named} is in the record" if named else ""
        missing.append(f"not kept: {what} (seq {record.seq}, {record.kind} {who}) under journal.keep_originals: "
                       f"{keep_originals}{digest}")
    return documents, missing


def _certificates(config, sender: str | None) -> dict[str, bytes]:
    """The platform's certificate, the sender's, and each trust anchor that issued one of them, as PEM."""
    chosen: dict[str, x509.Certificate] = {}
    if config.platform.certificate is not None:
        chosen[fmt.PLATFORM_CERTIFICATE] = config.platform.certificate
    participant = config.registry.get(sender) if sender else None
    for index, certificate in enumerate(participant.certificates if participant is not None else (), 1):
        chosen[f"{fmt.CERTIFICATES}sender-{index}.pem"] = certificate
    anchors = _issuers(chosen.values(), config.trust.anchors if config.trust is not None else ())
    for index, anchor in enumerate(anchors, 1):
        chosen[f"{fmt.CERTIFICATES}ca-{index}.pem"] = anchor
    return {name: certificate.public_bytes(Encoding.PEM) for name, certificate in chosen.items()}


def _issuers(certificates: Iterable[x509.Certificate], anchors: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    found, seen = [], set()
    certificates = list(certificates)
    for anchor in anchors:
        if fingerprint(anchor) not in seen and any(issued_by(c, anchor) for c in certificates):
            seen.add(fingerprint(anchor))
            found.append(anchor)
    return found


def _zip(manifest: dict, records: list[Record], chain: list[dict], checkpoints: list[Checkpoint],
         documents: list[tuple[str, int, bytes]], certificates: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(fmt.README, fmt.README_TEXT)
        bundle.writestr(fmt.MANIFEST, fmt.dumps(manifest))
        bundle.writestr(fmt.RECORDS, fmt.dumps([fmt.record_to_json(r) for r in records]))
        bundle.writestr(fmt.CHAIN, fmt.dumps(chain))
        bundle.writestr(fmt.CHECKPOINTS, fmt.dumps([fmt.checkpoint_to_json(c) for c in checkpoints]))
        for name, _seq, body in documents:
            bundle.writestr(name, body)
        for name, pem in certificates.items():
            bundle.writestr(name, pem)
    return buffer.getvalue()
