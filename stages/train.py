"""DVC stage `train`: train the GAN; write generator weights, per-epoch losses and train metrics; log the run to MLflow."""
import sys

from ganpipe import pipeline
from ganpipe.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage(pipeline.train_gan, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
