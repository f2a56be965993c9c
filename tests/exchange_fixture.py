"""A complete exchange configuration on a fresh demo PKI: the bundled routes and catalogue, keys in a temp dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from exchanger.config import Config, load_config
from exchanger.config.loader import read_identities
from exchanger.dsig.signer import Signer
from exchanger.keys.pki import init_demo_pki

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT.parent / "shared" / "corpus"
SAMPLES = PROJECT / "samples"
ROUTES = PROJECT / "routes.yaml"

# (sample, sender, destinations): where routes.yaml sends each bundled valid sample.
ROUTED_SAMPLES = [
    ("customs-declaration/valid.xml", "ent-a", ["customs"]),
    ("customs-declaration/valid-with-inspection.xml", "ent-a", ["customs", "ciq"]),
    ("inspection-declaration/valid.xml", "ent-a", ["ciq"]),
    ("inspection-certificate/valid.xml", "ciq", ["customs"]),
    ("cargo-manifest/valid.xml", "rail", ["customs", "terminal"]),
    ("export-rebate-data/valid.xml", "customs", ["tax"]),
    ("forex-verification/valid.xml", "ent-a", ["forex"]),
    ("agency-receipt/valid.xml", "customs", ["ent-a"]),
]


@dataclass
class Exchange:
    """The bundled configuration, bound to keys made for this test run."""

    config_path: Path
    keys_dir: Path
    config: Config

    def signer(self, participant: str) -> Signer:
        """The signer with a participant's demo key."""
        return Signer(self.keys_dir / participant / "key.pem", self.keys_dir / participant / "cert.pem")

    def signed(self, participant: str, path_or_bytes) -> bytes:
        """A document signed by a participant."""
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        return self.signer(participant).sign_bytes(data)

    def password(self, user: str) -> str:
        """A generated broker password."""
        return (self.keys_dir / user / "amqp-password").read_text().strip()


def write_config(directory: Path, keys_dir: Path, **overrides) -> Path:
    """Write the bundled routes.yaml into ``directory`` with absolute paths and optional top-level overrides."""
    data = yaml.safe_load(ROUTES.read_text())
    data["keys_dir"] = str(keys_dir)
    data["messages"] = str(PROJECT / data["messages"])
    data["envelopes"] = str(PROJECT / data["envelopes"])
    data.update(overrides)
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_exchange(directory: Path, algorithm: str = "rsa", user_prefix: str = "") -> Exchange:
    """Generate the demo PKI for every identity of the bundled configuration and load it.

    Broker users are global to a RabbitMQ node, so tests against a real broker give their
    participants' users a prefix of their own rather than take over the bundled names.
    """
    keys_dir = directory / "keys"
    overrides = {}
    if user_prefix:
        data = yaml.safe_load(ROUTES.read_text())
        for pid, spec in data["participants"].items():
            spec["amqp_user"] = f"{user_prefix}{pid}"
        data["broker"]["daemon_user"] = f"{user_prefix}exchanger"
        overrides = {"participants": data["participants"], "broker": data["broker"]}
    config_path = write_config(directory, keys_dir, **overrides)
    _, platform, participants, daemon_user = read_identities(config_path)
    init_demo_pki(keys_dir, [platform, *participants], algorithm=algorithm, daemon_user=daemon_user)
    return Exchange(config_path, keys_dir, load_config(config_path))
