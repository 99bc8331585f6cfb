"""Run a stage with the project's Python when DVC started it with another one.

A globally installed `dvc`, or `.venv/bin/dvc` called without activating the venv, runs each stage's
`python stages/<name>.py` with whatever `python` is first on PATH, which may lack ganpipe and torch. Then the
stage is run again with the repository's .venv/bin/python (found beside stages/, or at $DVC_ROOT for
`dvc exp run --temp/--queue` copies); without one, it stops with one line saying what to run.
Standard library only: it runs before anything else can be imported.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def reexec(error: ModuleNotFoundError) -> None:
    roots = [Path(__file__).resolve().parents[1]] + ([Path(os.environ["DVC_ROOT"])] if os.environ.get("DVC_ROOT")
                                                     else [])
    current = os.path.abspath(sys.executable)
    for root in roots:
        python = root / ".venv" / "bin" / "python"
        if python.is_file() and os.path.abspath(python) != current and not os.environ.get("GANPIPE_REEXEC"):
            os.environ["GANPIPE_REEXEC"] = "1"  # once: a broken venv must not loop
            os.execv(str(python), [str(python), *sys.argv])
    sys.exit(f"error: {current} cannot import {error.name!r}: DVC ran this stage with a Python outside the "
             f"project's environment. Run `make repro` (it creates .venv and runs DVC with it), or "
             f"`source .venv/bin/activate` and then `dvc repro`")
