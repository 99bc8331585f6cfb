"""The real-data reference in Inception space: the features of the prepared training and held-out splits,
computed once per (data hash, network, resize) by the `reference` stage and kept as a DVC output. Evaluating a
new generator then costs only its own samples.

The file holds the features themselves, not only their mean and covariance: KID, precision/recall,
density/coverage and copy detection need the points. With evaluate.features = classifier the stage writes the
file without features, saying so in its metadata, and `evaluate` never reads it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe import checkpoint
from ganpipe.errors import ConfigError, DataError
from ganpipe.eval import inception
from ganpipe.files import atomic

KIND = "ganpipe.inception_reference"


def save(path: Path, train: torch.Tensor | None, holdout: torch.Tensor | None, data_sha256: str,
         features: str) -> None:
    computed = train is not None and holdout is not None
    meta = {"computed": computed, "data_sha256": data_sha256, "evaluate.features": features,
            "protocol": inception.PROTOCOL}
    tensors = {"train": train.contiguous(), "holdout": holdout.contiguous()} if computed else {}
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata=checkpoint.header(KIND, meta))


def load(path: Path, data_sha256: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(train features, held-out features) of the prepared data with this hash; one clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro reference` (the Inception features of the real data)")
    try:
        meta = checkpoint.read_header(path, KIND)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a valid reference file ({exc}): re-run `dvc repro -f reference`") from None
    if not meta.get("computed"):
        raise ConfigError(f"{path} was made with evaluate.features={meta.get('evaluate.features')}, which needs no "
                          f"Inception features: run `dvc repro` (it re-runs `reference` for the current params)")
    if meta.get("data_sha256") != data_sha256:
        raise DataError(f"{path} holds the features of other data (sha256 {meta.get('data_sha256', '?')[:12]}, "
                        f"prepared data {data_sha256[:12]}): run `dvc repro reference`")
    if meta.get("protocol") != inception.PROTOCOL:
        raise DataError(f"{path} was computed with another feature network or resize: run `dvc repro -f reference`")
    return tensors["train"], tensors["holdout"]
