"""Signatures per CPU-second: the exchange's own sign and verify path for RSA-2048, ECDSA P-256 and SM2/SM3.

What is timed is what the daemon does per message: `Signer.sign` (c14n, digest, signature) and
`Verifier.verify` (profile checks, c14n, digest, signature check) over one 2 KB declaration, each in a
loop for a fixed CPU time. Rates are per CPU-second of this process (`time.process_time`), so a busy
shared machine lowers them less than wall-clock rates. Run alone with `python -m bench.signatures`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from lxml import etree

from exchanger.dsig.signer import Signer
from exchanger.dsig.verifier import Verifier
from exchanger.keys import init_demo_pki, load_certificate

ALGORITHMS = (("rsa", "RSA-2048"), ("ec", "ECDSA P-256"), ("sm2", "SM2/SM3 (GACC sm2-sm3)"))
DOCUMENT = Path(__file__).resolve().parents[1] / "samples" / "customs-declaration" / "valid.xml"


def _rate(operation, seconds: float) -> float:
    """Operations per CPU-second over about ``seconds`` of CPU time."""
    done = 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        operation()
        done += 1
    return done / spent


def measure(seconds: float = 2.0, repeats: int = 3) -> dict:
    """Sign and verify rates per algorithm, the median of ``repeats`` runs of ``seconds`` CPU each."""
    document = etree.fromstring(DOCUMENT.read_bytes())
    for signature in document.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        signature.getparent().remove(signature)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for algorithm, label in ALGORITHMS:
            keys_dir = Path(scratch) / algorithm
            init_demo_pki(keys_dir, [("ent-a", "Enterprise A")], algorithm=algorithm)
            signer = Signer(keys_dir / "ent-a" / "key.pem", keys_dir / "ent-a" / "cert.pem")
            certificates = [load_certificate(keys_dir / "ent-a" / "cert.pem")]
            verifier = Verifier()
            signed = signer.sign(document)
            verifier.verify(signed, certificates)  # the measured path accepts what it is given
            sign = [_rate(lambda: signer.sign(document), seconds) for _ in range(repeats)]
            verify = [_rate(lambda: verifier.verify(signed, certificates), seconds) for _ in range(repeats)]
            results[algorithm] = {
                "label": label,
                "signature_method": signer.signature_method,
                "sign_per_cpu_second": round(statistics.median(sign)),
                "verify_per_cpu_second": round(statistics.median(verify)),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the rates as a table, or as JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per figure, the median kept (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    results = measure(args.seconds, args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'algorithm':<26} {'sign/s':>8} {'verify/s':>9}")
    for entry in results.values():
        print(f"{entry['label']:<26} {entry['sign_per_cpu_second']:>8,} {entry['verify_per_cpu_second']:>9,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
