"""DVC stage `evaluate`: score the samples against the real held-out split with the classifier (IS, FID, coverage, KL) and log the scores to the generator's MLflow run."""
import sys

from ganpipe import pipeline
from ganpipe.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage(pipeline.evaluate, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
