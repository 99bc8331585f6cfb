"""DVC stage `prepare`: load the dataset named in params.yaml, split off a held-out set, write uint8 tensors, a class histogram and a grid of real images."""
import sys

from ganpipe import pipeline
from ganpipe.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage(pipeline.prepare, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
