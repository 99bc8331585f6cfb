"""DVC stage `train`: train the GAN; write generator weights, per-epoch losses and train metrics; log the run to MLflow."""
import sys

try:
    from ganpipe.pipeline import run_stage, train
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(train.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
