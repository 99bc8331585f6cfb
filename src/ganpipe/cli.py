"""Shared entry-point plumbing: load params strictly, run one pipeline function, turn user errors into one
clear line on stderr and a non-zero exit (no traceback: the message already says what to fix)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ganpipe import config
from ganpipe.checkpoint import CheckpointError
from ganpipe.data import DataError
from ganpipe.tracking import TrackingError
from ganpipe.train import DivergenceError

USER_ERRORS = (config.ConfigError, DataError, CheckpointError, TrackingError, DivergenceError)


def run_stage(fn: Callable[[config.Config], Any], argv: list[str] | None, description: str | None) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        result = fn(config.load(args.params))
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=1, sort_keys=True, default=str)[:2000])
    return 0
