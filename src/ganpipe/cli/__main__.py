"""`python -m ganpipe.cli ...`: the `ganpipe` command with this Python (how the tests and benchmarks call it)."""
import sys

from ganpipe.cli import main

sys.exit(main())
