"""The message log: every message's life, append-only, hash-chained and signed at checkpoints.

Import the parts from their modules (``exchanger.journal.recorder`` for the daemon,
``exchanger.journal.store`` for the commands); this package imports nothing itself, so the
configuration loader can use ``exchanger.journal.period`` without pulling in the pipeline.
"""
