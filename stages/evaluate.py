"""DVC stage `evaluate`: score the samples against the real held-out split (IS, FID, KID, precision/recall, coverage, ...) and log the scores to MLflow on the run their provenance names."""
import sys

try:
    from ganpipe.pipeline import evaluate, run_stage
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(evaluate.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
