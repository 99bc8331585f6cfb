"""`ganpipe score`'s parts that need no Inception network: image sets from folders of any size and mode, their
content hash, the feature cache, the held-out split, the defaults outside a project, and its one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganpipe.cli import main
from ganpipe.data.imagesets import MIN_IMAGES, open_set
from ganpipe.errors import SamplesError
from ganpipe.eval import inception, twosets
from ganpipe.pipeline import score
from helpers import ROOT


def _folder(root, n, sizes=((24, 20), (32, 32)), modes=("RGB", "L", "RGBA", "P")):
    rng = np.random.default_rng(0)
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        sub = root / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(modes[i % len(modes)])
        image.save(sub / f"{i:03d}.{'jpg' if modes[i % len(modes)] == 'L' else 'png'}")
    return root


def test_defaults_outside_a_project_are_params_yaml_s():
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]
    assert {**shipped, "features": "inception"} == score.DEFAULTS


def test_a_folder_of_any_sizes_and_modes_is_read_recursively_in_same_size_batches(tmp_path):
    images = open_set(_folder(tmp_path / "real", 14))
    assert images.n == 14 and len({f.parent.name for f in images.files}) == 2
    seen = []
    for indices, batch in images.batches(batch_size=4):
        assert batch.dtype == torch.uint8 and batch.shape[1] == 3 and len(batch) == len(indices) <= 4
        w, h = images.sizes[indices[0]]
        assert batch.shape[2:] == (h, w) and all(images.sizes[i] == (w, h) for i in indices)
        for i, image in zip(indices, batch):  # each image is its own file, converted to RGB
            with Image.open(images.files[i]) as im:
                assert torch.equal(image, torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1))
        seen += indices
    assert sorted(seen) == list(range(14))


def test_content_hash_follows_the_bytes_and_a_subset_is_fixed(tmp_path):
    folder = _folder(tmp_path / "real", 12)
    first = open_set(folder)
    assert open_set(folder).content == first.content
    some = sorted(folder.rglob("*.png"))[0]
    Image.new("RGB", (24, 20), (1, 2, 3)).save(some)
    assert open_set(folder).content != first.content
    a, b = first.subset(10), first.subset(10)
    assert a.files == b.files and a.n == 10 and list(a.files) == sorted(a.files) and first.subset(50) is first


class CountingNet(torch.nn.Module):
    """Stands in for the Inception network: counts the images it sees, gives each a 2048-d vector."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = 0

    def forward(self, images):
        self.seen += len(images)
        return images.float().mean((1, 2, 3))[:, None].expand(-1, inception.FEATURE_DIM) * self.scale


def test_real_features_are_cached_by_content_and_computed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GANPIPE_CACHE", str(tmp_path / "cache"))
    images = open_set(_folder(tmp_path / "real", 12))
    nets = []

    def factory():
        nets.append(CountingNet())
        return nets[-1]

    first, hit = twosets.cached_features(images, factory, 5, "real")
    assert not hit and nets[0].seen == 12
    again, hit = twosets.cached_features(open_set(tmp_path / "real"), factory, 5, "real")
    assert hit and len(nets) == 1 and torch.equal(first, again)
    assert not twosets.cached_features(images.subset(10), factory, 5, "real")[1]  # another set: computed


def test_the_held_out_split_is_fixed_and_disjoint():
    ref, held = twosets.held_out(50)
    assert len(held) == 5 and len(ref) == 45 and not set(ref.tolist()) & set(held.tolist())
    assert torch.equal(twosets.held_out(50)[1], held)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "holds no images"),
    (lambda p: _folder(p, MIN_IMAGES - 1), f"holds {MIN_IMAGES - 1} image(s); scoring needs at least"),
    (lambda p: (_folder(p, 12), (p / "class0" / "bad.png").write_text("not an image")),
     "1 of the 13 image files in"),
    (lambda p: np.savez(p.with_suffix(".npz"), images=np.zeros((12, 4, 8, 8), np.uint8)),
     "1 (grey) or 3 (RGB) channels"),
    (lambda p: np.savez(p.with_suffix(".npz"), images=np.random.rand(12, 3, 8, 8)), "do not say their range"),
    (lambda p: None, "no such folder or file"),
])
def test_bad_sets_are_one_line_and_no_traceback(tmp_path, monkeypatch, capsys, make, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANPIPE_CACHE", str(tmp_path / "cache"))
    for var in ("MLFLOW_TRACKING_URI", "DVC_ROOT"):  # no store around: a missing name is not looked up as a run
        monkeypatch.delenv(var, raising=False)
    _folder(tmp_path / "good", 12)
    make(tmp_path / "bad")
    bad = "bad.npz" if (tmp_path / "bad.npz").exists() else "bad"
    assert main(["score", "good", bad]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    with pytest.raises(SamplesError):
        open_set(tmp_path / bad)
