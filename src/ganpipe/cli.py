"""Entry points. `run_stage` is the shared plumbing of the DVC stages; `main` is the `ganpipe` command.

Both load params strictly and turn user errors into one clear line on stderr and a non-zero exit (no
traceback: the message already says what to fix).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from ganpipe import config
from ganpipe.checkpoint import CheckpointError
from ganpipe.data import DataError
from ganpipe.imagefiles import SamplesError
from ganpipe.tracking import TrackingError
from ganpipe.train import DivergenceError

USER_ERRORS = (config.ConfigError, DataError, CheckpointError, TrackingError, DivergenceError, SamplesError)


def _guarded(call: Callable[[], Any]) -> tuple[int, Any]:
    try:
        return 0, call()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, None


def run_stage(fn: Callable[[config.Config], Any], argv: list[str] | None, description: str | None) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    code, result = _guarded(lambda: fn(config.load(args.params)))
    if code == 0:
        print(json.dumps(result, indent=1, sort_keys=True, default=str)[:2000])
    return code


ROWS = [("IS", "is"), ("IS split mean", "is_split_mean"), ("FID", "fid"), ("KID", "kid"),
        ("precision", "precision"), ("recall", "recall"), ("density", "density"), ("coverage", "coverage"),
        ("classes covered", "classes_covered"), ("KL(hist || uniform)", "kl_uniform"),
        ("confident share", "confident_share"), ("class agreement", "class_agreement")]


def score_table(result: dict) -> str:
    """The scores of the samples beside the real-data ceiling, as aligned text."""
    lines = [f"{'metric':<22}{'samples':>12}{'real ceiling':>14}"]
    for label, key in ROWS:
        if key in result["fake"]:
            fake, real = result["fake"][key], result["real"].get(key)
            lines.append(f"{label:<22}{fake:>12.4g}{real:>14.4g}" if real is not None else f"{label:<22}{fake:>12.4g}")
    p = result["protocol"]
    lines.append(f"protocol: {p['n_fake']} samples vs {p['n_holdout']} held-out images; features "
                 f"{p['feature_dim']}-d from classifier {p['classifier_sha256'][:12]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ganpipe import pipeline

    parser = argparse.ArgumentParser(prog="ganpipe", description="ganpipe: reproducible GAN experiments")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score images made anywhere with this project's protocol")
    ev.add_argument("--samples", required=True, type=Path,
                    help=".npz, .npy, .pt, .safetensors or a folder of PNGs; uint8 or [-1, 1]")
    ev.add_argument("--out", type=Path, help="JSON file to write (default: <samples>.eval.json)")
    ev.add_argument("--mlflow", metavar="RUN_NAME", help="also log the scores as an MLflow run of this name")
    args = parser.parse_args(argv)
    code, result = _guarded(lambda: pipeline.evaluate_samples(config.load(args.params), args.samples,
                                                              args.out, args.mlflow))
    if code == 0:
        print(score_table(result))
        print(f"wrote {result['json']}" + (f"; MLflow run {result['mlflow_run_id']}" if "mlflow_run_id" in result
                                          else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
