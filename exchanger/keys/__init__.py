"""Keys of the exchange: the demo PKI and loading of keys and certificates."""

from __future__ import annotations

from exchanger.keys.material import fingerprint, load_certificate, load_private_key
from exchanger.keys.pki import init_demo_pki, issue_certificate

__all__ = ["fingerprint", "init_demo_pki", "issue_certificate", "load_certificate", "load_private_key"]
