"""``python -m bench``: the benchmark (see bench/suite.py and bin/bench)."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
