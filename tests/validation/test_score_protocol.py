"""`ganpipe score` against outside implementations: from two folders of image files (mixed sizes, grey PNG and
colour JPEG), its FID and KID equal torchmetrics' fed the same files decoded independently, and its precision,
recall, density and coverage equal the `prdc` package (Naeem et al.'s reference code) on the same features."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from ganpipe.eval import metrics
from ganpipe.pipeline import score
from helpers.digits import digits
from helpers.features import OncePerBatch


def _write(folder, images, kind: str) -> None:
    folder.mkdir()
    for i, image in enumerate(images):
        picture = Image.fromarray(image[0].numpy())  # grey
        if kind == "jpeg-colour":  # another size and mode: the protocol reads any
            picture = picture.convert("RGB").resize((36, 36) if i % 2 else (28, 28), Image.BILINEAR)
            picture.save(folder / f"{i:03d}.jpg", quality=95)
        else:
            picture.save(folder / f"{i:03d}.png")


def _decoded(folder) -> dict[tuple[int, int], torch.Tensor]:
    """The folder's images as uint8 RGB batches, one per size, decoded here with Pillow directly."""
    by_size: dict[tuple[int, int], list] = {}
    for f in sorted(folder.iterdir()):
        with Image.open(f) as im:
            array = np.asarray(im.convert("RGB"))
        by_size.setdefault(array.shape[:2], []).append(torch.from_numpy(array.copy()).permute(2, 0, 1))
    return {size: torch.stack(images) for size, images in by_size.items()}


def test_two_folders_score_as_torchmetrics_scores_the_same_files(net, tmp_path, monkeypatch):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    images, labels = digits()  # two clearly different sets (digits 0-4 and 5-9)
    _write(tmp_path / "real", images[labels < 5][:50], "png-grey")  # equal sizes: KID uses every image
    _write(tmp_path / "fake", images[labels >= 5][:50], "jpeg-colour")
    monkeypatch.setenv("GANPIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(score.inception, "load", lambda device: net)  # the session's network, already loaded
    # KID over one subset of every image: deterministic, as torchmetrics computes it with subsets=1
    cfg = dataclasses.replace(score.default_evaluate(), kid_subsets=1, kid_subset_size=10_000)
    ours = score.run(score.Request(str(tmp_path / "real"), str(tmp_path / "fake"), batch_size=25), cfg,
                     None)["scores"]

    features = OncePerBatch(net)
    fid = FrechetInceptionDistance(feature=features, normalize=False)
    kid = KernelInceptionDistance(feature=features, subsets=1, subset_size=50, normalize=False)
    for side, real in (("real", True), ("fake", False)):
        for batch in _decoded(tmp_path / side).values():
            fid.update(batch, real=real)
            kid.update(batch, real=real)
    assert ours["fid"] == pytest.approx(fid.compute().item(), rel=1e-3)
    assert ours["kid"] == pytest.approx(kid.compute()[0].item(), rel=1e-3)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("fake", ["pool", "noise1", "blur2"])
def test_precision_recall_density_coverage_equal_the_prdc_package(feats, fake, k):
    from prdc import compute_prdc

    f, _ = feats
    real, other = f["ref"], f[fake][:200]
    theirs = compute_prdc(real.double().numpy(), other.double().numpy(), nearest_k=k)
    precision, recall = metrics.precision_recall(real, other, k)
    density, coverage = metrics.density_coverage(real, other, k)
    ours = {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
    one_point = 1 / len(real)  # a point exactly on a k-NN ball's edge may fall either way in float32
    assert ours == pytest.approx({k_: float(v) for k_, v in theirs.items()}, abs=one_point), (ours, theirs)
