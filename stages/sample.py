"""DVC stage `sample`: load the generator and write N samples (uint8) and a PNG grid."""
import sys

from ganpipe import pipeline
from ganpipe.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage(pipeline.sample, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
