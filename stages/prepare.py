"""DVC stage `prepare`: load the dataset named in params.yaml, split off a held-out set, write uint8 tensors, a class histogram and a grid of real images."""
import sys

try:
    from ganpipe.pipeline import prepare, run_stage
except ModuleNotFoundError as missing:  # DVC ran another Python than the project's: see stages/_env.py
    import _env

    _env.reexec(missing)


def main(argv: list[str] | None = None) -> int:
    return run_stage(prepare.run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
