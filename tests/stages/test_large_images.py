"""128 and 256 px through the stages: prepare, the evaluation classifier, train, sample and evaluate, for dcgan,
resnet and r3gan at tiny widths, grey and colour, conditional and not; then `ganpipe generate`, `score` and
`report` on each run (the networks' shapes at every size: tests/unit/test_models.py, test_resnet.py,
test_r3gan.py)."""
from __future__ import annotations

import base64
import io
import json
import re

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
def test_the_stages_run_at_128_and_256_px(workdir, monkeypatch, arch, size, channels, conditional):
    model = {**(R3GAN_TINY if arch == "r3gan" else {"arch": arch}), **WIDTHS[(arch, size)], "conditional": conditional}
    train = {"epochs": 1, "batch_size": 8, "augment": ["ada"], "ada_p": 0.3, "ada_target": None}
    if arch == "r3gan":
        train.update(loss="rpgan", gamma=0.1)
    write_params(workdir, data={"image_size": size, "channels": channels, "max_images": 40, "holdout_fraction": 0.25},
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
    monkeypatch.setenv("GANPIPE_CACHE", str(workdir / "cache"))
    _generate_score_and_report(workdir, run, size, channels)


def _generate_score_and_report(workdir, run, size: int, channels: int) -> None:
    """The verbs a user runs after training, on a run of this size: PNGs of its size and mode, Inception scores of
    them against the run's own samples, and a report page whose sample grid is the run's grid at full size."""
    from ganpipe import cli

    assert cli.main(["generate", run.info.run_id, "--n", "12", "--seed", "7", "--out", "pngs"]) == 0
    pngs = sorted((workdir / "pngs").glob("*.png"))
    assert len(pngs) == 12
    assert {(Image.open(p).size, Image.open(p).mode) for p in pngs} == {((size, size), "L" if channels == 1 else "RGB")}
    assert cli.main(["score", "pngs", run.info.run_id, "--n", "12", "--json", "scores.json"]) == 0
    scores = json.loads((workdir / "scores.json").read_text())
    assert scores["protocol"]["n_real"] == scores["protocol"]["n_fake"] == 12
    assert scores["scores"]["fid"] > 0
    assert cli.main(["report", run.info.run_name, "-o", "report.html"]) == 0
    page = (workdir / "report.html").read_text()
    embedded = [Image.open(io.BytesIO(base64.b64decode(b)))
                for b in re.findall(r'alt="samples at epoch [^"]*"[^>]*src="data:image/png;base64,([^"]+)"', page)]
    assert embedded and embedded[-1].size == (3 * (size + 2) + 2,) * 2


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
