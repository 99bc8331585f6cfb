"""128 and 256 px through the stages: prepare, the evaluation classifier, train, sample and evaluate, for dcgan,
resnet and r3gan at tiny widths, grey and colour, conditional and not (the networks' shapes at every size:
tests/unit/test_models.py, test_resnet.py, test_r3gan.py)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from helpers import R3GAN_TINY, runs, stage, write_params

WIDTHS = {  # G's widths from 4x4 up, D's from the full size down: one entry per doubling
    ("dcgan", 128): dict(g_hidden=[16, 16, 8, 8, 8], d_hidden=[8, 8, 8, 16, 16]),
    ("dcgan", 256): dict(g_hidden=[16, 16, 8, 8, 8, 8], d_hidden=[8, 8, 8, 8, 16, 16]),
    ("resnet", 128): dict(g_hidden=[16, 16, 8, 8, 8], d_hidden=[8, 8, 8, 16, 16, 16]),
    ("resnet", 256): dict(g_hidden=[16, 16, 8, 8, 8, 8], d_hidden=[8, 8, 8, 8, 16, 16, 16]),
    ("r3gan", 128): dict(g_hidden=[16, 16, 8, 8, 8, 8], d_hidden=[8, 8, 8, 8, 16, 16], blocks=[1] * 6,
                         cardinality=[4] * 6),
    ("r3gan", 256): dict(g_hidden=[16, 16, 8, 8, 8, 8, 8], d_hidden=[8, 8, 8, 8, 8, 16, 16], blocks=[1] * 7,
                         cardinality=[4] * 7),
}


@pytest.mark.parametrize("arch, size, channels, conditional", [
    ("dcgan", 128, 3, True), ("dcgan", 256, 1, False), ("resnet", 128, 1, False), ("resnet", 256, 3, True),
    ("r3gan", 128, 1, True), ("r3gan", 256, 3, False)])
def test_the_stages_run_at_128_and_256_px(workdir, arch, size, channels, conditional):
    model = {**(R3GAN_TINY if arch == "r3gan" else {"arch": arch}), **WIDTHS[(arch, size)], "conditional": conditional}
    train = {"epochs": 1, "batch_size": 8, "augment": ["ada"], "ada_p": 0.3, "ada_target": None}
    if arch == "r3gan":
        train.update(loss="rpgan", gamma=0.1)
    write_params(workdir, data={"image_size": size, "channels": channels, "max_images": 60, "holdout_fraction": 0.25},
                 classifier={"epochs": 1, "batch_size": 8, "feature_dim": 8}, model=model, train=train,
                 sample={"n": 40, "batch_size": 20, "grid_rows": 3},
                 evaluate={"batch_size": 20, "kid_subset_size": 20, "kid_subsets": 5, "pr_k": 2, "dc_k": 2})
    for name in ("prepare", "train_classifier", "train", "sample", "evaluate"):
        assert stage(name)([]) == 0, name
    grid = Image.open(workdir / "plots" / "sample_grid.png")
    assert grid.size == (3 * (size + 2) + 2,) * 2
    fid = json.loads((workdir / "metrics" / "eval.json").read_text())["fake"]["fid"]
    assert fid == fid and fid > 0  # a number
    (run,) = [r for r in runs(workdir) if "eval/fid" in r.data.metrics]
    assert run.data.params["data.image_size"] == str(size)


@pytest.mark.parametrize("name", ["folder128_unlabelled", "resnet256", "r3gan_ffhq256"])
def test_the_128_and_256_px_presets_build_and_draw_images_of_their_size(name):
    import torch

    from ganpipe.gan.models import build
    from ganpipe.params import config, overlays

    from helpers import ROOT

    cfg = config.from_dict(overlays.merge(config.load(ROOT / "params.yaml").raw,
                                          overlays.read(ROOT / "configs" / f"{name}.yaml")))
    size = cfg.data.image_size
    G, D = build(cfg.model, (3, size, size), 0, 10)
    with torch.no_grad():
        x = G.eval()(torch.randn(1, cfg.model.z_dim), torch.zeros(1, dtype=torch.int64))
        assert x.shape == (1, 3, size, size) and D(x, torch.zeros(1, dtype=torch.int64)).shape == (1,)
