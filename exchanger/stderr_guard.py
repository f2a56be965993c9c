"""Keep the chatter of C libraries on file descriptor 2 out of the exchange's own log stream."""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

# Held while descriptor 2 points elsewhere and while a log line is written, so no line is lost to the swap.
_LOCK = threading.RLock()


@contextmanager
def silenced():
    """Send whatever C code writes to descriptor 2 to /dev/null for the duration of the block.

    GmSSL prints a trace line for every signature it refuses; forged signatures must not turn into a
    flood of log lines. Log lines written meanwhile by other threads wait for the lock instead of vanishing.
    """
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            # No descriptor 2 (a process started with it closed): nothing to keep quiet.
            yield
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


class GuardedStream:
    """A text stream whose writes wait while descriptor 2 is silenced; the log stream of the exchange."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write text once no silenced block is running."""
        with _LOCK:
            return self._stream.write(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        with _LOCK:
            self._stream.flush()

    def __getattr__(self, name: str):
        # isatty, fileno, encoding and the rest are the underlying stream's.
        return getattr(self._stream, name)
