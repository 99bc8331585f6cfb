"""DVC stage `train_classifier`: train the evaluation classifier (judge and feature extractor for every classifier-based score) on the real training split."""
import sys

from ganpipe import pipeline
from ganpipe.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage(pipeline.train_classifier, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
