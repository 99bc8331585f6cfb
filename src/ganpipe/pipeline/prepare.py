"""Stage `prepare`: the dataset named by data.* split into train and held-out, written to paths.prepared. An image
folder goes straight from its files to disk in bounded memory (data/folderprep.py); the other sources are small
enough to split in memory."""
from __future__ import annotations


from ganpipe.data.datasets import load
from ganpipe.data.folderprep import prepare_folder
from ganpipe.data.prepared import prepare
from ganpipe.params import sizes
from ganpipe.params.config import Config


def run(cfg: Config) -> dict:
    # the split sizes are checked against every later stage's needs before anything is written
    check = lambda n_train, n_holdout, size: sizes.check_data(cfg, n_train, n_holdout, size)  # noqa: E731
    if cfg.data.dataset == "imagefolder":
        return prepare_folder(cfg.data, cfg.paths.prepared, check=check)
    return prepare(load(cfg.data), cfg.data, cfg.paths.prepared, check=check)
