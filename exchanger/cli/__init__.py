"""The ``exchanger`` command line."""
