"""bench/RESULTS.md: the machine, the method, the table, the targets and the sections, with the analysis written
by hand kept from the file already there; the chart of the sweeps beside it (bench/sweeps.png)."""

from __future__ import annotations

from pathlib import Path

from bench import chart, hostile
from bench.sections import cpu_markdown, interference_text, profile_markdown, sizes_markdown, stages_markdown
from bench.table import markdown
from bench.targets import targets

ANALYSIS = "## Analysis"


def write(results: dict, out: Path) -> None:
    """Write RESULTS.md and sweeps.png into out, keeping the analysis already in RESULTS.md."""
    chart.draw(results, out / "sweeps.png")
    path = out / "RESULTS.md"
    kept = ""
    if path.exists():
        text = path.read_text()
        if ANALYSIS in text:
            kept = text[text.index(ANALYSIS):]
    m = results["machine"]
    libraries = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    w = results["workers"]
    target_lines = "\n".join(f"- {'met' if met else '**missed**'}: {target}: {how}" for target, met, how in targets(results))
    text = f"""# Benchmark results

Produced by `bin/bench{'' if results['profile'] == 'default' else ' --' + results['profile']}{' --headline' if results.get('headline_only') else ''}` on {m['date']}
(profile {results['profile']}, {results.get('seconds', 0) / 60:.1f} minutes). Raw numbers: `bench/results.json`;
chart of the sweeps: `bench/sweeps.png`.

**Machine:** {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']};
RabbitMQ {m['rabbitmq']} on the same cores; {libraries}. The broker, the exchange and the load generator share
the two cores. Load average {m['load_average_at_start']} at the start and {m.get('load_average_at_end')} at the end
(anything above what this run itself puts on the machine is other work sharing it). {interference_text(results)}

**How:** each measurement gets its own documents (distinct MessageIds, signed by the sender ahead of time) on
one RabbitMQ virtual host made for the run, with the bundled routes.yaml and catalogue on keys made for the
run. Exchanger throughput is the drain of a preloaded backlog through `exchanger run --workers {w}`, from the
first consume to the last copy and receipt confirmed into the mailboxes. The message log (SQLite) and info
logging are on, as configured by default.

## Results

{markdown(results)}

## Targets (issues 5 and 13)

{target_lines}

## Where the time goes

Per message, by stage. In-process: the pipeline alone, one core, no broker. Daemon: the
`exchanger_stage_seconds` histogram served on /metrics during the headline drain (wall time per stage
on the compute thread, so it includes waiting for the core and the GIL while the I/O thread, the
message-log writer and the broker run).

{stages_markdown(results)}

By message size (in-process, RSA-2048, one worker; ms per message):

{sizes_markdown(results)}

{profile_markdown(results)}

CPU seconds per drain, read from /proc (worker processes, the broker's Erlang VM, and every core of the machine):

{cpu_markdown(results)}

"""
    if results.get("hostile"):
        text += hostile.markdown(results["hostile"]) + "\n"
    path.write_text(text + (kept or f"{ANALYSIS}\n\n(none yet)\n"))

