"""Write key material so that no reader sees half a file and no secret is ever world-readable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a private key, a password), readable by its owner only."""
    write_atomically(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """Write a certificate or CRL, readable by everyone."""
    write_atomically(path, data, 0o644)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file so a reader never sees half a key, and a secret is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
