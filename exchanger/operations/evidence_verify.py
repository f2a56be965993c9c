"""Checking an evidence bundle offline: digests, the chain path to each checkpoint, signatures, certificates."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from cryptography import x509

from exchanger.journal.chain import content_digest, link
from exchanger.journal.checkpoint import fingerprint, signature_problem
from exchanger.journal.records import Record
from exchanger.keys.x509_signing import issued_by
from exchanger.operations import evidence_format as fmt


@dataclass(frozen=True)
class Check:
    """One thing checked, whether it held, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass
class BundleVerdict:
    """Every check made on a bundle; ``ok`` only when all held."""

    checks: list[Check] = field(default_factory=list)
    message_id: str | None = None
    sender: str | None = None

    @property
    def ok(self) -> bool:
        """True when every check held (and there was at least one)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.ok]

    def add(self, name: str, ok: bool, detail: str) -> bool:
        """Note a check; returns whether it held."""
        self.checks.append(Check(name, ok, detail))
        return ok


class _Unreadable(Exception):
    """The bundle cannot be read as one: nothing further is checked."""


def verify_bundle(path: Path | str, trusted: list[x509.Certificate] | None = None) -> BundleVerdict:
    """Check a bundle with nothing but itself (and the CA certificates the checker trusts, when given)."""
    verdict = BundleVerdict()
    try:
        members = _read(Path(path))
        manifest = _json(members, fmt.MANIFEST)
        records = [fmt.record_from_json(value) for value in _json(members, fmt.RECORDS)]
        checkpoints = {c.seq: c for c in (fmt.checkpoint_from_json(v) for v in _json(members, fmt.CHECKPOINTS))}
        chain = _json(members, fmt.CHAIN)
    except (_Unreadable, ValueError, KeyError, TypeError) as exc:
        verdict.add("bundle", False, f"not a readable evidence bundle: {exc}")
        return verdict
    verdict.message_id, verdict.sender = manifest.get("message_id"), manifest.get("sender")
    verdict.add("bundle", manifest.get("format") == fmt.FORMAT and bool(records),
                f"format {manifest.get('format')!r}, {len(records)} record(s)")
    _check_records_concern_the_message(verdict, records, manifest.get("digest"))
    _check_chain(verdict, records, chain, checkpoints)
    platform = _certificate(members, fmt.PLATFORM_CERTIFICATE)
    for checkpoint in checkpoints.values():
        problem = signature_problem(checkpoint, [platform] if platform is not None else [])
        verdict.add("checkpoint signature", problem is None,
                    f"checkpoint at seq {checkpoint.seq} signed by {checkpoint.platform}"
                    + (f": {problem}" if problem else ", verified with the platform certificate"))
    _check_documents(verdict, members, manifest, {r.seq: r for r in records})
    _check_certificates(verdict, members, trusted)
    return verdict


def _read(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as bundle:
            infos = bundle.infolist()
            if len(infos) > fmt.MAX_MEMBERS or sum(i.file_size for i in infos) > fmt.MAX_TOTAL_BYTES:
                raise _Unreadable("it is larger than any bundle the exchange writes")
            members = {}
            for info in infos:
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts or info.file_size > fmt.MAX_MEMBER_BYTES:
                    raise _Unreadable(f"member {info.filename!r} is not one a bundle holds")
                members[info.filename] = bundle.read(info)
            return members
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise _Unreadable(f"{path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _json(members: dict[str, bytes], name: str):
    if name not in members:
        raise _Unreadable(f"{name} is missing")
    try:
        return json.loads(members[name])
    except ValueError as exc:
        raise _Unreadable(f"{name} is not JSON: {exc}") from exc


def _check_records_concern_the_message(verdict: BundleVerdict, records: list[Record], digest: str | None) -> None:
    def concerns(record: Record) -> bool:
        same = record.message_id == verdict.message_id if verdict.message_id else record.digest == digest
        return same and (not record.sender or record.sender == verdict.sender)

    strays = [r.seq for r in records if not concerns(r)]
    named = verdict.message_id or f"with SHA-256 {digest}"
    verdict.add("records", not strays,
                f"every record concerns message {named} from {verdict.sender}" if not strays
                else f"record(s) at seq {', '.join(map(str, strays))} concern another message")


def _check_chain(verdict: BundleVerdict, records: list[Record], chain: list, checkpoints: dict) -> None:
    """Recompute each record's hash from its content and the chain up to the signed hash of its checkpoint."""
    own = {r.seq: r for r in records}
    reached: set[int] = set()
    for segment in chain:
        start, end, contents = int(segment["from"]), int(segment["checkpoint"]), segment["contents"]
        checkpoint = checkpoints.get(end)
        if start not in own or checkpoint is None:
            verdict.add("chain", False, f"the path to seq {end} does not start at a record of the message or has no checkpoint")
            continue
        prev, broken = own[start].prev, None
        for seq in range(start, end + 1):
            if seq in own:
                content = content_digest(own[seq])
            elif str(seq) in contents:
                try:
                    content = bytes.fromhex(contents[str(seq)])
                except (TypeError, ValueError):
                    broken = f"the content digest given for seq {seq} is not hexadecimal"
                    break
            else:
                broken = f"the path has no content digest for seq {seq}"
                break
            digest = link(seq, prev, content)
            if seq in own and digest != own[seq].hash:
                broken = f"the record at seq {seq} ({own[seq].kind}) does not match its hash (altered)"
                break
            if seq in own:
                reached.add(seq)
            prev = digest
        if broken is None and prev != checkpoint.hash:
            broken = (f"the chain from seq {start} does not reach the hash the checkpoint at seq {end} signed "
                      "(a record or a digest of the path was altered)")
        verdict.add("chain", broken is None,
                    broken or f"seq {start} to {end}: every record's hash recomputed up to the signed checkpoint")
    unreached = sorted(set(own) - reached)
    if unreached:
        verdict.add("chain", False, f"record(s) at seq {', '.join(map(str, unreached))} are on no path to a checkpoint")


def _check_documents(verdict: BundleVerdict, members: dict[str, bytes], manifest: dict, records: dict[int, Record]) -> None:
    """Each document's SHA-256 is the one its (chained) record names: the digest column or the details."""
    listed = {entry["file"]: entry for entry in manifest.get("documents") or ()}
    present = {name for name in members if name.startswith(fmt.DOCUMENTS) and not name.endswith("/")}
    for name in sorted(present - set(listed)):
        verdict.add("document", False, f"{name} is in the bundle but named by no record")
    for name, entry in sorted(listed.items()):
        record = records.get(entry.get("seq"))
        if name not in members or record is None:
            verdict.add("document", False, f"{name}: missing, or its record seq {entry.get('seq')} is not in the bundle")
            continue
        details = record.details
        named = details.get("copy_sha256") or details.get("receipt_sha256") or record.digest
        actual = hashlib.sha256(members[name]).hexdigest()
        verdict.add("document", actual == named,
                    f"{name}: SHA-256 matches its {record.kind} record at seq {record.seq}" if actual == named
                    else f"{name}: SHA-256 {actual[:16]}… is not the {named and named[:16]}… its {record.kind} record "
                         f"at seq {record.seq} names (altered)")


def _certificate(members: dict[str, bytes], name: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(members[name]) if name in members else None
    except ValueError:
        return None


def _check_certificates(verdict: BundleVerdict, members: dict[str, bytes], trusted: list[x509.Certificate] | None) -> None:
    """Every certificate chains to a CA certificate of the bundle, itself one the checker trusts when given."""
    names = sorted(name for name in members if name.startswith(fmt.CERTIFICATES) and name.endswith(".pem"))
    loaded = {name: _certificate(members, name) for name in names}
    for name in (n for n, c in loaded.items() if c is None):
        verdict.add("certificate", False, f"{name} is not a PEM certificate")
    cas = [c for n, c in loaded.items() if c is not None and PurePosixPath(n).name.startswith("ca-")]
    now = datetime.now(timezone.utc)
    for ca in cas:
        known = trusted is None or fingerprint(ca) in {fingerprint(t) for t in trusted}
        source = "one you trust" if trusted is not None else "taken from the bundle: compare its fingerprint with your CA's"
        verdict.add("certificate", known and issued_by(ca, ca),
                    f"CA {ca.subject.rfc4514_string()} (SHA-256 {fingerprint(ca)[:16]}…): "
                    + (source if known else "not among the CA certificates given with --ca"))
    if loaded.get(fmt.PLATFORM_CERTIFICATE) is None:
        verdict.add("certificate", False, "the platform certificate is missing")
    for name, certificate in loaded.items():
        if certificate is None or certificate in cas:
            continue
        issuer = next((ca for ca in cas if issued_by(certificate, ca)), None)
        valid = certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        verdict.add("certificate", issuer is not None,
                    f"{name}: {certificate.subject.rfc4514_string()} "
                    + (f"issued by {issuer.subject.rfc4514_string()}" if issuer is not None else "issued by no CA in the bundle")
                    + ("" if valid else " (outside its validity period today)"))
