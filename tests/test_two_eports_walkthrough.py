"""README, "Connecting to China E-Port and to other e-ports": bin/two-eports runs as written on the real broker."""

from __future__ import annotations

import os
import subprocess

import pytest

from exchange_fixture import PROJECT

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_the_two_eports_walkthrough_runs_as_written(broker, tmp_path) -> None:
    tag = broker.unique("w")
    for side in ("a", "b"):
        broker._vhosts.append(f"eport-{side}-{tag}")  # deleted with the run's sandbox
        for user in ("exchanger", "ent-a", "customs", "eport-a", "eport-b"):
            broker.track_user(f"{tag}-{side}-{user}")
    # The broker admin's URL without its virtual host: the script adds each e-port's.
    env = dict(os.environ, TWO_EPORTS_TAG=tag, EXCHANGER_ADMIN_URL=broker.base_url.rsplit("/", 1)[0])
    done = subprocess.run([str(PROJECT / "bin" / "two-eports"), str(tmp_path / "demo")], env=env,
                          capture_output=True, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "-> customs at the peer e-port eport-b by declarations-to-customs-at-b" in out
    assert "CustomsDeclaration ENTA-DEC-20240315-000001 from ent-a via route relayed-declarations in a dxp envelope" in out
    assert "receipt accepted for ENTA-DEC-20240315-000001 (DxpRep 0000) -> delivered to customs" in out
    assert "DxpRep" in out and "from eport-b via route receipt-from-eport-b" in out
    assert "AgencyReceipt CUS-RCPT-20240315-004211 from customs via route receipts-from-customs-at-b" in out
    assert "over the link exchanger.link.eport-b" in out
    assert "relayed by the peer e-port eport-a, judged in its trust domain" in out
    # The script's end stops both daemons: none is left running on the walkthrough's virtual hosts.
    left = subprocess.run(["pgrep", "-f", f"/eport-[ab]-{tag} run"], capture_output=True, text=True)
    assert left.stdout == "", f"daemons left running: {left.stdout}"
