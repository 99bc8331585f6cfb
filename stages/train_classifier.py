"""DVC stage `train_classifier`: train the evaluation classifier (judge and feature extractor for every classifier-based score) on the real training split."""
import sys

try:
    from ganpipe.pipeline import run_stage, train_classifier
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(train_classifier.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
