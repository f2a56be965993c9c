"""Publisher-confirm bookkeeping: an inbound delivery is settled only when all its publications are confirmed."""

from __future__ import annotations

from exchanger.transport.backoff import Backoff
from exchanger.transport.confirms import ConfirmTracker, Settlement


def _publish(tracker, settlement, *names):
    return [tracker.published(settlement, name, ("x", name, "id")) for name in names]


def test_settled_only_when_every_publication_is_acked():
    tracker = ConfirmTracker()
    first, second = Settlement(1, ()), Settlement(2, ())
    _publish(tracker, first, "customs", "receipt")
    _publish(tracker, second, "tax")
    assert tracker.confirmed(1, multiple=False, ok=True) == []
    # One "multiple" ack covers the rest of the first and all of the second.
    assert tracker.confirmed(3, multiple=True, ok=True) == [first, second]
    assert not first.failed and not second.failed and len(tracker) == 0


def test_nacked_and_returned_publications_are_failures_to_retry():
    tracker = ConfirmTracker()
    settlement = Settlement(7, ())
    _publish(tracker, settlement, "customs", "ciq", "receipt")
    tracker.returned(("x", "ciq", "id"))  # unroutable: the broker still acks it afterwards
    tracker.confirmed(2, multiple=True, ok=True)
    tracker.confirmed(3, multiple=False, ok=False)
    assert settlement.settled
    assert settlement.failed == ["ciq", "receipt"]


def test_a_return_marks_the_oldest_matching_publication_only():
    tracker = ConfirmTracker()
    old, new = Settlement(1, ()), Settlement(2, ())
    _publish(tracker, old, "customs")
    _publish(tracker, new, "customs")
    tracker.returned(("x", "customs", "id"))
    tracker.confirmed(2, multiple=True, ok=True)
    assert old.failed == ["customs"] and new.failed == []


def test_abandon_forgets_everything_pending():
    tracker = ConfirmTracker()
    settlement = Settlement(1, ())
    _publish(tracker, settlement, "a", "b")
    assert tracker.abandon() == [settlement]
    assert len(tracker) == 0 and tracker.confirmed(2, multiple=True, ok=True) == []


def test_backoff_is_capped_and_resets():
    backoff = Backoff(initial=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert max(delays[5:]) > 2.0  # it did grow up to the cap
    backoff.reset()
    assert backoff.next_delay() <= 0.5
