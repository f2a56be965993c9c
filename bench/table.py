"""The benchmark's one table laid out: as plain text for the terminal and as Markdown for RESULTS.md."""

from __future__ import annotations

from bench.readings import interference
from bench.rows import rows


def text(results: dict) -> str:
    """The table as plain text in aligned columns, under a line on the machine and its other work."""
    header = ("", "measure", "result", "detail")
    body = rows(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(3)]
    lines = []
    machine = results["machine"]
    lines.append(f"exchanger benchmark, profile {results['profile']}: {machine['cores']} cores {machine['cpu']}, "
                 f"{machine['memory_gb']} GB, Python {machine['python']}, RabbitMQ {machine['rabbitmq']}; "
                 f"load average {machine['load_average_at_start']} at start, {machine.get('load_average_at_end')} at end; "
                 f"{results.get('seconds', 0) / 60:.1f} min")
    other = interference(results)
    if other is not None:
        quiet = results.get("quiet", {})
        lines.append(f"other work on the machine while measuring: {other:.2f} cores on average "
                     f"(CPU time of processes outside the benchmark; the results are for what was left); "
                     f"{quiet.get('waited_seconds', 0):.0f}s spent waiting for quiet moments, "
                     f"{quiet.get('not_quiet', 0)} of {quiet.get('checks', 0)} measurements started without one")
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    lines.append(fmt.format(*header))
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    previous = None
    for row in body:
        section = row[0] if row[0] != previous else ""
        previous = row[0]
        lines.append(fmt.format(section, row[1], row[2], row[3]).rstrip())
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The table in Markdown for RESULTS.md, results in bold."""
    out = ["| | measure | result | detail |", "|---|---|---|---|"]
    previous = None
    for section, measure, result, detail in rows(results):
        shown = section if section != previous else ""
        previous = section
        out.append(f"| {shown} | {measure} | **{result}** | {detail} |".replace("**n/a**", "n/a"))
    return "\n".join(out)

