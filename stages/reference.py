"""DVC stage `reference`: Inception-V3 features of the real training and held-out splits, the reference of every Inception-space score (computed once per data hash)."""
import sys

try:
    from ganpipe.pipeline import reference, run_stage
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(reference.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
