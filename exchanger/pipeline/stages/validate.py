"""Stage 3: validate against the message type's compiled XSD."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected

MAX_REPORTED = 20


class Validate:
    """XSD validation; every violation is reported with its line and element path."""

    name = "validate"

    def __call__(self, envelope: Envelope) -> None:
        violations = envelope.message_type.schema.violations(envelope.tree)
        if violations:
            reasons = [
                Reason(self.name, "xsd", v.message, line=v.line, path=v.path) for v in violations[:MAX_REPORTED]
            ]
            if len(violations) > MAX_REPORTED:
                reasons.append(Reason(self.name, "xsd", f"{len(violations) - MAX_REPORTED} more violations not shown"))
            raise Rejected(reasons)
