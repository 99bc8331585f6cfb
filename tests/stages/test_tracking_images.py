"""Stepped images too large for MLflow's UI (grids of 128 and 256 px samples) are logged downsampled, and the
full-size original is kept beside them; small ones are logged as they are."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ganpipe.data.images import make_grid


def test_a_large_grid_is_shown_downsampled_and_kept_full_size(tmp_path, monkeypatch):
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from ganpipe.track.run import FULL_IMAGES, IMAGES, UI_SIDE, MlflowRun

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    big = make_grid(torch.randint(0, 256, (100, 3, 256, 256), dtype=torch.uint8), 10)  # 10 x 10 samples of 256 px
    small = make_grid(torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8), 4)
    with mlflow.start_run(experiment_id=client.create_experiment("t")) as active:
        run = MlflowRun(active.info.run_id)
        run.log_image(3, "samples", big)
        run.log_image(3, "small", small)
    out = Path(client.download_artifacts(active.info.run_id, "", str(tmp_path / "got")))
    shown = {p.name.split("+")[0]: Image.open(p) for p in (out / IMAGES).glob("*.png")}
    assert max(shown["samples"].size) == UI_SIDE < max(big.shape[:2])
    assert shown["small"].size == (small.shape[1], small.shape[0])  # fits: as it is
    (kept,) = (out / FULL_IMAGES).glob("*.png")
    assert kept.name == "samples_step000003.png"
    assert np.array_equal(np.asarray(Image.open(kept).convert("RGB")), big)
