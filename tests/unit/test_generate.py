"""`ganpipe generate` from a generator file: every output form, the same bytes for the same seed, what truncation
and interpolation promise, and one clear line for every request that cannot work. (From an MLflow run id and an
experiment name: tests/e2e/test_pipeline_e2e.py.)"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ganpipe import cli
from ganpipe.data.imagefiles import read_samples
from ganpipe.data.samples import load_samples
from ganpipe.errors import ConfigError
from ganpipe.gan import sampling


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_truncation_keeps_every_latent_within_psi_and_is_repeatable():
    z = sampling.noise(500, 16, 3, truncation=0.5)
    assert z.abs().max() <= 0.5 and torch.equal(z, sampling.noise(500, 16, 3, truncation=0.5))
    assert torch.equal(sampling.noise(4, 16, 3), torch.randn(4, 16, generator=torch.Generator().manual_seed(3)))
    assert sampling.noise(500, 16, 3).abs().max() > 2  # untruncated latents do reach beyond
    with pytest.raises(ConfigError, match="--truncation must be a positive number"):
        sampling.noise(4, 16, 3, truncation=0)


def test_an_interpolation_row_walks_from_one_latent_to_another():
    z = sampling.interpolation(3, 5, 16, 7).view(3, 5, 16)
    ends = sampling.noise(6, 16, 7).view(3, 2, 16)
    assert torch.allclose(z[:, 0], ends[:, 0], atol=1e-5) and torch.allclose(z[:, -1], ends[:, 1], atol=1e-5)
    assert (z[:, 1:] - z[:, :-1]).norm(dim=2).min() > 0  # every step moves


def test_pngs_named_by_index_and_class_with_the_same_bytes_for_the_same_seed(generator_file, tmp_path, capsys):
    for name in ("a", "b"):
        assert cli.main(["generate", str(generator_file), "--n", "12", "--out", str(tmp_path / name),
                         "--classes", "3,5", "--seed", "4"]) == 0
    assert "wrote 12 PNG files" in capsys.readouterr().out
    first = digest(tmp_path / "a")
    assert first == digest(tmp_path / "b") and list(first)[:3] == ["00_class3.png", "01_class5.png", "02_class3.png"]
    assert cli.main(["generate", str(generator_file), "--n", "12", "--out", str(tmp_path / "c"),
                     "--classes", "3,5", "--seed", "5"]) == 0
    assert digest(tmp_path / "c") != first


def test_arrays_feed_straight_into_evaluate_and_match_the_pngs(generator_file, tmp_path):
    args = [str(generator_file), "--n", "20", "--seed", "1"]
    assert cli.main(["generate", *args, "--out", str(tmp_path / "s.npz")]) == 0
    assert cli.main(["generate", *args, "--out", str(tmp_path / "s.safetensors")]) == 0
    assert cli.main(["generate", *args, "--out", str(tmp_path / "png")]) == 0
    images, labels = read_samples(tmp_path / "s.npz", 1, 28)  # what `ganpipe evaluate --samples` reads
    stored = load_samples(tmp_path / "s.safetensors")
    assert torch.equal(images, stored.images) and torch.equal(labels, stored.labels)
    assert labels.tolist()[:12] == list(range(10)) + [0, 1]  # every class in turn
    from PIL import Image

    first = np.asarray(Image.open(tmp_path / "png" / "00_class0.png"))
    assert np.array_equal(first, images[0, 0].numpy())
    again = tmp_path / "t.npz"
    cli.main(["generate", *args, "--out", str(again)])
    assert again.read_bytes() == (tmp_path / "s.npz").read_bytes()  # npz members carry no timestamp


def test_grids_plain_truncated_and_interpolated(generator_file, tmp_path):
    from PIL import Image

    assert cli.main(["generate", str(generator_file), "--n", "16", "--out", str(tmp_path / "g.png"),
                     "--truncation", "0.7"]) == 0
    assert Image.open(tmp_path / "g.png").size == (4 * 30 + 2, 4 * 30 + 2)
    assert cli.main(["generate", str(generator_file), "--n", "3", "--interpolate", "6", "--out",
                     str(tmp_path / "walk.png")]) == 0
    assert Image.open(tmp_path / "walk.png").size == (6 * 30 + 2, 3 * 30 + 2)


@pytest.mark.parametrize("extra, message", [
    (["--n", "0", "--out", "x"], "--n must be at least 1"),
    (["--n", "4", "--out", "x.jpg"], "write a folder (one PNG per image) or a .npz"),
    (["--n", "4", "--out", "x", "--interpolate", "5"], "--interpolate draws a grid"),
    (["--n", "4", "--out", "x.png", "--interpolate", "1"], "--interpolate needs at least 2 steps"),
    (["--n", "4", "--out", "x", "--classes", "3,10"], "class indices below 10"),
    (["--n", "4", "--out", "x", "--classes", "a"], "--classes must be comma-separated class indices"),
    (["--n", "4", "--out", "x", "--truncation", "-1"], "--truncation must be a positive number"),
])
def test_a_request_that_cannot_work_is_one_line(generator_file, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", str(generator_file), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_missing_file_or_a_full_folder_is_refused(generator_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", "models/generator.safetensors", "--n", "2", "--out", "x"]) == 1
    assert "no generator file models/generator.safetensors" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert cli.main(["generate", str(generator_file), "--n", "2", "--out", "full"]) == 1
    assert "is a folder that is not empty" in capsys.readouterr().err
