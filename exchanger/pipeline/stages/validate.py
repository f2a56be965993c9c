"""Stage 3: validate against the message type's compiled XSD."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected

MAX_REPORTED = 20


class Validate:
    """XSD validation; the first violations are reported with their line and, when few, element path.

    At most MAX_REPORTED error objects are built (plus what one re-read slice holds): a document with a
    flood of errors costs the same as one with a handful.
    """

    name = "validate"

    def __call__(self, envelope: Envelope) -> None:
        found = envelope.message_type.schema.capped_violations(envelope.tree, envelope.body, MAX_REPORTED)
        if found.violations:
            reasons = [Reason(self.name, "xsd", v.message, line=v.line, path=v.path) for v in found.violations]
            if found.more:
                reasons.append(
                    Reason(self.name, "xsd", f"more violations follow; only the first {MAX_REPORTED} are reported")
                )
            raise Rejected(reasons)
