"""The exchange's benchmark: throughput, latency and memory against a transport ceiling, the compute
limit and a naive peer, with sweeps over workers, sizes, routes, participants and algorithms.

Modules: workload (signed documents), deployment (vhost, keys, configuration, topology), processes
(the daemon and the bridges as subprocesses), throughput (drain and latency through the broker),
stalls (the machine's own pauses), ceiling, inprocess, naive, machine, suite (the run); the results
read by readings and targets, laid out by rows and table, written by report (RESULTS.md, with sections)
and chart (sweeps.png).
Start it with bin/bench.
"""
