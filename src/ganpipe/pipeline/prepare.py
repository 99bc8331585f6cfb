"""Stage `prepare`: the dataset named by data.* split into train and held-out, written to paths.prepared."""
from __future__ import annotations

from pathlib import Path

from ganpipe import sizes
from ganpipe.config import Config
from ganpipe.data.datasets import load
from ganpipe.data.prepared import prepare


def run(cfg: Config) -> dict:
    # the split sizes are checked against every later stage's needs before anything is written
    check = lambda n_train, n_holdout, size: sizes.check_data(cfg, n_train, n_holdout, size)  # noqa: E731
    return prepare(load(cfg.data), cfg.data, Path(cfg.paths.prepared), check=check)
