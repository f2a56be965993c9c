"""Fixtures shared by the exchange's tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import amqp_url, broker, broker_vhost  # noqa: E402,F401  (fixtures for every module)

from exchanger.keys import init_demo_pki, issue_certificate

DEMO_PARTICIPANTS = (
    ("eport", "Electronic Port"),
    ("ent-a", "Enterprise A Trading"),
    ("ent-b", "Enterprise B Logistics"),
)
EC_PARTICIPANT = ("ent-ec", "Enterprise EC Shipping")


@dataclass(frozen=True)
class DemoPki:
    """Paths into a demo PKI made by init_demo_pki (RSA) plus one EC participant."""

    keys_dir: Path

    @property
    def ca_cert(self) -> Path:
        """The root CA certificate."""
        return self.keys_dir / "ca" / "cert.pem"

    def key(self, participant_id: str) -> Path:
        """A participant's private key."""
        return self.keys_dir / participant_id / "key.pem"

    def cert(self, participant_id: str) -> Path:
        """A participant's certificate."""
        return self.keys_dir / participant_id / "cert.pem"


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """Build one demo PKI for the whole test session."""
    keys_dir = tmp_path_factory.mktemp("pki") / "keys"
    init_demo_pki(keys_dir, DEMO_PARTICIPANTS)
    issue_certificate(keys_dir, *EC_PARTICIPANT, "ec")
    return DemoPki(keys_dir)


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory):
    """The bundled configuration on a fresh demo PKI, shared by the session."""
    from exchange_fixture import make_exchange

    return make_exchange(tmp_path_factory.mktemp("exchange"))


@pytest.fixture(scope="session")
def pipeline(exchange):
    """The daemon's pipeline for the bundled configuration."""
    from exchanger.pipeline import build_pipeline

    return build_pipeline(exchange.config)
