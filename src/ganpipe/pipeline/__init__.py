"""The library side of each DVC stage, one module per stage, each with `run(cfg)`; and `run_stage`, the runner
the thin files in stages/ call. A stage imports only the modules it uses, so dvc.yaml can list exactly those
as its code deps (tests/stages/test_stage_deps.py checks it)."""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from ganpipe.console import note
from ganpipe.errors import run_guarded
from ganpipe.params import config


def run_stage(fn: Callable[[config.Config], Any], argv: list[str] | None, description: str | None) -> int:
    """Parse --params, load them strictly, run the stage; user errors exit 1 with one line (no traceback)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    code, result = run_guarded(lambda: fn(config.load(args.params)))
    if code == 0 and result is not None:  # None: a training process other than rank 0, or the launcher
        note(json.dumps(result, indent=1, sort_keys=True, default=str)[:2000])
    return code
