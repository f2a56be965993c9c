"""``bin/bench``'s command line: which measurements to run, and where their results go."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

from bench import hostile, profile, report, table
from bench.profiles import PROFILES
from bench.suite import HERE, Run


def main(argv: list[str] | None = None) -> int:
    """Run the measurements asked for (or none with --report-only), then print the table and write the results."""
    parser = argparse.ArgumentParser(
        prog="bin/bench",
        description="Throughput, latency and memory of the exchange against the transport ceiling, the compute "
                    "limit and a naive peer, on the local RabbitMQ.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", const="quick", dest="profile", help="about 5 minutes")
    group.add_argument("--full", action="store_const", const="full", dest="profile",
                       help="30 to 40 minutes: 100,000-message backlog, 3 x 60 s of latency, more of everything")
    parser.add_argument("--messages", type=int, help="documents in the headline drain (default: by profile)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the headline run (default 2)")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md, sweeps.png and results.json go")
    parser.add_argument("--headline", action="store_true",
                        help="only the headline measurements (in-process, ceiling, drains, latency, both peers), the "
                             "prefetch sweep and the profile: about half the time of the profile chosen")
    parser.add_argument("--profile", action="store_true", dest="profile_only",
                        help="only the profile of one worker in the drain (py-spy and callgrind, about 5 minutes): "
                             "bench/profile/worker.{svg,txt,json}")
    parser.add_argument("--report-only", action="store_true", help="rebuild the table, RESULTS.md and chart from results.json")
    parser.add_argument("--hostile", action="store_true",
                        help="only the hostile-input cost section (a few minutes, no broker traffic); kept with the "
                             "other results in results.json and RESULTS.md")
    args = parser.parse_args(argv)
    # Clean up (vhost, broker users, temporary keys) when stopped, even when started in the background.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.profile_only:
        profile.run(args.messages or 3000, 300, out / "profile", "worker")
        return 0
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
    elif args.hostile:
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None
        measured = hostile.run(print, quick=args.profile == "quick")
        measured["before"] = hostile.BEFORE
        print(hostile.markdown(measured))
        if results is None:
            (out / "hostile.json").write_text(json.dumps(measured, indent=1))
            print(f"written: {out / 'hostile.json'} (no results.json to add it to)")
            return 0
        results["hostile"] = measured
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    else:
        profile = PROFILES[args.profile or "default"]
        if args.messages:
            profile = replace(profile, messages=args.messages)
        results = Run(profile, args.workers, headline_only=args.headline).run(out)
        results["headline_only"] = args.headline
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(table.text(results))
    report.write(results, out)
    print(f"\nwritten: {out / 'RESULTS.md'}, {out / 'sweeps.png'}, {out / 'results.json'}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
