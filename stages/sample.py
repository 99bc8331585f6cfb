"""DVC stage `sample`: load the generator and write N samples (uint8) and a PNG grid."""
import sys

try:
    from ganpipe.pipeline import run_stage, sample
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(sample.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
