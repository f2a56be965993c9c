"""Run the command line as ``python -m exchanger``."""

from exchanger.cli.main import main

main()
